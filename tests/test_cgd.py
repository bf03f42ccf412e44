"""CGD and ACGD against closed forms, Algorithm 1 written out densely, finite differences and the
reference package CGDs; the Krylov solvers against numpy; state, interface and trainer."""

import copy
import io
import math
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
from conftest import CyclingBatches
import torch
from torch import nn

from equilibria.core.objectives import get_objective
from equilibria.optim import ACGD, CGD, MixedHessian, conjugate_gradient, gmres
from equilibria.methods.cgd import METHOD
from equilibria.core.method import BuildContext
from equilibria.core.penalties import GradientPenalty, L2
from equilibria.training.config import ConfigError, load_config
from equilibria.core.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def spd(n, seed):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    return m @ m.T / n + 0.1 * np.eye(n)


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


# -- Krylov solvers ---------------------------------------------------------------------------------
def counting(matrix):
    calls = []

    def matvec(p):
        calls.append(1)
        return t64(matrix) @ p

    return matvec, calls


def test_conjugate_gradient_solves_like_numpy():
    a, b = spd(30, 0), np.random.default_rng(1).standard_normal(30)
    result = conjugate_gradient(lambda p: t64(a) @ p, t64(b), tol=1e-12, max_iter=100)
    np.testing.assert_allclose(result.solution.numpy(), np.linalg.solve(a, b), rtol=1e-9, atol=1e-11)
    assert result.converged and result.residual <= 1e-12
    true_residual = np.linalg.norm(b - a @ result.solution.numpy()) / np.linalg.norm(b)
    assert true_residual <= 1e-11


def test_conjugate_gradient_warm_start_begins_from_b_minus_a_x0():
    a, b = spd(30, 2), np.random.default_rng(3).standard_normal(30)
    exact = np.linalg.solve(a, b)
    matvec, calls = counting(a)
    result = conjugate_gradient(matvec, t64(b), t64(exact), tol=1e-10)
    assert result.iterations == 0 and len(calls) == 1  # one product: the residual b - A x0
    np.testing.assert_allclose(result.solution.numpy(), exact)
    cold = conjugate_gradient(lambda p: t64(a) @ p, t64(b), tol=1e-10)
    near = exact + 1e-6 * np.random.default_rng(4).standard_normal(30)
    warm = conjugate_gradient(lambda p: t64(a) @ p, t64(b), t64(near), tol=1e-10)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.solution.numpy(), exact, rtol=1e-8)


@pytest.mark.parametrize("warm", [False, True])
def test_conjugate_gradient_carries_a_linear_image_of_the_iterate(warm):
    a, b = spd(12, 5), np.random.default_rng(6).standard_normal(12)
    lmap = np.random.default_rng(7).standard_normal((5, 12))
    x0 = t64(np.random.default_rng(8).standard_normal(12)) if warm else None
    result = conjugate_gradient(lambda p: (t64(a) @ p, t64(lmap) @ p), t64(b), x0, tol=1e-12)
    np.testing.assert_allclose(result.image.numpy(), lmap @ result.solution.numpy(), rtol=1e-9, atol=1e-12)


def test_conjugate_gradient_stops_at_max_iter_unconverged():
    a, b = spd(30, 9), np.ones(30)
    result = conjugate_gradient(lambda p: t64(a) @ p, t64(b), tol=1e-12, max_iter=2)
    assert result.iterations == 2 and not result.converged and result.residual > 1e-12


def test_conjugate_gradient_one_unknown_and_zero_right_hand_side():
    result = conjugate_gradient(lambda p: 4.0 * p, t64([2.0]), tol=1e-12)
    assert result.solution.item() == pytest.approx(0.5) and result.iterations == 1
    zero = conjugate_gradient(lambda p: 4.0 * p, t64([0.0, 0.0]), t64([1.0, 1.0]))
    assert zero.iterations == 0 and zero.converged and torch.equal(zero.solution, torch.zeros(2, dtype=torch.float64))


