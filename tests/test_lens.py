"""The lens: losses, schedule, identity start, gradient routing, resume."""

import math

import pytest
import torch
from torch import nn

from equilibria.methods.lens import Lens, LensComponent, lens_lambda, lens_loss
from equilibria.core.objectives import get_objective
from equilibria.core.parallel import SINGLE
from equilibria.core.trainer import Trainer


def test_schedule_values():
    k = 300
    assert lens_lambda(0, k) == 1.0
    assert lens_lambda(100, k) == pytest.approx(0.5)  # 1 - sin(pi/6)
    assert lens_lambda(150, k) == pytest.approx(1 - math.sqrt(2) / 2)  # 1 - sin(pi/4)
    assert lens_lambda(300, k) == pytest.approx(0.0, abs=1e-15)
    assert lens_lambda(301, k) == 0.0
    with pytest.raises(ValueError, match="anneal_steps: got 0"):
        lens_lambda(1, 0)


D_LENSED = [-1.0, 0.5, 2.0]


@pytest.mark.parametrize("objective, expected", [
    ("minimax", sum(math.log(1 + math.exp(t)) for t in D_LENSED) / 3),  # -log(1 - sigmoid(t))
    ("nonsaturating", sum(math.log(1 + math.exp(t)) for t in D_LENSED) / 3),
    ("lsgan", sum(t * t for t in D_LENSED) / 3),
    ("wgan", sum(D_LENSED) / 3),
])
def test_adversarial_term_per_objective(objective, expected):
    """L_A of Section 2 and Appendix A.1 is the objective's fake_loss on D(L(x))."""
    fake_loss = get_objective(objective).fake_loss
    assert fake_loss(torch.tensor(D_LENSED, dtype=torch.float64)).item() == pytest.approx(expected)


def test_objective_without_a_fake_term_refused():
    from equilibria.methods.vral import vral_objective

    with pytest.raises(ValueError, match="objective 'vral' has no loss for outputs on generated data alone"):
        LensComponent(Lens(1, width=2, blocks=1), None, vral_objective(1.0, -1.0))


def test_lens_starts_as_identity_and_keeps_shape():
    torch.manual_seed(0)
    lens = Lens(3, width=8, blocks=8)
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(lens(x), x, rtol=0, atol=0)
    assert sum(isinstance(m, nn.Conv2d) for m in lens.modules()) == 2 + 2 * 8
    assert all(m.kernel_size == (3, 3) and m.stride == (1, 1) for m in lens.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(ValueError, match=r"lens input: got shape \(4, 1, 16, 16\)"):
        lens(torch.randn(4, 1, 16, 16))


def test_lens_loss_terms_hand_computed():
    lens = Lens(1, width=4, blocks=1)
    with torch.no_grad():
        lens.tail.bias.fill_(0.5)  # L(x) = x + 0.5 everywhere
    real = torch.zeros(2, 1, 2, 2)
    disc = lambda x: x.flatten(1).sum(1)  # noqa: E731  D(L(x)) = 4 * 0.5 = 2
    loss = lens_loss(lens, disc, real, get_objective("wgan"), lam=0.25)
    assert loss.reconstruction.item() == pytest.approx(4 * 0.25)  # ||x - L(x)||^2 = 4 pixels * 0.5^2
    assert loss.adversarial.item() == pytest.approx(2.0)
    assert loss.total.item() == pytest.approx(0.25 * 2.0 + 1.0)
    per_pixel = lens_loss(lens, disc, real, get_objective("wgan"), lam=0.25, reconstruction="mean")
    assert per_pixel.reconstruction.item() == pytest.approx(0.25)  # the mean of 4 pixels * 0.5^2
    assert per_pixel.total.item() == pytest.approx(0.25 * 2.0 + 0.25)
    with pytest.raises(ValueError, match="reconstruction: got 'max'; allowed: sum, mean"):
        lens_loss(lens, disc, real, get_objective("wgan"), lam=0.25, reconstruction="max")


def test_lens_loss_on_a_kept_forward_pass_equals_a_fresh_one():
    """The module docstring's loop: L(x) computed once for D, its graph reused for the lens's step."""
    torch.manual_seed(0)
    lens = Lens(1, width=4, blocks=2)
    with torch.no_grad():
        lens.tail.weight.normal_(0, 0.1)
    disc = nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))
    real = torch.randn(3, 1, 4, 4)
    fresh = lens_loss(lens, disc, real, get_objective("nonsaturating"), 0.5)
    kept = lens_loss(lens, disc, real, get_objective("nonsaturating"), 0.5, lensed=lens(real))
    assert kept.total.item() == fresh.total.item()
    for a, b in zip(torch.autograd.grad(fresh.total, list(lens.parameters())),
                    torch.autograd.grad(kept.total, list(lens.parameters()))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class Gen(nn.Module):
    latent_dim, output_range = 4, (-1.0, 1.0)

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))

    def forward(self, z):
        return self.net(z)


class Batches:
    def __init__(self):
        self.g = torch.Generator().manual_seed(1)

    def next(self):
        return torch.rand(8, 1, 4, 4, generator=self.g) * 2 - 1

    def state_dict(self):
        return {"g": self.g.get_state()}

    def load_state_dict(self, state):
        self.g.set_state(state["g"])


