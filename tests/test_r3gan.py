"""R3GAN: the relativistic pairing loss against closed forms, R1 and R2 against finite differences and
their per-sample forms, and one trainer iteration against a hand-written reference update."""

import math
from types import SimpleNamespace

import pytest
import torch
from conftest import CyclingBatches
from test_trainer import flat, players
from torch import nn
from torch.nn import functional as F

from equilibria.core.penalties import R1, R2, r1_penalty, r2_penalty
from equilibria.core.sections import ConfigError
from equilibria.core.trainer import Trainer
from equilibria.methods.r3gan import METHOD, R3ganConfig, relativistic_objective


def softplus(t):
    return math.log1p(math.exp(t))


def sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


# -- the objective -------------------------------------------------------------------------------------
def test_relativistic_losses_match_hand_computed_values():
    real_values, fake_values = [0.0, 2.0, -0.5], [-1.0, 1.0, 3.0]
    d_real = torch.tensor(real_values, dtype=torch.float64)
    d_fake = torch.tensor(fake_values, dtype=torch.float64, requires_grad=True)
    objective = relativistic_objective()
    expected_adv = sum(softplus(f - r) for r, f in zip(real_values, fake_values)) / 3
    expected_gen = sum(softplus(r - f) for r, f in zip(real_values, fake_values)) / 3

    adversary_loss = objective.adversary_loss(d_real, d_fake)
    assert adversary_loss.item() == pytest.approx(expected_adv, rel=1e-12)
    assert objective.generator_loss(d_real, d_fake).item() == pytest.approx(expected_gen, rel=1e-12)
    assert objective.value(d_real, d_fake).item() == pytest.approx(-expected_adv, rel=1e-12)
    # d/d d_fake_n of the adversary's loss: sigmoid(d_fake_n - d_real_n) / 3
    (grad,) = torch.autograd.grad(adversary_loss, d_fake)
    assert grad.tolist() == pytest.approx([sigmoid(f - r) / 3 for r, f in zip(real_values, fake_values)], rel=1e-12)
    assert objective.name == "relativistic" and objective.generator_uses_real and objective.fake_loss is None


def test_relativistic_losses_stay_finite_for_large_logits():
    d_real = torch.tensor([200.0, -200.0], requires_grad=True)
    d_fake = torch.tensor([-200.0, 200.0], requires_grad=True)
    objective = relativistic_objective()
    for loss in (objective.adversary_loss(d_real, d_fake), objective.generator_loss(d_real, d_fake),
                 objective.value(d_real, d_fake)):
        # softplus(-400) = 0 to float precision and softplus(400) = 400: the mean is 200 up to sign
        assert torch.isfinite(loss) and abs(loss.item()) == pytest.approx(200.0)
        grads = torch.autograd.grad(loss, (d_real, d_fake))
        assert all(torch.isfinite(g).all() for g in grads)
        # each pair's gradient is +-sigmoid(+-400) / 2, i.e. 0 or 1/2 in magnitude
        assert sorted(grads[0].abs().tolist()) == pytest.approx([0.0, 0.5])


def test_relativistic_losses_refuse_unpaired_batches():
    objective = relativistic_objective()
    d_real, d_fake = torch.zeros(4), torch.zeros(3)
    for loss in (objective.adversary_loss, objective.generator_loss, objective.value):
        with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
            loss(d_real, d_fake)


# -- R1 and R2 -------------------------------------------------------------------------------------
def tiny_critic(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)).double()


def fd_input_gradients(critic, x, h=1e-6):
    """grad_x D(x) per sample by central differences, one sample at a time: shape (n, d)."""
    rows = []
    for row in x.detach():
        grad = []
        for j in range(row.numel()):
            e = torch.zeros_like(row)
            e[j] = h
            grad.append((critic((row + e).unsqueeze(0)) - critic((row - e).unsqueeze(0))).item() / (2 * h))
        rows.append(grad)
    return torch.tensor(rows, dtype=torch.float64)


