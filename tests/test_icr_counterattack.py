"""ICR Figure 8: over-training the discriminator with CGD, and the generator's counterattack."""

import copy

import pytest
import torch
import torch.nn.functional as F
from test_trainer import Gen, batches, flat, sgd_step, sgd_trainer
from torch.func import functional_call

from equilibria.analysis.icr_counterattack import counterattack, overtrain_alone, overtrain_with_cgd
from equilibria.methods.vral import vral_objective


def _split(module, vector):
    out, i = {}, 0
    for name, p in module.named_parameters():
        out[name] = vector[i:i + p.numel()].view_as(p)
        i += p.numel()
    return out


def nash_discriminator_moves(state, g0, d0, steps, step_sizes):
    """The discriminator after ``steps`` Nash moves of the local game of f = -L_adv (ICR Section 5) with
    the generator reset each time, from the full mixed Hessian by autograd in float64:
    (I + A_y D_yx A_x D_xy) dy = A_y (grad_y - D_yx A_x grad_x); ``step_sizes(grad_x, grad_y)``
    gives the diagonals A_x, A_y."""
    reference_batches = batches()
    reference_batches.load_state_dict(state["batches"])
    x0, y = flat(g0).double(), flat(d0).double()
    g64, d64 = copy.deepcopy(g0).double(), copy.deepcopy(d0).double()
    torch.manual_seed(4)
    for _ in range(steps):
        real, z = reference_batches.next().double(), torch.randn(4, 3).double()

        def f(x, y):
            fake = functional_call(g64, _split(g64, x), (z,))
            d = lambda inputs: functional_call(d64, _split(d64, y), (inputs,))  # noqa: E731
            return -(F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean())

        grad_x, grad_y = torch.autograd.functional.jacobian(f, (x0, y))
        (_, d_xy), (d_yx, _) = torch.autograd.functional.hessian(f, (x0, y))
        a_x, a_y = step_sizes(grad_x, grad_y)
        system = torch.eye(len(y), dtype=torch.float64) + a_y[:, None] * d_yx @ (a_x[:, None] * d_xy)
        y = y + torch.linalg.solve(system, a_y * (grad_y - d_yx @ (a_x * grad_x)))
    return y


def test_cgd_overtraining_keeps_the_closed_form_discriminator_move_and_the_checkpoint_generator():
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    trainer.train_step()
    state = copy.deepcopy(trainer.state_dict())
    g0, d0 = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    eta = 0.3
    result = overtrain_with_cgd(trainer, state, steps=2, lr=eta, seed=4)
    y = nash_discriminator_moves(state, g0, d0, 2, lambda gx, gy: (torch.full_like(gx, eta), torch.full_like(gy, eta)))
    assert torch.equal(flat(trainer.generator), flat(g0))
    torch.testing.assert_close(flat(trainer.discriminator).double(), y, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat([v.flatten() for v in result.values()]), flat(trainer.discriminator))
    assert not torch.allclose(flat(trainer.discriminator), flat(d0))


def test_adaptive_overtraining_takes_acgd_steps():
    """ACGD's first step sizes (Algorithm 1, bias-corrected): alpha / (|g| + eps) per parameter."""
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    state = copy.deepcopy(trainer.state_dict())
    g0, d0 = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    alpha, eps = 0.01, 1e-5
    overtrain_with_cgd(trainer, state, steps=1, lr=alpha, seed=4, adaptive=True)
    y = nash_discriminator_moves(state, g0, d0, 1, lambda gx, gy: (alpha / (gx.abs() + eps), alpha / (gy.abs() + eps)))
    torch.testing.assert_close(flat(trainer.discriminator).double(), y, rtol=1e-4, atol=1e-6)
    assert torch.equal(flat(trainer.generator), flat(g0))


def test_overtraining_alone_with_a_new_optimizer_matches_a_hand_written_loop():
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    trainer.train_step()
    state = copy.deepcopy(trainer.state_dict())
    g0, d = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    result = overtrain_alone(trainer, state, steps=3, seed=6, optimizer=lambda p: torch.optim.Adam(p, lr=0.05))

    reference_batches = batches()
    reference_batches.load_state_dict(state["batches"])
    adam = torch.optim.Adam(d.parameters(), lr=0.05)
    torch.manual_seed(6)
    for _ in range(3):
        real, fake = reference_batches.next(), g0(torch.randn(4, 3)).detach()
        loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        adam.zero_grad()
        loss.backward()
        adam.step()
    torch.testing.assert_close(flat(trainer.discriminator), flat(d))
    torch.testing.assert_close(torch.cat([v.flatten() for v in result.values()]), flat(d))
    assert torch.equal(flat(trainer.generator), flat(g0))


def test_counterattack_trains_the_generator_alone_against_the_given_discriminator():
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    trainer.train_step()
    state = copy.deepcopy(trainer.state_dict())
    other = copy.deepcopy(trainer.discriminator)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)
    g = copy.deepcopy(trainer.generator)
    probe_real, probe_noise = torch.randn(6, 2), torch.randn(5, 3)
    rows = counterattack(trainer, state, copy.deepcopy(other.state_dict()), steps=3, every=2, real=probe_real,
                         noise=probe_noise, seed=2)

    reference_batches = batches()
    reference_batches.load_state_dict(state["batches"])
    torch.manual_seed(2)
    for _ in range(3):
        real, fake = reference_batches.next(), g(torch.randn(4, 3))
        sgd_step(g, F.softplus(-other(fake)).mean(), 0.1)  # -log D(G(z)), D fixed

    def loss(generator):
        return (F.softplus(-other(probe_real)).mean() + F.softplus(other(generator(probe_noise))).mean()).item()

    assert [r["step"] for r in rows] == [0, 2, 3]
    torch.testing.assert_close(flat(trainer.generator), flat(g))
    torch.testing.assert_close(flat(trainer.discriminator), flat(other))
    with torch.no_grad():
        assert rows[-1]["loss"] == pytest.approx(loss(g), rel=1e-5)
        assert rows[0]["loss"] == pytest.approx(loss(_generator_at(state)), rel=1e-5)
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


def _generator_at(state):
    g = Gen()
    g.load_state_dict(state["generator"])
    return g


def test_bad_arguments():
    trainer = sgd_trainer(update="simultaneous")
    state = trainer.state_dict()
    with pytest.raises(ValueError, match="steps"):
        overtrain_with_cgd(trainer, state, steps=0, lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        overtrain_alone(trainer, state, steps=0, optimizer=torch.optim.Adam)
    with pytest.raises(ValueError, match="steps and every"):
        counterattack(trainer, state, state["discriminator"], steps=1, every=0, real=torch.zeros(1, 2),
                      noise=torch.zeros(1, 3))
    trainer.objective = vral_objective(1.0, -1.0)  # has no value game
    with pytest.raises(ValueError, match="zero-sum"):
        overtrain_with_cgd(trainer, state, steps=1, lr=0.1)