def test_conjugate_gradient_refuses_an_indefinite_operator():
    with pytest.raises(FloatingPointError, match="not symmetric positive definite"):
        conjugate_gradient(lambda p: t64([1.0, -1.0]) * p, t64([1.0, 1.0]))


@pytest.mark.parametrize("warm", [False, True])
def test_gmres_solves_a_nonsymmetric_system_like_numpy(warm):
    rng = np.random.default_rng(10)
    a = np.eye(25) + 0.1 * rng.standard_normal((25, 25))  # eigenvalues within about 0.5 of 1
    b = rng.standard_normal(25)
    x0 = t64(rng.standard_normal(25)) if warm else None
    result = gmres(lambda p: t64(a) @ p, t64(b), x0, tol=1e-11, restart=7, max_iter=200)  # with restarts
    np.testing.assert_allclose(result.solution.numpy(), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    assert result.iterations > 7  # it restarted
    assert result.converged and np.linalg.norm(b - a @ result.solution.numpy()) <= 1e-11 * np.linalg.norm(b) * 1.01


@pytest.mark.parametrize("call, message", [
    (lambda: conjugate_gradient(lambda p: p, torch.ones(2, 2)), "b: got a tensor of shape"),
    (lambda: conjugate_gradient(lambda p: p, torch.ones(2), torch.ones(3)), "x0: got shape"),
    (lambda: gmres(lambda p: p, torch.ones(2), restart=0), "restart: got 0"),
])
def test_solvers_name_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- CGD against its closed form -------------------------------------------------------------------
def quadratic_game(nx, ny, seed, bilinear=False):
    """f = x'Px/2 + x'By - y'Qy/2 + a'x + c'y (P = Q = a = c = 0: the bilinear game x'By), in numpy
    and torch, with its gradients and mixed Hessian D_xy f = B."""
    rng = np.random.default_rng(seed)
    p, q = (np.zeros((nx, nx)), np.zeros((ny, ny))) if bilinear else (spd(nx, seed + 1), spd(ny, seed + 2))
    b = rng.standard_normal((nx, ny))
    a, c = (np.zeros(nx), np.zeros(ny)) if bilinear else (rng.standard_normal(nx), rng.standard_normal(ny))

    def f(x, y):
        return 0.5 * x @ t64(p) @ x + x @ t64(b) @ y - 0.5 * y @ t64(q) @ y + t64(a) @ x + t64(c) @ y

    def grads(x, y):
        return p @ x + b @ y + a, b.T @ x - q @ y + c

    return f, grads, b


def closed_form_cgd(gx, gy, d_xy, eta_x, eta_y):
    """Zero-sum CGD in terms of f (Schaefer & Anandkumar 2019 with g = -f, a step size per player):
    dx = -(I + eta_x eta_y D_xy D_yx)^-1 eta_x (grad_x + eta_y D_xy grad_y),
    dy = (I + eta_x eta_y D_yx D_xy)^-1 eta_y (grad_y - eta_x D_yx grad_x)."""
    d_yx = d_xy.T
    nx, ny = d_xy.shape
    dx = -np.linalg.solve(np.eye(nx) + eta_x * eta_y * d_xy @ d_yx, eta_x * (gx + eta_y * d_xy @ gy))
    dy = np.linalg.solve(np.eye(ny) + eta_x * eta_y * d_yx @ d_xy, eta_y * (gy - eta_x * d_yx @ gx))
    return dx, dy


@pytest.mark.parametrize("solver", ["cg", "gmres"])
@pytest.mark.parametrize("bilinear", [True, False])
@pytest.mark.parametrize("sizes", [(4, 3), (3, 4)])  # CG solves in the smaller player's space: both ways
def test_cgd_step_equals_the_closed_form(sizes, bilinear, solver):
    f, grads, b = quadratic_game(*sizes, seed=11, bilinear=bilinear)
    rng = np.random.default_rng(12)
    x0, y0 = rng.standard_normal(sizes[0]), rng.standard_normal(sizes[1])
    x, y = t64(x0).requires_grad_(), t64(y0).requires_grad_()
    eta_x, eta_y = 0.3, 0.7
    optimizer = CGD(min_params=[x], max_params=[y], lr_min=eta_x, lr_max=eta_y, tol=1e-13, atol=0.0, solver=solver)
    logs = optimizer.step(f(x, y))
    dx, dy = closed_form_cgd(*grads(x0, y0), b, eta_x, eta_y)
    np.testing.assert_allclose(x.detach().numpy() - x0, dx, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(y.detach().numpy() - y0, dy, rtol=1e-6, atol=1e-10)
    assert logs[f"{solver}/converged"] == 1.0


def test_cgd_on_eq3_with_single_scalar_parameters():
    """ICR Eq. 3, f = x^2 + 10xy + y^2, each player one 0-dim parameter."""
    x, y = torch.tensor(1.0, dtype=torch.float64, requires_grad=True), torch.tensor(-0.5, dtype=torch.float64,
                                                                                     requires_grad=True)
    optimizer = CGD(min_params=[x], max_params=[y], lr_min=0.09, lr_max=0.01, tol=1e-13)
    for _ in range(3):
        x0, y0 = x.item(), y.item()
        optimizer.step(x**2 + 10 * x * y + y**2)
        dx, dy = closed_form_cgd(np.array([2 * x0 + 10 * y0]), np.array([10 * x0 + 2 * y0]), np.array([[10.0]]),
                                 0.09, 0.01)
        assert x.item() - x0 == pytest.approx(dx[0], rel=1e-9)
        assert y.item() - y0 == pytest.approx(dy[0], rel=1e-9)


def test_general_sum_step_with_gmres_equals_the_closed_form():
    """The min player minimises f = x'P x/2 + x'B1 y + a'x, the max player maximises
    g = -y'Qy/2 + x'B2 y + c'y: dx = -eta_x (grad_x f + B1 dy), dy = eta_y (grad_y g + B2' dx)."""
    rng = np.random.default_rng(13)
    p, q = spd(3, 14), spd(2, 15)
    b1, b2 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    a, c = rng.standard_normal(3), rng.standard_normal(2)
    x0, y0 = rng.standard_normal(3), rng.standard_normal(2)
    x, y = t64(x0).requires_grad_(), t64(y0).requires_grad_()
    f = 0.5 * x @ t64(p) @ x + x @ t64(b1) @ y + t64(a) @ x
    g = -0.5 * y @ t64(q) @ y + x @ t64(b2) @ y + t64(c) @ y
    CGD(min_params=[x], max_params=[y], lr_min=0.2, lr_max=0.4, solver="gmres", tol=1e-13).step((f, g))
    system = np.block([[np.eye(3), 0.2 * b1], [-0.4 * b2.T, np.eye(2)]])
    delta = np.linalg.solve(system, np.concatenate([-0.2 * (p @ x0 + b1 @ y0 + a), 0.4 * (-q @ y0 + b2.T @ x0 + c)]))
    np.testing.assert_allclose(x.detach().numpy() - x0, delta[:3], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(y.detach().numpy() - y0, delta[3:], rtol=1e-8, atol=1e-12)


# -- ACGD against Algorithm 1 written out densely -----------------------------------------------------
def cubic_game(seed):
    """f = x'Px/2 + x'By - y'Qy/2 + sum_ij C_ij x_i^2 y_j: the mixed Hessian B + 2 diag(x) C moves."""
    rng = np.random.default_rng(seed)
    p, q, b, c = spd(4, seed), spd(3, seed + 1), rng.standard_normal((4, 3)), 0.5 * rng.standard_normal((4, 3))

    def f(x, y):
        return 0.5 * x @ t64(p) @ x + x @ t64(b) @ y - 0.5 * y @ t64(q) @ y + (x**2) @ t64(c) @ y

    def derivatives(x, y):
        return p @ x + b @ y + 2 * x * (c @ y), b.T @ x - q @ y + c.T @ (x**2), b + 2 * x[:, None] * c

    return f, derivatives


def algorithm1(derivatives, x, y, steps, alpha_x, alpha_y, beta2=0.99, eps=1e-5):
    """ICR Appendix A.5, Algorithm 1, line by line (both players' updates from their own formula)."""
    vx, vy = np.zeros_like(x), np.zeros_like(y)
    for t in range(1, steps + 1):
        gx, gy, d_xy = derivatives(x, y)
        d_yx = d_xy.T
        vx, vy = beta2 * vx + (1 - beta2) * gx**2, beta2 * vy + (1 - beta2) * gy**2
        vx_hat, vy_hat = vx / (1 - beta2**t), vy / (1 - beta2**t)
        ax, ay = np.diag(alpha_x / (np.sqrt(vx_hat) + eps)), np.diag(alpha_y / (np.sqrt(vy_hat) + eps))
        rx, ry = np.sqrt(ax), np.sqrt(ay)
        dx = -rx @ np.linalg.inv(np.eye(len(x)) + rx @ d_xy @ ay @ d_yx @ rx) @ rx @ (gx + d_xy @ ay @ gy)
        dy = ry @ np.linalg.inv(np.eye(len(y)) + ry @ d_yx @ ax @ d_xy @ ry) @ ry @ (gy - d_yx @ ax @ gx)
        x, y = x + dx, y + dy
    return x, y


@pytest.mark.parametrize("alphas", [(0.05, 0.05), (0.02, 0.08)])
def test_acgd_follows_algorithm_1(alphas):
    f, derivatives = cubic_game(20)
    rng = np.random.default_rng(21)
    x0, y0 = rng.standard_normal(4), rng.standard_normal(3)
    x, y = t64(x0).requires_grad_(), t64(y0).requires_grad_()
    optimizer = ACGD(min_params=[x], max_params=[y], lr_min=alphas[0], lr_max=alphas[1], tol=1e-13, atol=0.0)
    for steps in range(1, 6):
        optimizer.step(f(x, y))
        x_ref, y_ref = algorithm1(derivatives, x0, y0, steps, *alphas)
        np.testing.assert_allclose(x.detach().numpy(), x_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-9, atol=1e-12)


def test_acgd_on_eq3_with_single_scalar_parameters():
    x = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    optimizer = ACGD(min_params=[x], max_params=[y], lr=0.01, tol=1e-13)
    for _ in range(4):
        optimizer.step(lambda: (x**2 + 10 * x * y + y**2).sum())
    x_ref, y_ref = algorithm1(lambda a, b: (2 * a + 10 * b, 10 * a + 2 * b, np.array([[10.0]])),
                              np.array([0.7]), np.array([0.2]), 4, 0.01, 0.01)
    assert x.item() == pytest.approx(x_ref[0], rel=1e-10) and y.item() == pytest.approx(y_ref[0], rel=1e-10)


# -- mixed Hessian-vector products ------------------------------------------------------------------------
def tiny_networks(seed=0, batch_norm=True, dtype=torch.float64):
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Linear(3, 6), *([nn.BatchNorm1d(6)] if batch_norm else []), nn.Tanh(), nn.Linear(6, 2))
    d = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0))
    return g.to(dtype), d.to(dtype)