def test_r2_penalty_matches_finite_differences():
    critic = tiny_critic()
    fake = torch.randn(4, 3, dtype=torch.float64)
    expected = 0.5 * fd_input_gradients(critic, fake).pow(2).sum(dim=1).mean()
    assert r2_penalty(critic, fake).item() == pytest.approx(expected.item(), rel=1e-7)
    assert R2(0.3)(critic, torch.randn(4, 3, dtype=torch.float64), fake).item() == pytest.approx(
        0.3 * expected.item(), rel=1e-7)
    assert not fake.requires_grad  # a detached batch is left as it was


def test_r2_penalty_reaches_the_generator_through_fake():
    critic = tiny_critic()
    torch.manual_seed(1)
    z = torch.randn(4, 2, dtype=torch.float64)
    theta = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)  # a linear "generator": fake = z theta
    penalty = r2_penalty(critic, z @ theta)
    (grad,) = torch.autograd.grad(penalty, theta)
    assert grad.abs().sum() > 0
    # the same value on the detached batch, and the gradient against finite differences in theta
    assert r2_penalty(critic, (z @ theta).detach()).item() == pytest.approx(penalty.item(), rel=1e-12)
    h = 1e-6
    for i, j in [(0, 0), (1, 2)]:
        shifted = theta.detach().clone()
        shifted[i, j] += h
        plus = r2_penalty(critic, z @ shifted).item()
        shifted[i, j] -= 2 * h
        minus = r2_penalty(critic, z @ shifted).item()
        assert grad[i, j].item() == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-10)


@pytest.mark.parametrize("penalty", [R1(0.7), R2(0.7)], ids=["r1", "r2"])
def test_per_sample_form_averages_to_the_batch_form(penalty):
    critic = tiny_critic()
    torch.manual_seed(2)
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    u = torch.rand(4, 1, dtype=torch.float64)  # the interpolation weight, unused by R1 and R2
    params = {name: p.detach() for name, p in critic.named_parameters()}

    def score(params, x):
        return torch.func.functional_call(critic, params, (x.unsqueeze(0),)).sum()

    per_sample = torch.stack([penalty.per_sample(score, params, fake[n], real[n], u[n]) for n in range(4)]).mean()
    batch = penalty(critic, real, fake)
    assert per_sample.item() == pytest.approx(batch.item(), rel=1e-12)
    # and the independent value: gamma/2 times the mean squared input-gradient norm on its batch
    x = real if penalty.name == "r1" else fake
    expected = 0.7 * 0.5 * fd_input_gradients(critic, x).pow(2).sum(dim=1).mean().item()
    assert batch.item() == pytest.approx(expected, rel=1e-7)


def test_r1_penalty_depends_on_real_data_only():
    critic = tiny_critic()
    real = torch.randn(4, 3, dtype=torch.float64)
    expected = 0.5 * fd_input_gradients(critic, real).pow(2).sum(dim=1).mean().item()
    assert r1_penalty(critic, real).item() == pytest.approx(expected, rel=1e-7)
    assert R1(2.0)(critic, real, torch.randn(4, 3, dtype=torch.float64)).item() == pytest.approx(2 * expected, rel=1e-7)


# -- one trainer iteration -------------------------------------------------------------------------------
def hand_penalty(d, x):
    """1/2 mean_n ||grad_x D(x_n)||^2, each sample's gradient from its own forward pass."""
    squares = []
    for row in x:
        row = row.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(row.unsqueeze(0)).sum(), row, create_graph=True)
        squares.append(grad.pow(2).sum())
    return 0.5 * torch.stack(squares).mean()


