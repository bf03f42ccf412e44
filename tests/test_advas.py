"""AdvAs against hand computations, brute-force finite differences and naive per-sample loops."""

import copy
import itertools
import re
import warnings
from pathlib import Path

import pytest
from conftest import CyclingBatches, record_adversary_batches
import torch
import yaml
from torch import nn
from torch.autograd import gradgradcheck

from equilibria.methods.advas import (
    AdvAs,
    AdvAsGradient,
    add_advas_gradient,
    advas_gradient,
    advas_gradient_unbiased,
    advas_lambda,
    per_sample_adversary_loss,
)
from equilibria.models import build_discriminator, build_generator
from equilibria.core.objectives import get_objective, untruncated
from equilibria.autodiff import CompositeNorms, FrozenKinks
from equilibria.core.penalties import GradientPenalty, apply_spectral_norm, gradient_penalty
from equilibria.core.components import Component
from equilibria.core.method import BuildContext
from equilibria.methods.advas import METHOD
from equilibria.training.config import ConfigError, load_config
from equilibria.core.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
WGAN = get_objective("wgan")


class Gen(nn.Sequential):
    latent_dim = 3
    output_range = None

    def __init__(self, *layers):
        super().__init__(*(layers or (nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))))


def smooth_disc():
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 4), nn.Softplus(), nn.Linear(4, 1), nn.Flatten(0))


def tiny_conv_pair():
    """Generator and critic on 1 x 6 x 6 images with the E.1 layer types (InstanceNorm, ReLU)."""
    gen = Gen(nn.Linear(3, 2 * 3 * 3), nn.ReLU(), nn.Unflatten(1, (2, 3, 3)),
              nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1), nn.InstanceNorm2d(2), nn.ReLU(),
              nn.ConvTranspose2d(2, 1, 3, padding=1), nn.Sigmoid())
    disc = nn.Sequential(nn.Conv2d(1, 3, 4, stride=2, padding=1), nn.InstanceNorm2d(3), nn.ReLU(),
                         nn.Conv2d(3, 4, 3, padding=1), nn.InstanceNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 1), nn.Flatten(0))
    return gen, disc