def test_mixed_hessian_products_match_finite_differences_with_batchnorm():
    g, d = tiny_networks()
    real, z = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    value = get_objective("minimax").value
    names_g = [n for n, _ in g.named_parameters()]
    names_d = [n for n, _ in d.named_parameters()]
    buffers = {k: b.clone() for k, b in g.named_buffers()}

    def gradients(xs, ys):  # the gradient of f at perturbed parameters, BatchNorm on batch statistics
        xs = [t.detach().requires_grad_() for t in xs]
        ys = [t.detach().requires_grad_() for t in ys]
        fake = torch.func.functional_call(g, ({**dict(zip(names_g, xs)), **buffers}), (z,))
        dparams = dict(zip(names_d, ys))
        f = value(torch.func.functional_call(d, dparams, (real,)), torch.func.functional_call(d, dparams, (fake,)))
        grads = torch.autograd.grad(f, xs + ys)
        return torch.cat([t.flatten() for t in grads[:len(xs)]]), torch.cat([t.flatten() for t in grads[len(xs):]])

    xs, ys = [p.detach() for p in g.parameters()], [p.detach() for p in d.parameters()]
    hessian = MixedHessian(value(d(real), d(g(z))), list(g.parameters()), list(d.parameters()))
    v = torch.randn_like(hessian.grad_x)
    w = torch.randn_like(hessian.grad_y)
    h = 1e-5

    def shifted(tensors, vector, scale):
        pieces = vector.split([t.numel() for t in tensors])
        return [t + scale * piece.view_as(t) for t, piece in zip(tensors, pieces)]

    yx_fd = (gradients(shifted(xs, v, h), ys)[1] - gradients(shifted(xs, v, -h), ys)[1]) / (2 * h)
    xy_fd = (gradients(xs, shifted(ys, w, h))[0] - gradients(xs, shifted(ys, w, -h))[0]) / (2 * h)
    torch.testing.assert_close(hessian.yx(v), yx_fd, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(hessian.xy(w), xy_fd, rtol=1e-6, atol=1e-8)
    assert hessian.products == 2
    # and D_yx is the transpose of D_xy: w' D_yx v = v' D_xy w
    assert torch.dot(w, hessian.yx(v)).item() == pytest.approx(torch.dot(v, hessian.xy(w)).item(), rel=1e-10)


def test_mixed_hessian_of_a_separable_loss_is_zero():
    x = torch.ones(2, requires_grad=True)
    y = torch.ones(3, requires_grad=True)
    unused = torch.ones(1, requires_grad=True)
    hessian = MixedHessian((x**2).sum() + y.sum(), [x, unused], [y])  # grad_y constant, unused has no grad
    assert torch.equal(hessian.xy(torch.ones(3)), torch.zeros(3))
    assert torch.equal(hessian.yx(torch.ones(3)), torch.zeros(3))
    assert torch.equal(hessian.grad_x, torch.tensor([2.0, 2.0, 0.0]))


# -- the reference package CGDs ----------------------------------------------------------------------------
@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # CGDs allocates its CG vectors in the default dtype
    yield
    torch.set_default_dtype(previous)


def test_acgd_update_equals_the_reference_package(float64_default):
    cgds = pytest.importorskip("CGDs", reason="the reference package is not installed: "
                                              "pip install --no-deps CGDs==0.4.5")
    g, d = tiny_networks(seed=3, batch_norm=False)
    g_ref, d_ref = copy.deepcopy(g), copy.deepcopy(d)
    value = get_objective("minimax").value
    beta, eps, tol = 0.99, 1e-5, 1e-12
    ours = ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=0.05, beta=beta, eps=eps, tol=tol, atol=0.0)
    reference = cgds.ACGD(max_params=d_ref.parameters(), min_params=g_ref.parameters(), lr_max=0.05, lr_min=0.05,
                          beta=beta, eps=eps, tol=tol**2, atol=0.0)  # CGDs compares squared norms
    torch.manual_seed(4)
    for t in range(1, 5):
        real, z = torch.randn(16, 2), torch.randn(16, 3)
        before, before_ref = flat(g, d), flat(g_ref, d_ref)
        torch.testing.assert_close(before, before_ref, rtol=1e-9, atol=0)
        # CGDs adds eps before the bias correction: eps / sqrt(1 - beta^t) here gives the same step sizes
        ours.hyperparameters["eps"] = eps / math.sqrt(1 - beta**t)
        ours.step(value(d(real), d(g(z))))
        reference.step(value(d_ref(real), d_ref(g_ref(z))))
        n = sum(p.numel() for p in g.parameters())
        for part in (slice(0, n), slice(n, None)):  # each player's update
            delta, delta_ref = (flat(g, d) - before)[part], (flat(g_ref, d_ref) - before_ref)[part]
            assert (delta - delta_ref).norm() <= 1e-5 * delta_ref.norm()