def test_trainer_iteration_equals_hand_written_r3gan_step():
    gamma, lr, m = 0.8, 0.1, 8
    g, d = players()
    trainer = Trainer(g, d, relativistic_objective(), CyclingBatches((m, 2)),
                      g_optimizer=torch.optim.SGD(g.parameters(), lr=lr),
                      d_optimizer=torch.optim.SGD(d.parameters(), lr=lr),
                      batch_size=m, penalties=METHOD.build(R3ganConfig(enabled=True, gamma=gamma), None).penalties)

    g_ref, d_ref = players()
    torch.manual_seed(11)
    real = CyclingBatches((m, 2)).next()
    fake = g_ref(torch.randn(m, 3)).detach()
    # the adversary: L_D = E softplus(D(fake) - D(real)) + gamma/2 (E||grad D(real)||^2 + E||grad D(fake)||^2)
    pairing = F.softplus(d_ref(fake) - d_ref(real)).mean()
    r1, r2 = gamma * hand_penalty(d_ref, real), gamma * hand_penalty(d_ref, fake)
    grads = torch.autograd.grad(pairing + r1 + r2, list(d_ref.parameters()), retain_graph=True)
    penalty_grads = torch.autograd.grad(r1 + r2, list(d_ref.parameters()), retain_graph=True, allow_unused=True)
    assert torch.cat([p.flatten() for p in penalty_grads if p is not None]).norm() > 1e-3  # they move D here
    with torch.no_grad():
        for p, grad in zip(d_ref.parameters(), grads):
            p -= lr * grad
    # the generator against the updated adversary, on the adversary's real batch and fresh codes
    d_fake = d_ref(g_ref(torch.randn(m, 3)))
    loss_gen = F.softplus(d_ref(real).detach() - d_fake).mean()
    grads = torch.autograd.grad(loss_gen, list(g_ref.parameters()))
    with torch.no_grad():
        for p, grad in zip(g_ref.parameters(), grads):
            p -= lr * grad

    torch.manual_seed(11)
    d_before = flat(trainer.discriminator)
    logs = trainer.train_step()
    torch.testing.assert_close(flat(trainer.discriminator), flat(d_ref))
    torch.testing.assert_close(flat(trainer.generator), flat(g_ref))
    assert not torch.allclose(d_before, flat(d_ref))
    torch.testing.assert_close(logs["loss_gen"], loss_gen.detach())
    torch.testing.assert_close(logs["adv/objective"], pairing.detach())
    torch.testing.assert_close(logs["adv/r1"], r1.detach())
    torch.testing.assert_close(logs["adv/r2"], r2.detach())


# -- the method -----------------------------------------------------------------------------------------
def root_config(objective="nonsaturating", r1=0.0, r2=0.0):
    return SimpleNamespace(objective=objective, penalties=SimpleNamespace(r1=r1, r2=r2, gradient_penalty=0.0))


def test_method_builds_r1_and_r2_with_gamma_and_owns_the_objective():
    contribution = METHOD.build(R3ganConfig(enabled=True, gamma=0.25), None)
    assert [(type(p), p.weight) for p in contribution.penalties] == [(R1, 0.25), (R2, 0.25)]
    assert not contribution.components and contribution.joint_optimizer is None
    assert METHOD.implies == {"objective": "relativistic"}
    assert METHOD.objectives["relativistic"](R3ganConfig()).name == "relativistic"
    with pytest.raises(ValueError):
        R3ganConfig(gamma=-0.1)


@pytest.mark.parametrize("key", ["r1", "r2"])
def test_check_refuses_penalties_r1_and_r2_beside_r3gan(key):
    section = R3ganConfig(enabled=True)
    with pytest.raises(ConfigError, match=rf"'penalties\.{key}': got 10\.0 with r3gan\.enabled=true; allowed: 0"):
        METHOD.check(section, root_config("relativistic", **{key: 10.0}), relativistic_objective())
    METHOD.check(section, root_config("relativistic"), relativistic_objective())  # no error
    METHOD.check(R3ganConfig(), root_config(**{key: 10.0}), relativistic_objective())  # r3gan off: not its business


def test_check_refuses_the_relativistic_objective_without_r3gan():
    with pytest.raises(ConfigError, match="'objective': got 'relativistic' without r3gan"):
        METHOD.check(R3ganConfig(), root_config("relativistic"), relativistic_objective())