def wgan_gp(disc, real, weight=10.0):
    return lambda x: WGAN.adversary_loss(disc(real), disc(x)) + weight * gradient_penalty(disc, real, x)


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def directional_differences(r_of, params, directions, h=1e-6):
    """Central differences of r along each direction (a list of tensors like ``params``) in parameter space."""
    out = []
    for direction in directions:
        values = []
        for step in (h, -2 * h, h):
            with torch.no_grad():
                torch._foreach_add_(params, direction, alpha=step)
            values.append(float(r_of().detach()))
        out.append((values[0] - values[1]) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


def r_by_autograd(loss, disc):
    v = torch.autograd.grad(loss, list(disc.parameters()), create_graph=True, allow_unused=True,
                            materialize_grads=True)
    return flat(v).pow(2).sum()


# -- r and g_AdvAs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["exact", "hvp"])
def test_r_and_its_gradient_match_hand_computation(mode):
    # Linear critic D(x) = w.x + b, linear generator G(z) = A z + c, WGAN-GP: grad_x D = w, so
    # grad_w L_adv = mean(G(z)) - mean(x) + 2 l (||w|| - 1) w / ||w||, grad_b = 0, r = ||grad_w||^2,
    # grad_c r = 2 grad_w and grad_A r = 2 grad_w mean(z)^T.
    torch.manual_seed(0)
    gen, disc = Gen(nn.Linear(3, 2)).double(), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)).double()
    z, real = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    w = disc[0].weight.detach()[0]
    grad_w = gen(z).detach().mean(0) - real.mean(0) + 2 * 10.0 * (w.norm() - 1) * w / w.norm()
    result = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode)
    torch.testing.assert_close(result.r, grad_w.pow(2).sum())
    torch.testing.assert_close(result.gradient[0], 2 * torch.outer(grad_w, z.mean(0)), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(result.gradient[1], 2 * grad_w, rtol=1e-6, atol=1e-8)
    assert result.mode == mode


@pytest.mark.parametrize("difference", ["forward", "central"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_and_hvp_agree_where_double_backward_works(dtype, difference):
    torch.manual_seed(1)
    gen, disc = Gen().to(dtype), smooth_disc().to(dtype)
    z, real = torch.randn(16, 3, dtype=dtype), torch.randn(16, 2, dtype=dtype)
    results = {}
    for mode in ("exact", "hvp"):
        torch.manual_seed(2)
        results[mode] = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode, difference=difference)
    exact, hvp = flat(results["exact"].gradient), flat(results["hvp"].gradient)
    assert cosine(exact, hvp) >= 0.999
    # a float32 forward difference is O(sqrt(macheps)) accurate at best: about 1e-3 (docs/ADVAS.md)
    assert relative_error(hvp, exact) <= (3e-3 if (dtype, difference) == (torch.float32, "forward") else 1e-3)
    torch.testing.assert_close(results["hvp"].r, results["exact"].r)


@pytest.mark.parametrize("networks", ["smooth", "instance_norm_relu"])
def test_both_modes_match_brute_force_difference_of_r(networks):
    # float64; 6 random directions in theta: d . g_AdvAs against (r(theta + h d) - r(theta - h d)) / 2h
    torch.manual_seed(3)
    gen, disc = (Gen(), smooth_disc()) if networks == "smooth" else tiny_conv_pair()
    gen, disc = gen.double(), disc.double()
    z = torch.randn(3, 3, dtype=torch.float64)
    real = torch.rand((3,) + tuple(gen(z).shape[1:]), dtype=torch.float64)
    params = list(gen.parameters())
    directions = [[torch.randn_like(p) for p in params] for _ in range(6)]

    def r_of():
        torch.manual_seed(4)
        return r_by_autograd(wgan_gp(disc, real)(gen(z)), disc)

    expected = directional_differences(r_of, params, directions)
    assert expected.abs().max() > 0
    for mode in ("exact", "hvp"):
        torch.manual_seed(4)
        result = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode)
        along = torch.stack([flat(result.gradient) @ flat(d) for d in directions])
        assert relative_error(along, expected) <= 1e-5, mode
        torch.testing.assert_close(result.r, r_of().detach())


def test_hvp_on_the_advas_mnist_networks_with_instance_norm_and_gradient_penalty():
    torch.manual_seed(5)
    gen = build_generator("advas_mnist", out_shape=(1, 28, 28))
    disc = build_discriminator("advas_mnist", in_shape=(1, 28, 28))
    z, real = torch.randn(4, gen.latent_dim), torch.rand(4, 1, 28, 28)
    results = {}
    for mode in ("hvp", "exact"):
        torch.manual_seed(6)
        results[mode] = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode)
    hvp, exact = flat(results["hvp"].gradient), flat(results["exact"].gradient)
    assert torch.isfinite(hvp).all() and hvp.norm() > 0
    assert cosine(hvp, exact) >= 0.999
    assert relative_error(hvp, exact) <= 2e-2  # float32 finite difference on a strongly curved L_adv


# -- the pieces of the two modes -------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["batch", "instance", "layer", "instance_affine_running"])
def test_composite_norms_match_native_values_and_differentiate_to_third_order(layer):
    torch.manual_seed(7)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    module = {"batch": nn.BatchNorm2d(2), "instance": nn.InstanceNorm2d(2), "layer": nn.LayerNorm([2, 4, 4]),
              "instance_affine_running": nn.InstanceNorm2d(2, affine=True, track_running_stats=True)}[layer].double()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(0.5, 1.5)
    native_module = copy.deepcopy(module)
    with CompositeNorms():
        composite = module(x)
    torch.testing.assert_close(composite, native_module(x))
    for ours, theirs in zip(module.buffers(), native_module.buffers()):
        torch.testing.assert_close(ours, theirs)  # running statistics updated alike
    weights = torch.randn(3, 2, 4, 4, dtype=torch.float64)

    def first_derivative(x):  # third derivatives of the layer through gradgradcheck of this
        with CompositeNorms():
            y = module(x)
        return torch.autograd.grad((y * weights).pow(2).sum(), x, create_graph=True)[0]

    assert gradgradcheck(first_derivative, (x,))