def flat(*modules):
    return torch.cat([p.detach().flatten() for m in modules for p in m.parameters()])


def test_step_leaves_grad_alone():
    g, d = tiny_networks(dtype=torch.float32)
    marks = [torch.full_like(p, 7.0) for p in [*g.parameters(), *d.parameters()]]
    for p, mark in zip([*g.parameters(), *d.parameters()], marks):
        p.grad = mark
    optimizer = ACGD(min_params=g.parameters(), max_params=d.parameters())
    optimizer.step(get_objective("wgan").value(d(torch.randn(4, 2)), d(g(torch.randn(4, 3)))))
    assert all(p.grad is mark and bool((mark == 7).all()) for p, mark in zip([*g.parameters(), *d.parameters()], marks))
    optimizer.zero_grad()
    assert all(p.grad is None for p in [*g.parameters(), *d.parameters()])


# -- state, logs and the interface --------------------------------------------------------------------------
def test_logs_and_hessian_vector_products_per_step():
    g, d = tiny_networks(dtype=torch.float32)
    optimizer = ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=1e-2)
    value = get_objective("minimax").value
    for step in range(3):
        loss = value(d(torch.randn(8, 2)), d(g(torch.randn(8, 3))))
        grads = torch.autograd.grad(loss, [*g.parameters(), *d.parameters()], retain_graph=True)
        n = len(list(g.parameters()))
        grad_g, grad_d = (torch.cat([t.flatten() for t in part]) for part in (grads[:n], grads[n:]))
        logs = optimizer.step(loss)
        assert float(logs["grad_norm_min"]) == pytest.approx(float(grad_g.norm()), rel=1e-6)
        assert float(logs["grad_norm_max"]) == pytest.approx(float(grad_d.norm()), rel=1e-6)
        k = logs["cg/iterations"]
        # cold: b (1 product) + 2 per iteration; warm: b, A x0 (2) + 2 per iteration; nothing after
        assert logs["cg/hvps"] == (1 if step == 0 else 3) + 2 * k
        assert logs["cg/converged"] == 1.0 and logs["cg/residual"] <= 1e-6
        assert isinstance(optimizer.state["warm_start"], torch.Tensor)


