"""Small games: update maps against hand-derived formulas, spectral radii against numpy
eigenvalues, ICR Figures 3 and 6, user games and the ``game`` command."""

import argparse
import math

import numpy as np
import pytest
import torch

from equilibria.cli import game as game_command
from equilibria.games import (altgd_map, cgd_map, load_game, play, simgd_map, spectral_radius,
                              stationary_point)
from equilibria.optim import CGD

QUADRATIC = load_game("quadratic")
ZERO = torch.zeros(1, dtype=torch.float64)


def eq3_jacobians(eta_x, eta_y):
    """The linearised updates on f = x^2 + 10xy + y^2 (a = c = 2, b = 10), derived by hand:
    SimGD is Id - M of ICR Section 4; AltGD moves y first; CGD's dx, dy are linear in (x, y)."""
    simgd = np.array([[1 - 2 * eta_x, -10 * eta_x], [10 * eta_y, 1 + 2 * eta_y]])
    altgd = np.array([[1 - 2 * eta_x - 100 * eta_x * eta_y, -10 * eta_x * (1 + 2 * eta_y)],
                      [10 * eta_y, 1 + 2 * eta_y]])
    gradient = np.array([[2.0, 10.0], [10.0, 2.0]])  # (grad_x, grad_y) = gradient @ (x, y)
    denominator = 1 + 100 * eta_x * eta_y
    dx = -eta_x * (gradient[0] + eta_y * 10 * gradient[1]) / denominator
    dy = eta_y * (gradient[1] - eta_x * 10 * gradient[0]) / denominator
    return simgd, altgd, np.eye(2) + np.stack([dx, dy])


def radius(matrix):
    return np.abs(np.linalg.eigvals(matrix)).max()


@pytest.mark.parametrize("lr, expected", [((0.09, 0.01), "converged"), ((0.03, 0.03), "diverged"),
                                          ((0.01, 0.09), "diverged")])
def test_icr_figures_3_and_6_simgd_on_eq3(lr, expected):
    """SimGD converges with step sizes (0.09, 0.01) and diverges with (0.03, 0.03) and (0.01, 0.09)."""
    trajectory = play(QUADRATIC, "simgd", lr, 500, [1.0], [1.0])
    assert trajectory.status == expected
    assert trajectory.radius == pytest.approx(radius(eq3_jacobians(*lr)[0]), rel=1e-12)
    assert (trajectory.radius < 1) == (expected == "converged")
    if expected == "converged":  # the distance shrinks at the rate of the spectral radius
        assert trajectory.distance <= math.sqrt(2) * 10 * trajectory.radius ** 500
    else:
        assert len(trajectory.points) <= 501 and trajectory.points[-1].abs().max() > 1e6


@pytest.mark.parametrize("lr", [(0.09, 0.01), (0.03, 0.03), (0.01, 0.09)])
def test_spectral_radii_of_altgd_and_cgd_match_the_hand_derived_jacobians(lr):
    _, altgd, cgd = eq3_jacobians(*lr)
    f = QUADRATIC.f
    assert spectral_radius(lambda x, y: altgd_map(f, x, y, lr), ZERO, ZERO) == pytest.approx(radius(altgd), rel=1e-12)
    steps = torch.tensor(lr[0], dtype=torch.float64), torch.tensor(lr[1], dtype=torch.float64)
    assert spectral_radius(lambda x, y: cgd_map(f, x, y, *steps), ZERO, ZERO) == pytest.approx(radius(cgd), rel=1e-12)


def test_one_step_of_each_map_equals_the_formula():
    x, y = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-0.7], dtype=torch.float64)
    lr = (0.05, 0.02)
    simgd, altgd, cgd = eq3_jacobians(*lr)
    point = np.array([0.3, -0.7])
    for update, matrix in ((lambda: simgd_map(QUADRATIC.f, x, y, lr), simgd),
                           (lambda: altgd_map(QUADRATIC.f, x, y, lr), altgd),
                           (lambda: cgd_map(QUADRATIC.f, x, y, torch.tensor(0.05, dtype=torch.float64),
                                            torch.tensor(0.02, dtype=torch.float64)), cgd)):
        new = torch.cat(update()).detach().numpy()
        np.testing.assert_allclose(new, matrix @ point, rtol=1e-12)
    # the dense CGD map is the optimizer's step
    px, py = x.clone().requires_grad_(), y.clone().requires_grad_()
    CGD(min_params=[px], max_params=[py], lr_min=0.05, lr_max=0.02, tol=1e-14).step(QUADRATIC.f(px, py))
    np.testing.assert_allclose(torch.cat([px, py]).detach().numpy(), cgd @ point, rtol=1e-12)


