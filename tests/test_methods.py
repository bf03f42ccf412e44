"""The method mechanism: a method defined outside the package trains, checkpoints and resumes with no
edit to the core; dependencies point one way; every built-in method is registered the same way."""

import ast
import json
from pathlib import Path

import pytest
import torch
from conftest import CyclingBatches, record_adversary_batches
from test_run import SMALL, final_weights, metrics
from test_trainer import players

from equilibria.core.components import Component
from equilibria.core.method import Contribution, Method
from equilibria.core.penalties import R1, R2
from equilibria.core.sections import Float, MethodConfig, option
from equilibria.core.trainer import Trainer
from equilibria.methods import METHODS, AdvAs, register
from equilibria.methods.r3gan import relativistic_objective
from equilibria.training.config import load_config
from equilibria.training.run import load_run_config, train

ROOT = Path(__file__).parents[1]


# -- a method of one's own -------------------------------------------------------------------------
class Damped(Component):
    """Adds w E D(x)^2 to L_adv and halves the generator's gradient; counts its calls (state)."""

    name = "damped"

    def __init__(self, weight: float):
        self.weight, self.calls = weight, 0

    def adversary_terms(self, trainer, real, fake, d_real, d_fake):
        return {"damped": self.weight * d_real.pow(2).mean()}

    def adjust_generator_gradient(self, trainer, step):
        for p in trainer.generator.parameters():
            p.grad.mul_(0.5)
        self.calls += 1
        return {"damped/calls": float(self.calls)}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


class DampedConfig(MethodConfig):
    """``damped``: a toy method of a test."""

    weight: Float = option(0.1, "weight of E D(x)^2 in L_adv", ge=0.0)


DAMPED = Method("damped", DampedConfig, lambda section, context: Contribution(components=[Damped(section.weight)]))


@pytest.fixture
def damped_registered():
    register(DAMPED)
    yield
    METHODS.pop("damped")


def test_a_method_registered_outside_the_package_trains_and_resumes_exactly(tmp_path, damped_registered):
    extra = ["damped.enabled=true", "damped.weight=0.5"]
    full = train(load_config(None, SMALL + extra), tmp_path / "full")
    half = train(load_config(None, SMALL + extra + ["train.steps=6"]), tmp_path / "half")
    train(load_run_config(half, ["train.steps=12"]), half, resume=True)
    assert metrics(half) == metrics(full)
    last = metrics(full)[-1]
    assert last["damped/calls"] == 12.0 and last["adv/damped"] > 0
    for a, b in zip(final_weights(full), final_weights(half)):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    plain = train(load_config(None, SMALL), tmp_path / "plain")
    assert metrics(plain)[-1]["loss_gen"] != last["loss_gen"]  # the method changed the run
    assert json.loads((full / "metrics.jsonl").read_text().splitlines()[0])["step"] == 2


def test_the_toy_method_is_refused_once_unregistered():
    from equilibria.training.config import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'damped'"):
        load_config(None, ["damped.enabled=true"])


def test_built_in_methods_are_registered_in_paper_order():
    assert list(METHODS)[:5] == ["advas", "cgd", "lens", "vral", "r3gan"]
    assert all(isinstance(method, Method) for method in METHODS.values())


# -- dependencies point one way ---------------------------------------------------------------------------
def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


JOB_LAYER = ("equilibria.training", "equilibria.cli", "equilibria.experiment", "equilibria.report",
             "equilibria.analysis")


@pytest.mark.parametrize("package, forbidden", [
    ("core", ("equilibria.methods", *JOB_LAYER)),
    ("methods", JOB_LAYER),
    ("optim", ("equilibria.methods", "equilibria.core.trainer", *JOB_LAYER)),
    ("metrics", ("equilibria.methods", *JOB_LAYER)),
    ("models", ("equilibria.methods", "equilibria.core", *JOB_LAYER)),
    ("data", ("equilibria.methods", "equilibria.core", *JOB_LAYER)),
])
def test_dependencies_point_one_way(package, forbidden):
    offenders = {f"{path.relative_to(ROOT)} imports {name}"
                 for path in (ROOT / "equilibria" / package).rglob("*.py")
                 for name in imports(path) if name.startswith(forbidden)}
    assert not offenders