def test_warm_start_solves_a_repeated_system_without_iterations():
    g, d = tiny_networks(seed=1)
    optimizer = CGD(min_params=g.parameters(), max_params=d.parameters(), lr=0.5, tol=1e-10)
    value = get_objective("minimax").value
    real, z = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    start = copy.deepcopy(g.state_dict()), copy.deepcopy(d.state_dict())
    first = optimizer.step(value(d(real), d(g(z))))
    g.load_state_dict(start[0])
    d.load_state_dict(start[1])
    second = optimizer.step(value(d(real), d(g(z))))  # the same system: the warm start solves it
    assert first["cg/iterations"] >= 3 and second["cg/iterations"] == 0 and second["cg/hvps"] == 3


def test_without_warm_start_each_solve_starts_from_zero():
    g, d = tiny_networks(dtype=torch.float32)
    optimizer = ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=1e-2, warm_start=False)
    value = get_objective("minimax").value
    for _ in range(2):
        logs = optimizer.step(value(d(torch.randn(8, 2)), d(g(torch.randn(8, 3)))))
        assert logs["cg/hvps"] == 1 + 2 * logs["cg/iterations"] and optimizer.state["warm_start"] is None


def test_closure_and_loss_give_the_same_step():
    results = []
    for use_closure in (False, True):
        g, d = tiny_networks(seed=5)
        optimizer = ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=0.01)
        torch.manual_seed(6)
        real, z = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)

        def f():
            return get_objective("wgan").value(d(real), d(g(z)))

        optimizer.step(f if use_closure else f())
        results.append(flat(g, d))
    assert torch.equal(results[0], results[1])


