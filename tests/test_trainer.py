"""The training iteration against hand-written reference updates, and the extension points."""

import copy

import pytest
from conftest import CyclingBatches
import torch
from torch import nn

from equilibria.core.objectives import get_objective
from equilibria.core.penalties import GradientPenalty, gradient_penalty
from equilibria.core.components import Component
from equilibria.core.trainer import Trainer
from equilibria.methods.r3gan import relativistic_objective


def batches():
    return CyclingBatches((4, 2), count=6)


class Gen(nn.Sequential):
    latent_dim = 3
    output_range = None

    def __init__(self):
        super().__init__(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))


class Disc(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))


def players(seed=0):
    torch.manual_seed(seed)
    return Gen(), Disc()


def sgd_trainer(update="alternating", n_adv=1, lr=0.1, **kwargs):
    g, d = players()
    objective = kwargs.pop("objective", "nonsaturating")
    return Trainer(g, d, get_objective(objective) if isinstance(objective, str) else objective, batches(),
                   g_optimizer=torch.optim.SGD(g.parameters(), lr=lr),
                   d_optimizer=torch.optim.SGD(d.parameters(), lr=lr),
                   batch_size=4, n_adv=n_adv, update=update, **kwargs)


def sgd_step(module, loss, lr, source=None):
    """module -= lr * grad of loss w.r.t. source's parameters (source defaults to module)."""
    grads = torch.autograd.grad(loss, list((source or module).parameters()), retain_graph=True)
    with torch.no_grad():
        for p, grad in zip(module.parameters(), grads):
            p -= lr * grad


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("n_adv", [1, 3])
def test_alternating_iteration_equals_reference(n_adv):
    trainer = sgd_trainer(n_adv=n_adv)
    g, d = players()
    reference_batches = batches()
    objective = get_objective("nonsaturating")
    torch.manual_seed(123)
    for _ in range(n_adv):  # adversary: fresh real batch and noise each step, generator held fixed
        real = reference_batches.next()
        fake = g(torch.randn(4, 3)).detach()
        sgd_step(d, objective.adversary_loss(d(real), d(fake)), 0.1)
    fake = g(torch.randn(4, 3))  # generator against the updated adversary
    sgd_step(g, objective.generator_loss(None, d(fake)), 0.1)

    torch.manual_seed(123)
    trainer.train_step()
    torch.testing.assert_close(flat(trainer.discriminator), flat(d))
    torch.testing.assert_close(flat(trainer.generator), flat(g))
    assert trainer.step == 1


def test_the_generator_step_draws_generator_batch_size_samples():
    """AutoGAN's gen_bs against dis_bs: the adversary's steps on batches of 4, the generator's on 10 codes."""
    trainer = sgd_trainer(n_adv=2, generator_batch_size=10)
    g, d = players()
    reference_batches = batches()
    objective = get_objective("nonsaturating")
    torch.manual_seed(5)
    for _ in range(2):
        real = reference_batches.next()
        sgd_step(d, objective.adversary_loss(d(real), d(g(torch.randn(4, 3)).detach())), 0.1)
    sgd_step(g, objective.generator_loss(None, d(g(torch.randn(10, 3)))), 0.1)
    torch.manual_seed(5)
    trainer.train_step()
    torch.testing.assert_close(flat(trainer.discriminator), flat(d))
    torch.testing.assert_close(flat(trainer.generator), flat(g))


def test_simultaneous_iteration_uses_one_batch_and_the_old_players():
    trainer = sgd_trainer(update="simultaneous", objective="wgan",
                          penalties=[GradientPenalty(10.0)])
    g, d = players()
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    objective = get_objective("wgan")
    torch.manual_seed(5)
    real = batches().next()
    fake = g0(torch.randn(4, 3))
    loss_adv = objective.adversary_loss(d0(real), d0(fake)) + 10 * gradient_penalty(d0, real, fake)
    sgd_step(d, loss_adv, 0.1, source=d0)
    sgd_step(g, objective.generator_loss(None, d0(fake)), 0.1, source=g0)

    torch.manual_seed(5)
    logs = trainer.train_step()
    torch.testing.assert_close(flat(trainer.discriminator), flat(d))
    torch.testing.assert_close(flat(trainer.generator), flat(g))
    assert set(logs) >= {"loss_adv", "loss_gen", "adv/objective", "adv/gradient_penalty"}


class GradientDescentAscent:
    """A joint optimizer: simultaneous descent for the generator, ascent for the adversary."""

    def __init__(self, g, d, lr):
        self.g, self.d, self.lr = list(g.parameters()), list(d.parameters()), lr

    def step(self, loss):
        grads = torch.autograd.grad(loss, self.g + self.d)
        with torch.no_grad():
            for p, grad in zip(self.g, grads[: len(self.g)]):
                p -= self.lr * grad
            for p, grad in zip(self.d, grads[len(self.g):]):
                p += self.lr * grad
        return {"joint_calls": 1}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_joint_update_hands_minus_untruncated_adversary_loss_to_the_optimizer():
    g, d = players()
    trainer = Trainer(g, d, get_objective("hinge"), batches(), joint_optimizer=GradientDescentAscent(g, d, 0.1),
                      batch_size=4, update="joint")
    g_ref, d_ref = players()
    torch.manual_seed(9)
    real = batches().next()
    fake = g_ref(torch.randn(4, 3))
    f = d_ref(real).mean() - d_ref(fake).mean() - 2  # the hinge's value without truncation
    grads = torch.autograd.grad(f, list(g_ref.parameters()) + list(d_ref.parameters()))
    expected_g = flat(g_ref) - 0.1 * torch.cat([x.flatten() for x in grads[:4]])
    expected_d = flat(d_ref) + 0.1 * torch.cat([x.flatten() for x in grads[4:]])
    torch.manual_seed(9)
    logs = trainer.train_step()
    torch.testing.assert_close(flat(trainer.generator), expected_g)
    torch.testing.assert_close(flat(trainer.discriminator), expected_d)
    assert logs["joint_calls"] == 1