def test_frozen_kinks_replay_the_recorded_branches():
    torch.manual_seed(8)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.LeakyReLU(0.2),
                        nn.Hardtanh(-0.3, 0.3), nn.Flatten())
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    net = net.double()
    kinks = FrozenKinks()
    with kinks.recording():
        native = net(x)
    assert len(kinks.branches) == 4
    with kinks.replaying():
        replayed = net(x)
    torch.testing.assert_close(replayed, native)
    # at another input, the replay is the linear map of the recorded branches: linear in x
    y = torch.randn_like(x)
    with kinks.replaying():
        one_step = net(x + y) - native
    with kinks.replaying():
        two_steps = net(x + 2 * y) - native
    torch.testing.assert_close(two_steps, 2 * one_step)
    assert not torch.allclose(one_step, net(x + y) - native)  # the native functions are not linear there
    with pytest.raises(RuntimeError, match="piecewise-linear functions"), kinks.replaying():
        net[:2](x)


def test_hvp_matches_exact_on_networks_with_every_frozen_kink_and_a_max_pool():
    torch.manual_seed(9)
    gen = Gen(nn.Linear(3, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4))).double()
    disc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2), nn.ReLU6(),
                         nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0)).double()
    z, real = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 1, 4, 4, dtype=torch.float64)
    hinge = get_objective("hinge")  # truncated: a relu kink in the objective too
    results = {}
    for mode in ("exact", "hvp"):
        torch.manual_seed(10)
        loss = lambda x: hinge.adversary_loss(disc(real), disc(x)) + gradient_penalty(disc, real, x)
        # a step large enough to cross kinks (relative error about 1 if they were not frozen)
        results[mode] = advas_gradient(loss, gen(z), gen, disc, mode=mode, difference="central", eps_scale=1e-2)
    assert relative_error(flat(results["hvp"].gradient), flat(results["exact"].gradient)) <= 1e-3


def test_every_evaluation_uses_the_same_random_draws():
    # L_adv with the gradient penalty draws its interpolation weights inside; the result must equal
    # the one for the weights of a single draw, and the random state must end as after one draw.
    torch.manual_seed(11)
    gen, disc = Gen().double(), smooth_disc().double()
    z, real = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    torch.manual_seed(12)
    e = torch.rand(8, 1, dtype=torch.float64)
    after_one_draw = torch.get_rng_state()

    def fixed_weights(x):
        x_hat = torch.lerp(x, real, e)
        slope = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)[0]
        return WGAN.adversary_loss(disc(real), disc(x)) + 10 * (slope.norm(dim=1) - 1).pow(2).mean()

    for mode, difference in (("hvp", "forward"), ("hvp", "central"), ("exact", "forward"), ("auto", "forward")):
        expected = advas_gradient(fixed_weights, gen(z), gen, disc, mode="exact")
        torch.manual_seed(12)
        result = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode, difference=difference)
        assert torch.equal(torch.get_rng_state(), after_one_draw), mode
        assert relative_error(flat(result.gradient), flat(expected.gradient)) <= 1e-6, (mode, difference)


def test_advas_leaves_the_discriminator_untouched():
    torch.manual_seed(13)
    gen = Gen()
    disc = apply_spectral_norm(nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 1),
                                             nn.Flatten(0)))
    z, real = torch.randn(8, 3), torch.randn(8, 2)
    disc(real).sum().backward()
    before = copy.deepcopy(disc.state_dict())
    grads = [p.grad.clone() for p in disc.parameters()]
    for mode in ("exact", "hvp", "auto"):
        result = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode=mode)
        assert flat(result.gradient).norm() > 0
        for key, value in disc.state_dict().items():  # parameters, BatchNorm statistics, spectral-norm vectors
            assert torch.equal(value, before[key]), (mode, key)
        assert all(torch.equal(p.grad, g) for p, g in zip(disc.parameters(), grads))