# -- AdvAs on R3GAN: r includes R1 and R2, in both modes ---------------------------------------------------
def r3gan_trainer(advas, gamma=0.5):
    gen, disc = players()
    return Trainer(gen, disc, relativistic_objective(), CyclingBatches(), g_optimizer=torch.optim.SGD(gen.parameters(), lr=0.1),
                   d_optimizer=torch.optim.SGD(disc.parameters(), lr=0.1), batch_size=8,
                   penalties=[R1(gamma), R2(gamma)], components=[advas])


@pytest.mark.parametrize("mode", ["exact", "hvp"])
def test_advas_r_on_r3gan_includes_r1_and_r2(mode):
    trainer = r3gan_trainer(AdvAs(lam=1.0, mode=mode))
    seen = record_adversary_batches(trainer)
    logs = trainer.train_step()
    d, real, fake = trainer.discriminator, seen["real"], seen["fake"]
    real_x, fake_x = real.clone().requires_grad_(), fake.clone().requires_grad_()
    (g_real,) = torch.autograd.grad(d(real_x).sum(), real_x, create_graph=True)
    (g_fake,) = torch.autograd.grad(d(fake_x).sum(), fake_x, create_graph=True)
    by_hand = (torch.nn.functional.softplus(d(fake) - d(real)).mean()
               + 0.5 * 0.5 * g_real.pow(2).sum(1).mean() + 0.5 * 0.5 * g_fake.pow(2).sum(1).mean())
    grads = torch.autograd.grad(by_hand, list(d.parameters()))
    r = sum(g.pow(2).sum() for g in grads)
    assert float(logs["advas/r"]) == pytest.approx(float(r), rel=1e-4)
    without_penalties = torch.autograd.grad(torch.nn.functional.softplus(d(fake) - d(real)).mean(),
                                            list(d.parameters()))
    assert abs(float(r) - float(sum(g.pow(2).sum() for g in without_penalties))) > 1e-3 * float(r)


def test_advas_modes_agree_on_r3gan():
    from equilibria.methods.advas import advas_gradient

    trainer = r3gan_trainer(AdvAs())
    real = torch.randn(8, 2)
    fake = trainer.generator(torch.randn(8, 3))

    def loss(x):
        return trainer.adversary_loss(real, x)[0]

    exact = advas_gradient(loss, fake, trainer.generator, trainer.discriminator, mode="exact")
    hvp = advas_gradient(loss, fake, trainer.generator, trainer.discriminator, mode="hvp", difference="central")
    a, b = torch.cat([g.flatten() for g in exact.gradient]), torch.cat([g.flatten() for g in hvp.gradient])
    assert float(a @ b / (a.norm() * b.norm())) > 0.99


def test_unbiased_advas_on_r3gan_uses_the_per_sample_r1_and_r2():
    trainer = r3gan_trainer(AdvAs(lam=1.0, estimator="unbiased", mode="exact"))
    logs = trainer.train_step()  # the estimator checks that the per-sample terms average to L_adv
    assert torch.isfinite(torch.as_tensor(logs["advas/r"])) and float(logs["advas/g_advas_norm"]) > 0


def test_acgd_plays_the_relativistic_game_with_r1_and_r2():
    """R3GAN's objective has a zero-sum value, so CGD/ACGD accept it: f = -(L_rel + R1 + R2)."""
    from equilibria.training.build import build_trainer

    config = load_config(None, ["data.name=ring", "data.num_samples=256", "generator.arch=mlp", "generator.width=8",
                                "discriminator.width=8", "train.batch_size=16", "r3gan.enabled=true",
                                "r3gan.gamma=0.5", "cgd.enabled=true", "cgd.lr=1e-3"])
    assert (config.objective, config.train.update) == ("relativistic", "joint")
    trainer = build_trainer(config)
    logs = trainer.train_step()
    parts = logs["adv/objective"] + logs["adv/r1"] + logs["adv/r2"]
    torch.testing.assert_close(logs["loss_adv"], parts)
    assert float(logs["adv/r1"]) > 0 and float(logs["adv/r2"]) > 0 and logs["cg/converged"] == 1.0