def test_state_dict_round_trip_continues_identically():
    value = get_objective("minimax").value
    data = [(torch.randn(8, 2), torch.randn(8, 3)) for _ in range(4)]
    g, d = tiny_networks(seed=7, dtype=torch.float32)
    optimizer = ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=0.01)
    for real, z in data[:2]:
        optimizer.step(value(d(real), d(g(z))))
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    g2, d2 = copy.deepcopy(g), copy.deepcopy(d)
    resumed = ACGD(min_params=g2.parameters(), max_params=d2.parameters(), lr=0.5, eps=1.0)  # restored from state
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.hyperparameters == optimizer.hyperparameters
    for real, z in data[2:]:
        logs = optimizer.step(value(d(real), d(g(z))))
        logs2 = resumed.step(value(d2(real), d2(g2(z))))
        assert logs == logs2
    assert torch.equal(flat(g, d), flat(g2, d2))


def test_load_state_dict_refuses_other_players():
    g, d = tiny_networks()
    state = ACGD(min_params=g.parameters(), max_params=d.parameters()).state_dict()
    other = ACGD(min_params=d.parameters(), max_params=g.parameters())
    with pytest.raises(ValueError, match="the state is for players of"):
        other.load_state_dict(state)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"min_params": torch.ones(2, requires_grad=True)}, TypeError, "min_params: got a tensor"),
    ({"min_params": []}, ValueError, "min_params: got no parameters"),
    ({"min_params": [torch.ones(2)]}, ValueError, r"min_params\[0\]: got Tensor that is not a leaf"),
    ({"shared": True}, ValueError, "belongs to both players"),
    ({"lr": -1.0}, ValueError, "lr: got -1.0"),
    ({"beta": 1.0}, ValueError, "beta: got 1.0"),
    ({"max_iter": 0}, ValueError, "max_iter: got 0"),
    ({"solver": "bicg"}, ValueError, "solver: got 'bicg'; allowed: cg, gmres"),
])
def test_constructor_names_bad_options(kwargs, error, message):
    x, y = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    options = {"min_params": [x], "max_params": [y], **kwargs}
    if options.pop("shared", False):
        options["max_params"] = [y, x]
    with pytest.raises(error, match=message):
        ACGD(**options)