# -- auto ------------------------------------------------------------------------------------------
def test_auto_keeps_hvp_when_the_modes_agree_and_equals_it():
    torch.manual_seed(14)
    gen, disc = Gen(), smooth_disc()
    z, real = torch.randn(8, 3), torch.randn(8, 2)
    torch.manual_seed(15)
    auto = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode="auto")
    torch.manual_seed(15)
    hvp = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode="hvp")
    assert auto.mode == "hvp"
    assert all(torch.equal(a, b) for a, b in zip(auto.gradient, hvp.gradient))


class _OnceDifferentiableSquare(torch.autograd.Function):
    """x^2 whose backward is not differentiable (``once_differentiable``)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class _SquareBackward(torch.autograd.Function):
    """2 x g, with no derivative of its own: what an operation without double backward looks like."""

    @staticmethod
    def forward(ctx, x, grad):
        return 2 * x * grad

    @staticmethod
    def backward(ctx, _):
        raise RuntimeError("the derivative of _SquareBackward is not implemented")


class _SquareWithoutDoubleBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _SquareBackward.apply(x, grad)


class _Square(nn.Module):
    def forward(self, x):
        return _SquareWithoutDoubleBackward.apply(x)


def test_auto_falls_back_to_hvp_when_double_backward_fails():
    torch.manual_seed(16)
    gen = Gen()
    disc = nn.Sequential(nn.Linear(2, 6), _Square(), nn.Linear(6, 1), nn.Flatten(0))
    z, real = torch.randn(8, 3), torch.randn(8, 2)

    def loss(x):  # no gradient penalty: L_adv itself needs only first derivatives
        return WGAN.adversary_loss(disc(real), disc(x))

    with pytest.raises(RuntimeError, match="not implemented"):
        advas_gradient(loss, gen(z), gen, disc, mode="exact")
    with pytest.warns(UserWarning, match="exact double backward failed"):
        result = advas_gradient(loss, gen(z), gen, disc, mode="auto")
    assert result.mode == "hvp" and flat(result.gradient).norm() > 0


def test_auto_keeps_hvp_when_exact_is_silently_wrong():
    # once_differentiable: double backward runs but treats the saved x of 2 x g as a constant
    torch.manual_seed(16)
    gen, disc = Gen().double(), smooth_disc().double()
    z, real = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)

    def loss(x):
        square = _OnceDifferentiableSquare.apply
        return WGAN.adversary_loss(square(disc(real)), square(disc(x)))

    def true_loss(x):
        return WGAN.adversary_loss(disc(real) ** 2, disc(x) ** 2)

    expected = flat(advas_gradient(true_loss, gen(z), gen, disc, mode="exact").gradient)
    assert relative_error(flat(advas_gradient(loss, gen(z), gen, disc, mode="exact").gradient), expected) > 0.1
    with pytest.warns(UserWarning, match="wrong higher derivatives"):
        result = advas_gradient(loss, gen(z), gen, disc, mode="auto")
    assert result.mode == "hvp" and relative_error(flat(result.gradient), expected) <= 1e-5


def test_auto_chooses_exact_when_the_finite_differences_are_off():
    torch.manual_seed(17)
    gen, disc = Gen(), smooth_disc()
    z, real = torch.randn(8, 3), torch.randn(8, 2)
    with pytest.warns(UserWarning, match="using exact"):
        result = advas_gradient(wgan_gp(disc, real), gen(z), gen, disc, mode="auto", eps_scale=10.0)
    assert result.mode == "exact"


# -- lambda and the generator's gradient -----------------------------------------------------------
def test_lambda_heuristic_values():
    g_orig = [torch.tensor([3.0]), torch.tensor([4.0])]  # norm 5
    assert float(advas_lambda(g_orig, [torch.tensor([6.0, 8.0])])) == pytest.approx(0.5)  # norm 10
    assert float(advas_lambda(g_orig, [torch.tensor([1.0, 0.0])])) == 1.0  # min(1, 5)
    assert float(advas_lambda(g_orig, [torch.zeros(2)])) == 1.0
    assert float(advas_lambda([torch.zeros(2)], [torch.tensor([1.0, 0.0])])) == 0.0


@pytest.mark.parametrize("lam, r_only, expected", [
    (None, False, [3 + 0.5 * 6, 4 + 0.5 * 8]),  # lambda = 5 / 10
    (0.1, False, [3 + 0.6, 4 + 0.8]),
    (None, True, [0.5 * 6, 0.5 * 8]),
    (2.0, True, [12.0, 16.0]),
])
def test_add_advas_gradient(lam, r_only, expected):
    module = nn.Linear(1, 1)
    module.weight.grad, module.bias.grad = torch.tensor([[3.0]]), torch.tensor([4.0])
    advas = AdvAsGradient([torch.tensor([[6.0]]), torch.tensor([8.0])], torch.tensor(7.0), "hvp")
    logs = add_advas_gradient(module, advas, lam=lam, r_only=r_only)
    assert [float(module.weight.grad), float(module.bias.grad)] == pytest.approx(expected)
    assert float(logs["advas/r"]) == 7.0 and float(logs["advas/g_orig_norm"]) == pytest.approx(5.0)
    assert float(logs["advas/g_advas_norm"]) == pytest.approx(10.0) and logs["advas/exact"] == 0.0
    assert float(logs["advas/lambda"]) == pytest.approx(0.5 if lam is None else lam)


# -- the unbiased estimator ------------------------------------------------------------------------
def naive_unbiased(gen, disc, z, real, u, weight=10.0):
    """r^ and its gradient in theta from a loop over the pairs (the per-sample form of WGAN-GP)."""
    fake = gen(z)
    per_sample = []
    for n in range(len(z)):
        x1, x2 = fake[n:n + 1], real[n:n + 1]
        x_hat = torch.lerp(x1, x2, u[n])
        slope = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)[0]
        g_n = disc(x1).sum() - disc(x2).sum() + weight * (slope.norm() - 1) ** 2
        per_sample.append(flat(torch.autograd.grad(g_n, list(disc.parameters()), create_graph=True)))
    g = torch.stack(per_sample)
    n = len(z)
    r_hat = (n ** 2 * g.mean(0).pow(2).sum() - g.pow(2).sum()) / (n * (n - 1))
    return r_hat, flat(torch.autograd.grad(r_hat, list(gen.parameters())))


@pytest.mark.parametrize("mode", ["exact", "hvp"])
def test_unbiased_estimator_matches_naive_per_sample_loop(mode):
    torch.manual_seed(18)
    gen, disc = Gen().double(), smooth_disc().double()
    z, real = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    torch.manual_seed(19)
    u = torch.rand(6, dtype=torch.float64)
    r_hat, expected = naive_unbiased(gen, disc, z, real, u)
    torch.manual_seed(19)
    result = advas_gradient_unbiased(wgan_gp(disc, real), per_sample_adversary_loss(disc, WGAN, [GradientPenalty(10.0)]),
                                     real, gen(z), gen, disc, mode=mode, chunk_size=4)
    torch.testing.assert_close(result.r, r_hat.detach())
    assert relative_error(flat(result.gradient), expected) <= 1e-6


def test_unbiased_estimator_is_unbiased_over_every_minibatch_of_a_population():
    # Linear critic, WGAN: grad_w g(x1, x2) = x1 - x2, so r = ||E[G(z) - x]||^2 over a population of
    # M pairs. Averaged over all M^N minibatches drawn with replacement, r^ and its gradient equal
    # the population's r and gradient; the biased estimate is off by tr Cov / N.
    torch.manual_seed(20)
    gen, disc = Gen(nn.Linear(3, 2)).double(), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)).double()
    population_z, population_x = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    difference = gen(population_z) - population_x
    r_population = difference.mean(0).pow(2).sum()
    grad_population = flat(torch.autograd.grad(r_population, list(gen.parameters())))
    per_sample = per_sample_adversary_loss(disc, WGAN)
    unbiased_r, biased_r, unbiased_grad = [], [], []
    for batch in itertools.product(range(4), repeat=3):
        z, x = population_z[list(batch)], population_x[list(batch)]

        def loss(fake, x=x):
            return WGAN.adversary_loss(disc(x), disc(fake))

        result = advas_gradient_unbiased(loss, per_sample, x, gen(z), gen, disc, mode="exact")
        unbiased_r.append(result.r)
        unbiased_grad.append(flat(result.gradient))
        biased_r.append(advas_gradient(loss, gen(z), gen, disc, mode="exact").r)
    torch.testing.assert_close(torch.stack(unbiased_r).mean(), r_population.detach())
    torch.testing.assert_close(torch.stack(unbiased_grad).mean(0), grad_population)
    spread = difference.detach().var(0, unbiased=False).sum() / 3
    torch.testing.assert_close(torch.stack(biased_r).mean(), r_population.detach() + spread)


def test_unbiased_estimator_refuses_what_has_no_per_sample_form():
    torch.manual_seed(21)
    gen, disc = Gen(), smooth_disc()
    z, real = torch.randn(4, 3), torch.randn(4, 2)
    per_sample = per_sample_adversary_loss(disc, WGAN)
    with pytest.raises(ValueError, match="per-sample losses average to"):
        advas_gradient_unbiased(wgan_gp(disc, real), per_sample, real, gen(z), gen, disc)
    with pytest.raises(ValueError, match="at least 2 samples"):
        advas_gradient_unbiased(wgan_gp(disc, real), per_sample, real[:3], gen(z), gen, disc)
    coupled = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1), nn.Flatten(0))
    with pytest.raises(ValueError, match="BatchNorm1d couples the samples"):
        advas_gradient_unbiased(wgan_gp(coupled, real), per_sample_adversary_loss(coupled, WGAN), real, gen(z), gen,
                                coupled)


# -- the trainer's component -----------------------------------------------------------------------
class GradientSpy(Component):
    name = "spy"

    def adjust_generator_gradient(self, trainer, step):
        self.grads = [p.grad.clone() for p in trainer.generator.parameters()]
        return {}


def make_trainer(*components, objective="wgan", seed=0, penalties=(GradientPenalty(10.0),), **options):
    torch.manual_seed(seed)
    gen, disc = Gen(), smooth_disc()
    return Trainer(gen, disc, get_objective(objective), CyclingBatches(),
                   g_optimizer=torch.optim.Adam(gen.parameters()),
                   d_optimizer=torch.optim.Adam(disc.parameters()), batch_size=8, n_adv=2, penalties=penalties,
                   components=components, **options)


def test_advas_does_not_change_the_adversary_update():
    with_advas, without = make_trainer(AdvAs()), make_trainer()
    torch.manual_seed(1)
    with_advas.train_step()
    torch.manual_seed(1)
    without.train_step()
    assert torch.equal(flat(with_advas.discriminator.parameters()), flat(without.discriminator.parameters()))
    assert not torch.equal(flat(with_advas.generator.parameters()), flat(without.generator.parameters()))
    # from the same players and random state, the next adversary steps agree too
    without.load_state_dict(copy.deepcopy(with_advas.state_dict()))
    torch.manual_seed(2)
    with_advas.train_step()
    torch.manual_seed(2)
    without.train_step()
    assert torch.equal(flat(with_advas.discriminator.parameters()), flat(without.discriminator.parameters()))


def test_component_logs_every_iteration_and_computes_eq_8():
    advas, spy = AdvAs(lam=0.5), GradientSpy()
    trainer, baseline_spy = make_trainer(advas, spy), GradientSpy()
    baseline = make_trainer(baseline_spy)
    for _ in range(2):
        torch.manual_seed(3)
        logs = trainer.train_step()
        torch.manual_seed(3)
        baseline.train_step()
        assert {"advas/r", "advas/lambda", "advas/g_orig_norm", "advas/g_advas_norm", "advas/exact"} <= set(logs)
        assert float(logs["advas/r"]) > 0 and float(logs["advas/lambda"]) == 0.5
        assert logs["advas/exact"] == 0.0 and advas.mode == "hvp"  # auto chose hvp
        added = flat(spy.grads) - flat(baseline_spy.grads)
        assert float(added.norm()) == pytest.approx(0.5 * float(logs["advas/g_advas_norm"]), rel=1e-5)
        assert float(flat(baseline_spy.grads).norm()) == pytest.approx(float(logs["advas/g_orig_norm"]), rel=1e-6)
        baseline.load_state_dict(copy.deepcopy(trainer.state_dict()))  # the same players again


def test_r_only_replaces_the_generator_gradient():
    spies = GradientSpy(), GradientSpy()
    torch.manual_seed(4)
    make_trainer(AdvAs(lam=1.0), spies[0]).train_step()
    torch.manual_seed(4)
    make_trainer(AdvAs(lam=1.0, r_only=True), spies[1]).train_step()
    baseline_spy = GradientSpy()
    torch.manual_seed(4)
    make_trainer(baseline_spy).train_step()
    torch.testing.assert_close(flat(spies[1].grads), flat(spies[0].grads) - flat(baseline_spy.grads))


def hinge_run(component):
    """The logged r, and r recomputed from the batches AdvAs saw with the untruncated and truncated hinge."""
    trainer = make_trainer(component, objective="hinge")
    trainer.penalties = []
    with torch.no_grad():  # outputs near 5: the truncated hinge has no gradient on the real batch
        trainer.discriminator[-2].bias.fill_(5.0)
    seen = record_adversary_batches(trainer)
    logs = trainer.train_step()
    d = trainer.discriminator
    r = {name: r_by_autograd(objective.adversary_loss(d(seen["real"]), d(seen["fake"])), d).detach()
         for name, objective in (("untruncated", untruncated(get_objective("hinge"))),
                                 ("truncated", get_objective("hinge")))}
    return logs["advas/r"], r


def test_hinge_is_untruncated_by_default_and_truncated_on_request():
    logged, r = hinge_run(AdvAs(lam=1.0))
    torch.testing.assert_close(logged, r["untruncated"])
    assert abs(float(r["truncated"] - r["untruncated"])) > 0.5 * float(r["truncated"])
    logged, r = hinge_run(AdvAs(lam=1.0, hinge_truncation=True))
    torch.testing.assert_close(logged, r["truncated"])


def test_r_on_more_generated_samples_than_real_ones_takes_each_mean_over_its_own_samples():
    trainer = make_trainer(AdvAs(lam=1.0), objective="hinge", penalties=(), generator_batch_size=20)
    seen = record_adversary_batches(trainer)
    logs = trainer.train_step()
    assert seen["real"].shape == (8, 2) and seen["fake"].shape == (20, 2)
    d = trainer.discriminator
    untruncated_hinge = (1 - d(seen["real"])).mean() + (1 + d(seen["fake"])).mean()  # 8 and 20 samples
    torch.testing.assert_close(logs["advas/r"], r_by_autograd(untruncated_hinge, d).detach())


@pytest.mark.parametrize("component, penalties, message", [
    (AdvAs(estimator="unbiased", mode="exact"), (), "advas estimator 'unbiased': got 20 generated samples against "
                                                    "a real batch of 8"),
    (AdvAs(), (GradientPenalty(10.0),), r"gradient penalty: real batch of shape \(8, 2\), generated \(20, 2\)"),
])
def test_what_pairs_real_and_generated_samples_refuses_unequal_numbers(component, penalties, message):
    trainer = make_trainer(component, penalties=penalties, generator_batch_size=20)
    with pytest.raises(ValueError, match=message):
        trainer.train_step()


def test_state_dict_round_trip_continues_identically():
    trainer = make_trainer(AdvAs())
    for _ in range(2):
        trainer.train_step()
    state, rng = copy.deepcopy(trainer.state_dict()), torch.get_rng_state()
    assert state["components"]["advas"] == {"mode": "hvp"}
    for _ in range(2):
        trainer.train_step()
    resumed = make_trainer(AdvAs(), seed=99)
    resumed.load_state_dict(state)
    assert resumed.components[0].mode == "hvp"
    torch.set_rng_state(rng)
    for _ in range(2):
        resumed.train_step()
    for a, b in zip(trainer.state_dict()["generator"].values(), resumed.state_dict()["generator"].values()):
        assert torch.equal(a, b)
    assert torch.equal(flat(trainer.discriminator.parameters()), flat(resumed.discriminator.parameters()))


def test_unbiased_component_in_the_trainer():
    logs = make_trainer(AdvAs(estimator="unbiased", mode="exact")).train_step()  # the trainer's penalty: GP 10
    assert torch.isfinite(torch.as_tensor(logs["advas/r"])) and float(logs["advas/g_advas_norm"]) > 0


# -- config, builder, documentation ----------------------------------------------------------------
def test_builder_and_config():
    assert not load_config().advas.enabled
    config = load_config(None, ["advas.enabled=true", "advas.lam=0.01", "advas.mode=exact", "advas.r_only=true"])
    context = BuildContext(nn.Linear(1, 1), nn.Linear(1, 1), WGAN, (1,), 8, torch.device("cpu"), 8)
    (advas,) = METHOD.build(config.advas, context).components
    assert isinstance(advas, AdvAs) and advas.name == "advas"
    assert (advas.lam, advas.mode, advas.r_only, advas.estimator) == (0.01, "exact", True, "biased")
    config = load_config(None, ["advas.mode=hvp", "advas.difference=central", "advas.eps_scale=1e-5"]).advas
    assert (config.mode, config.difference, config.eps_scale) == ("hvp", "central", 1e-5)
    with pytest.raises(ConfigError, match="'advas.mode': got 'fast'; allowed: one of auto, exact, hvp"):
        load_config(None, ["advas.mode=fast"])
    with pytest.raises(ConfigError, match="'advas.lam': got -1; allowed: a number >= 0.0, or null"):
        load_config(None, ["advas.lam=-1"])
    with pytest.raises(ValueError, match="lam: got -1; allowed: a number >= 0"):
        AdvAs(lam=-1)
    with pytest.raises(ConfigError, match="'advas.enabled': got true with train.update=joint"):
        load_config(None, ["advas.enabled=true", "cgd.enabled=true"])
    with pytest.raises(ValueError, match="advas.estimator: got 'exactish'; allowed: biased, unbiased"):
        AdvAs(estimator="exactish")
    with pytest.raises(ValueError, match="samples have no graph"):
        advas_gradient(lambda x: x.sum(), torch.zeros(1), nn.Linear(1, 1), nn.Linear(1, 1))
    with pytest.raises(ValueError, match="advas.mode: got 'fast'"):
        advas_gradient(lambda x: x.sum(), torch.zeros(1, requires_grad=True), nn.Linear(1, 1), nn.Linear(1, 1),
                       mode="fast")


def test_paper_config_has_a_valid_advas_section():
    data = yaml.safe_load((ROOT / "configs" / "advas-mnist-wgangp-advas.yaml").read_text())
    baseline = yaml.safe_load((ROOT / "configs" / "advas-mnist-wgangp-nadv1.yaml").read_text())
    config = load_config(ROOT / "configs" / "advas-mnist-wgangp-advas.yaml").advas
    assert config.enabled and config.lam is None and config.estimator == "biased"
    data.pop("advas")
    assert data == baseline


def test_documented_few_lines_example_runs():
    text = (ROOT / "docs" / "ADVAS.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(example, "docs/ADVAS.md", "exec"), namespace)  # noqa: S102 - our own documentation
    logs = namespace["logs"]
    assert float(logs["advas/r"]) > 0 and logs["advas/mode"] == "hvp"
