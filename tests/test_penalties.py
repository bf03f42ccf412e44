"""Penalties against finite differences and closed forms."""

import pytest
import torch
from torch import nn

from equilibria.core.penalties import apply_spectral_norm, clip_weights, gradient_penalty, l2_penalty, r1_penalty


def tiny_critic():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()


def critic_out(critic, x):
    return critic(x).squeeze(-1)


def fd_input_grad_norms(critic, x, h=1e-6):
    """||grad_x D(x)|| per sample by central differences."""
    norms = []
    for row in x:
        grad = []
        for j in range(row.numel()):
            e = torch.zeros_like(row)
            e[j] = h
            grad.append((critic(row + e) - critic(row - e)).item() / (2 * h))
        norms.append(torch.tensor(grad).norm())
    return torch.stack(norms)


def test_gradient_penalty_matches_finite_differences():
    critic = tiny_critic()
    x = torch.randn(4, 3, dtype=torch.float64)
    # real == fake makes every interpolate equal x whatever the random mixing weight
    penalty = gradient_penalty(lambda t: critic_out(critic, t), x, x.clone())
    expected = ((fd_input_grad_norms(critic, x) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_penalty_parameter_gradient_matches_finite_differences():
    critic = tiny_critic()
    x = torch.randn(4, 3, dtype=torch.float64)
    weight = critic[0].weight
    penalty = gradient_penalty(lambda t: critic_out(critic, t), x, x.clone())
    (grad,) = torch.autograd.grad(penalty, weight)
    h = 1e-6
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        weight.data[i, j] += h
        plus = gradient_penalty(lambda t: critic_out(critic, t), x, x.clone()).item()
        weight.data[i, j] -= 2 * h
        minus = gradient_penalty(lambda t: critic_out(critic, t), x, x.clone()).item()
        weight.data[i, j] += h
        assert grad[i, j].item() == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-9)


def test_gradient_penalty_of_linear_critic_is_closed_form():
    w = torch.tensor([[3.0, 4.0]], dtype=torch.float64)  # ||w|| = 5 everywhere
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    assert gradient_penalty(lambda t: (t @ w.T).squeeze(-1), real, fake).item() == pytest.approx(16.0)
    assert gradient_penalty(lambda t: (t @ w.T).squeeze(-1), real, fake, center=0.0).item() == pytest.approx(25.0)


def test_gradient_penalty_interpolates_uniformly_on_the_segment():
    torch.manual_seed(1)
    n = 200_000
    real, fake = torch.ones(n, 1, dtype=torch.float64), torch.zeros(n, 1, dtype=torch.float64)
    # D(x) = x^2 / 2 has gradient x_hat = e, so the penalty is E (e - 1)^2 = 1/3 for e ~ U[0, 1]
    penalty = gradient_penalty(lambda t: 0.5 * t.squeeze(-1) ** 2, real, fake)
    assert penalty.item() == pytest.approx(1 / 3, abs=3e-3)


def test_gradient_penalty_reaches_the_generator_through_fake():
    critic = tiny_critic()
    theta = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    penalty = gradient_penalty(lambda t: critic_out(critic, t), torch.randn(4, 3, dtype=torch.float64), theta * 2)
    (grad,) = torch.autograd.grad(penalty, theta)
    assert grad.abs().sum() > 0


def test_r1_penalty_closed_form():
    a = 1.7
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    # D(x) = a/2 ||x||^2, grad = a x, R1 = 1/2 E ||a x||^2
    penalty = r1_penalty(lambda t: 0.5 * a * t.flatten(1).pow(2).sum(1), x)
    assert penalty.item() == pytest.approx(0.5 * (a ** 2) * x.flatten(1).pow(2).sum(1).mean().item())
    assert not x.requires_grad


def test_l2_penalty_and_clipping():
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -2.0]]))
        layer.bias.fill_(0.005)
    assert l2_penalty(layer).item() == pytest.approx(0.25 + 4.0 + 0.005 ** 2)
    clip_weights(layer, 0.01)
    assert layer.weight[0].tolist() == pytest.approx([0.01, -0.01])
    assert layer.bias.item() == pytest.approx(0.005)


def test_spectral_norm_makes_largest_singular_value_one():
    torch.manual_seed(0)
    net = apply_spectral_norm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 1)))
    x = torch.randn(2, 1, 6, 6)
    for _ in range(50):  # power iterations run in training-mode forwards
        net(x)
    for layer in (net[0], net[3]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, rel=1e-3)