class Recorder(Component):
    """Exercises every hook: zeroes the real batch, adds a term, freezes the generator."""

    name = "recorder"

    def __init__(self):
        self.calls = []
        self.scale = nn.Linear(1, 1)  # a network of its own, to be checkpointed

    def transform_real(self, real):
        self.calls.append("transform_real")
        return real * 0

    def update_before_adversary(self, trainer, real, fake, d_real, d_fake):
        assert not d_real.requires_grad and not d_fake.requires_grad
        self.calls.append("update_before_adversary")
        return {"seen": d_real.mean()}

    def adversary_terms(self, trainer, real, fake, d_real, d_fake):
        self.calls.append("adversary_terms")
        assert real.abs().sum() == 0  # the adversary sees the transformed batch
        return {"extra": torch.tensor(0.25)}

    def adjust_generator_gradient(self, trainer, step):
        self.calls.append("adjust_generator_gradient")
        assert step.fake.requires_grad and step.real.abs().sum() == 0
        for p in trainer.generator.parameters():
            p.grad.zero_()
        return {"adjusted": 1.0}

    def after_iteration(self, trainer, real):
        self.calls.append("after_iteration")
        assert real.abs().sum() > 0  # the raw batch
        return {}

    def modules(self):
        return {"scale": self.scale}


def test_component_hooks_run_in_order_and_shape_the_update():
    recorder = Recorder()
    trainer = sgd_trainer(n_adv=2, components=[recorder])
    before = flat(trainer.generator)
    logs = trainer.train_step()
    assert recorder.calls == ["transform_real", "update_before_adversary", "adversary_terms"] * 2 + [
        "adjust_generator_gradient", "after_iteration"]
    torch.testing.assert_close(flat(trainer.generator), before)  # its gradient was zeroed
    assert logs["adv/extra"].item() == 0.25 and logs["adjusted"] == 1.0
    assert "recorder" in trainer.state_dict()["components"]


def test_weight_clipping_after_adversary_step():
    trainer = sgd_trainer(lr=10.0, weight_clip=0.01)
    trainer.train_step()
    assert flat(trainer.discriminator).abs().max().item() <= 0.01 + 1e-7


def test_ema_tracks_generator():
    trainer = sgd_trainer(ema=0.9)
    start = flat(trainer.ema.model)
    trainer.train_step()
    expected = 0.9 * start + 0.1 * flat(trainer.generator)
    torch.testing.assert_close(flat(trainer.ema.model), expected)


def test_diagnostics_report_gradient_norms():
    trainer = sgd_trainer()
    logs = trainer.train_step(diagnostics=True)
    assert logs["grad_norm_adv"] > 0 and logs["grad_norm_gen"] > 0
    assert {"d_real", "d_fake"} <= set(logs)


def test_state_dict_round_trip_continues_identically():
    a = sgd_trainer(n_adv=2, ema=0.5)
    for _ in range(2):
        a.train_step()
    b = sgd_trainer(n_adv=2, ema=0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    torch.manual_seed(3)
    a.train_step()
    torch.manual_seed(3)
    b.train_step()
    torch.testing.assert_close(flat(a.generator), flat(b.generator))
    torch.testing.assert_close(flat(a.ema.model), flat(b.ema.model))
    assert a.step == b.step == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update": "sometimes"}, "^update: got 'sometimes'"),
        ({"update": "simultaneous", "n_adv": 5}, "^n_adv: got 5"),
        ({"n_adv": -1}, "^n_adv: got -1"),
        ({"update": "joint"}, "needs a joint optimizer"),
        ({"generator_batch_size": 0}, "^generator_batch_size: got 0; allowed: an integer >= 1"),
        ({"generator_batch_size": 8, "update": "simultaneous"}, "^generator_batch_size: got 8 .* update=simultaneous"),
        ({"generator_batch_size": 8, "objective": relativistic_objective()}, "'relativistic'; allowed: batch"),
    ],
)
def test_bad_trainer_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sgd_trainer(**kwargs)


def test_sample_gradient_norm_closed_form():
    from equilibria.core.trainer import sample_gradient_norm

    w = torch.tensor([3.0, 4.0])
    x = torch.randn(5, 2, requires_grad=True)
    loss = torch.nn.functional.softplus(-(x @ w)).mean()  # l_i = softplus(-w.x_i): grad = -sigmoid(-w.x_i) w
    expected = (torch.sigmoid(-(x @ w)) * 5.0).mean()
    torch.testing.assert_close(sample_gradient_norm(loss, x), expected.detach())