def test_step_names_bad_losses():
    x, y = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    optimizer = ACGD(min_params=[x], max_params=[y])
    with pytest.raises(ValueError, match="allowed: a scalar tensor"):
        optimizer.step(x * y)
    with pytest.raises(ValueError, match="needs solver='gmres'"):
        optimizer.step(((x * y).sum(), (x * y).sum()))
    loss = (x * y).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="probably by loss.backward"):
        optimizer.step(loss)


# -- configuration and the trainer --------------------------------------------------------------------------
def built(config):
    g, d = tiny_networks()
    return METHOD.build(config.cgd, BuildContext(g, d, get_objective("wgan"), (2,), 8, torch.device("cpu"), 8))


def test_config_section_validates_with_the_config_loader():
    config = load_config(None, ["cgd.enabled=true", "cgd.name=cgd", "cgd.lr=0.01", "cgd.lr_generator=0.02",
                                "cgd.max_iter=50"])
    assert config.train.update == "joint"  # cgd implies joint updates
    optimizer = built(config).joint_optimizer
    assert type(optimizer) is CGD and optimizer.hyperparameters["lr_min"] == 0.02
    assert optimizer.hyperparameters["lr_max"] == 0.01 and optimizer.hyperparameters["max_iter"] == 50
    acgd = built(load_config(None, ["cgd.enabled=true"])).joint_optimizer
    assert type(acgd) is ACGD and acgd.hyperparameters["lr_min"] == 1e-4 and acgd.hyperparameters["eps"] == 1e-5
    for bad, key in (("name=adam", "cgd.name"), ("beta=1.0", "cgd.beta"), ("solver=minres", "cgd.solver"),
                     ("tol=-1", "cgd.tol")):
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(None, ["cgd.enabled=true", f"cgd.{bad}"])
    with pytest.raises(ConfigError, match="'train.update': got 'alternating' with cgd.enabled=true; allowed: 'joint'"):
        load_config(None, ["cgd.enabled=true", "train.update=alternating"])
    with pytest.raises(ConfigError, match="'train.update': got 'joint' without a joint optimizer"):
        load_config(None, ["train.update=joint"])
    with pytest.raises(ConfigError, match="'cgd.enabled': got true with objective=vral"):
        load_config(None, ["cgd.enabled=true", "vral.enabled=true", "objective=vral"])