def test_lens_receives_only_its_own_loss():
    torch.manual_seed(0)
    gen, disc = Gen(), nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))
    lens = Lens(1, width=4, blocks=1)
    with torch.no_grad():
        lens.tail.weight.normal_(0, 0.1)  # away from the identity, so every layer gets a gradient
    component = LensComponent(lens, torch.optim.SGD(lens.parameters(), lr=0.1), get_objective("nonsaturating"),
                              lam=1.0)
    trainer = Trainer(gen, disc, get_objective("nonsaturating"), Batches(),
                      g_optimizer=torch.optim.SGD(gen.parameters(), lr=0.1),
                      d_optimizer=torch.optim.SGD(disc.parameters(), lr=0.1), batch_size=8, components=[component])
    seen = []
    real = Batches().next()
    assert not component.transform_real(real).requires_grad  # D and G losses cannot reach the lens

    original_after = component.after_iteration

    def after(trainer_, raw):
        before = [p.detach().clone() for p in lens.parameters()]
        expected_grads = torch.autograd.grad(lens_loss(lens, disc, raw, get_objective("nonsaturating"), 1.0).total,
                                             list(lens.parameters()))
        logs = original_after(trainer_, raw)
        for p, b, g in zip(lens.parameters(), before, expected_grads):
            torch.testing.assert_close(p.detach(), b - 0.1 * g)
        seen.append(logs)
        return logs

    component.after_iteration = after
    trainer.train_step()
    assert seen and seen[0]["lens/lambda"] == 1.0 and seen[0]["lens/reconstruction"] > 0


def _lens_trainer(channels_last=False, n_adv=1):
    torch.manual_seed(0)
    gen, disc = Gen(), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 1), nn.Flatten(0))
    lens = Lens(1, width=4, blocks=1)
    with torch.no_grad():
        lens.tail.weight.normal_(0, 0.1)
    component = LensComponent(lens, torch.optim.SGD(lens.parameters(), lr=0.1), get_objective("nonsaturating"),
                              lam=1.0)
    trainer = Trainer(gen, disc, get_objective("nonsaturating"), Batches(),
                      g_optimizer=torch.optim.SGD(gen.parameters(), lr=0.1),
                      d_optimizer=torch.optim.SGD(disc.parameters(), lr=0.1), batch_size=8, components=[component],
                      channels_last=channels_last, n_adv=n_adv)
    return trainer, component, lens


def test_lens_runs_forward_once_per_iteration():
    """The adversary's input and the lens's update share one forward pass of the lens."""
    trainer, _, lens = _lens_trainer()
    calls = []
    lens.register_forward_hook(lambda *_: calls.append(1))
    for _ in range(3):
        trainer.train_step()
    assert len(calls) == 3


def test_only_the_last_critic_batch_keeps_the_lens_graph():
    """With n_adv = 3 the lens runs on each critic batch, recording autograd only on the last one, which
    its update uses: no forward pass is added, and the earlier batches build no graph."""
    trainer, _, lens = _lens_trainer(n_adv=3)
    tracked = []
    lens.register_forward_hook(lambda *_: tracked.append(torch.is_grad_enabled()))
    for _ in range(2):
        trainer.train_step()
    assert tracked == [False, False, True] * 2


def test_lens_update_recomputes_for_another_batch():
    """after_iteration on a batch other than the one transformed last takes a fresh forward pass (the
    kept one is of other data), and the update is the gradient of that batch's loss."""
    _, component, lens = _lens_trainer()
    disc = lambda x: x.flatten(1).sum(1)  # noqa: E731
    seen, other = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    component.transform_real(seen)
    before = [p.detach().clone() for p in lens.parameters()]
    expected = torch.autograd.grad(lens_loss(lens, disc, other, get_objective("nonsaturating"), 1.0).total,
                                   list(lens.parameters()))

    class T:
        step, parallel, discriminator = 0, SINGLE, staticmethod(disc)

    component.after_iteration(T(), other)
    for p, b, g in zip(lens.parameters(), before, expected):
        torch.testing.assert_close(p.detach(), b - 0.1 * g)


def test_channels_last_converts_the_lens():
    """train.channels_last reaches the methods' networks, not only the players'."""
    _, _, lens = _lens_trainer(channels_last=True)
    assert lens.blocks[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not _lens_trainer()[2].blocks[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_switch_off_once_identity_and_lambda_zero():
    lens = Lens(1, width=4, blocks=1)
    component = LensComponent(lens, torch.optim.SGD(lens.parameters(), lr=0.0), get_objective("wgan"), anneal_steps=1,
                              switch_off=True, switch_off_tol=1e-3)

    class T:
        step, parallel = 5, SINGLE
        discriminator = staticmethod(lambda x: x.flatten(1).sum(1))

    logs = component.after_iteration(T(), torch.rand(2, 1, 4, 4))
    assert logs["lens/lambda"] == 0.0 and component.off
    x = torch.rand(2, 1, 4, 4)
    assert component.transform_real(x) is x
    assert component.state_dict()["off"] is True


@pytest.mark.parametrize("reconstruction", ["sum", "mean"])
def test_reconstruction_per_pixel_logged_for_both_conventions(reconstruction):
    lens = Lens(1, width=4, blocks=1)
    with torch.no_grad():
        lens.tail.bias.fill_(0.5)  # every pixel off by 0.5: 0.25 per pixel
    component = LensComponent(lens, torch.optim.SGD(lens.parameters(), lr=0.0), get_objective("wgan"), lam=0.0,
                              reconstruction=reconstruction)

    class T:
        step, parallel = 0, SINGLE
        discriminator = staticmethod(lambda x: x.flatten(1).sum(1))

    logs = component.after_iteration(T(), torch.zeros(2, 1, 4, 4))
    assert logs["lens/reconstruction_per_pixel"].item() == pytest.approx(0.25)
    assert logs["lens/reconstruction"].item() == pytest.approx(0.25 * (16 if reconstruction == "sum" else 1))