def test_bilinear_game_radii_have_their_closed_forms():
    """On f = xy with step size eta: SimGD sqrt(1 + eta^2), AltGD 1, CGD 1 / sqrt(1 + eta^2)."""
    bilinear = load_game("bilinear")
    eta = 0.2
    results = {m: play(bilinear, m, [eta], 50, [1.0], [1.0]) for m in ("simgd", "altgd", "cgd")}
    assert results["simgd"].radius == pytest.approx(math.sqrt(1 + eta**2), rel=1e-12)
    assert results["altgd"].radius == pytest.approx(1.0, rel=1e-12)
    assert results["cgd"].radius == pytest.approx(1 / math.sqrt(1 + eta**2), rel=1e-12)
    start = math.sqrt(2)
    assert results["cgd"].distance == pytest.approx(start * (1 + eta**2) ** -25, rel=1e-9)  # a contraction
    assert results["simgd"].distance == pytest.approx(start * (1 + eta**2) ** 25, rel=1e-9)


def test_acgd_plays_and_reports_with_its_last_step_sizes():
    trajectory = play(load_game("bilinear"), "acgd", [0.1], 400, [1.0], [1.0])
    assert trajectory.status == "converged" and trajectory.radius < 1


USER_GAME = """
import torch

def shifted(x, y):
    # stationary point (1, -2); x minimises, y maximises
    u, v = x - 1, y + 2
    return (u**2 + 3 * u * v - v**2).sum()

not_a_function = 3

def vector(x, y):
    return x * y
"""


def test_user_game_from_a_file_and_from_a_module(tmp_path, monkeypatch):
    path = tmp_path / "my_games.py"
    path.write_text(USER_GAME)
    from_file = load_game(f"{path}:shifted")
    monkeypatch.syspath_prepend(str(tmp_path))
    from_module = load_game("my_games:shifted")
    for game in (from_file, from_module):
        trajectory = play(game, "cgd", [0.1], 300, [0.0], [0.0])
        np.testing.assert_allclose(trajectory.stationary.numpy(), [1.0, -2.0], atol=1e-12)
        assert trajectory.status == "converged" and trajectory.radius < 1
    star = stationary_point(from_file.f, torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    np.testing.assert_allclose(torch.cat(star).numpy(), [1.0, -2.0])


@pytest.mark.parametrize("spec, error, message", [
    ("saddle", ValueError, "allowed: quadratic, bilinear, module:function"),
    ("no/such/file.py:f", FileNotFoundError, "no file"),
    ("{dir}/my_games.py:not_a_function", ValueError, "has no function 'not_a_function'"),
    ("{dir}/my_games.py:vector", ValueError, "allowed: a scalar tensor"),
    ("equilibria_no_such_module:f", ValueError, "cannot import module"),
])
def test_load_game_names_bad_specs(tmp_path, spec, error, message):
    (tmp_path / "my_games.py").write_text(USER_GAME)
    with pytest.raises(error, match=message):
        load_game(spec.format(dir=tmp_path), (2, 2))


@pytest.mark.parametrize("call, message", [
    (lambda: play(QUADRATIC, "newton", [0.1], 10, [1.0], [1.0]), "--method: got 'newton'"),
    (lambda: play(QUADRATIC, "simgd", [0.1, 0.2, 0.3], 10, [1.0], [1.0]), "--lr: got"),
    (lambda: play(QUADRATIC, "simgd", [-0.1], 10, [1.0], [1.0]), "--lr: got"),
    (lambda: load_game("quadratic", (1, 2)), "allowed: equal sizes"),
])
def test_bad_options_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_game_command_reports_and_plots(tmp_path, capsys):
    top = argparse.ArgumentParser(prog="equilibria")
    game_command.add_parser(top.add_subparsers(dest="command", required=True))
    out = tmp_path / "traj.png"
    args = top.parse_args(["game", "quadratic", "--method", "simgd", "cgd", "--lr", "0.03", "0.03", "--steps", "500",
                           "--out", str(out)])
    args.func(args)
    text = capsys.readouterr().out
    assert "simgd" in text and "diverged" in text and "1.042305 (> 1: repelling)" in text
    assert "cgd" in text and "< 1: attracting" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