class Gen(nn.Sequential):
    latent_dim = 3

    def __init__(self):
        super().__init__(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


class Disc(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Flatten(0))


def joint_trainer(objective, penalties=()):
    torch.manual_seed(9)
    g, d = Gen(), Disc()
    return Trainer(g, d, get_objective(objective), CyclingBatches(seed=8), batch_size=8, update="joint",
                   penalties=penalties,
                   joint_optimizer=ACGD(min_params=g.parameters(), max_params=d.parameters(), lr=1e-3))


@pytest.mark.parametrize("objective", ["minimax", "nonsaturating", "wgan", "hinge", "lsgan"])
def test_trainer_joint_update_with_acgd_runs_each_objective(objective):
    trainer = joint_trainer(objective)
    start = flat(trainer.generator, trainer.discriminator)
    for _ in range(3):
        logs = trainer.train_step()
        assert logs["cg/iterations"] >= 1 and logs["cg/converged"] == 1.0 and math.isfinite(logs["loss_adv"].item())
        assert float(logs["grad_norm_gen"]) > 0 and float(logs["grad_norm_adv"]) > 0  # the README's fields
    assert not torch.equal(flat(trainer.generator, trainer.discriminator), start)


def test_trainer_joint_update_with_gradient_and_l2_penalties():
    trainer = joint_trainer("wgan", [GradientPenalty(10.0), L2(1e-3)])
    logs = trainer.train_step()
    assert {"adv/gradient_penalty", "adv/l2", "cg/iterations", "cg/residual"} <= set(logs)


def test_trainer_checkpoint_with_acgd_resumes_exactly():
    trainer, copy_trainer = joint_trainer("minimax"), joint_trainer("minimax")
    trainer.train_step()
    trainer.train_step()
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    buffer.seek(0)
    copy_trainer.load_state_dict(torch.load(buffer, weights_only=True))
    for t in (trainer, copy_trainer):
        torch.manual_seed(10)
        t.train_step()
    assert torch.equal(flat(trainer.generator, trainer.discriminator),
                       flat(copy_trainer.generator, copy_trainer.discriminator))


def test_the_example_in_docs_cgd_runs(tmp_path, capsys):
    text = (ROOT / "docs" / "CGD.md").read_text()
    example = re.search(r"<!-- example: tested -->\s*```python\n(.*?)```", text, re.S)
    assert example, "docs/CGD.md lost its tested example block"
    script = tmp_path / "cgd_example.py"
    script.write_text(example.group(1))
    runpy.run_path(str(script), run_name="__main__")
    assert "'cg/converged': 1.0" in capsys.readouterr().out
