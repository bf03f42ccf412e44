"""ICR Figure 7's networks and game (equilibria.analysis.icr_projection) and its script."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from equilibria.analysis.icr_projection import WEIGHTS, discriminator, generator_output, projection_game, run

ROOT = Path(__file__).resolve().parents[1]


def test_the_generator_uses_its_28_weights_and_stays_in_s():
    torch.manual_seed(0)
    for _ in range(20):
        w = (torch.randn(WEIGHTS, dtype=torch.float64) * 3).requires_grad_(True)
        point = generator_output(w)
        s = 0.5 * torch.log(point[0] * point[1]).detach()  # (e^(s+t), e^(s-t)): s = log(xy) / 2
        assert -0.5 < float(s) < 0.5
        (grad,) = torch.autograd.grad(point.sum(), w)
        assert int((grad != 0).sum()) == WEIGHTS
    assert 0.5 * math.log(2 * 2) > 0.5  # P_data = (2, 2) is outside S


def test_the_generator_and_discriminator_by_hand():
    w = torch.zeros(WEIGHTS, dtype=torch.float64)
    w[:4] = torch.tensor([1.0, 0, 0, 0])
    w[4:20] = torch.eye(4).flatten()
    w[20:28] = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])  # a = atan(atan(1)), b = 0
    a = math.atan(math.atan(1.0))
    torch.testing.assert_close(generator_output(w), torch.tensor([math.exp(a), math.exp(-a)], dtype=torch.float64))
    v = torch.zeros(WEIGHTS, dtype=torch.float64)
    v[:8] = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0])  # rows (1, 0), (0, 1): the rescaled point itself
    v[8:24] = torch.eye(4).flatten()
    v[24:28] = torch.tensor([1.0, 1.0, 0, 0])
    point = torch.tensor([2.0, 3.0], dtype=torch.float64)
    expected = math.atan(math.atan(math.atan(2.0)) + math.atan(math.atan(3.0 * 1e-2)))
    assert float(discriminator(point, v, (1.0, 1e-2))) == pytest.approx(expected)
    f = projection_game((1.0, 1.0)).f
    assert float(f(w, v)) == pytest.approx(float(discriminator(torch.tensor([2.0, 2.0], dtype=torch.float64), v,
                                                               (1, 1)) - discriminator(generator_output(w), v, (1, 1))))


def test_runs_share_their_initialisation_and_measure_the_accurate_share():
    simgd, cgd = run("simgd", (1.0, 1e-2), 3, 5, 0.03), run("cgd", (1.0, 1e-2), 3, 5, 0.03)
    assert torch.equal(simgd.outputs[0], cgd.outputs[0]) and simgd.outputs.shape == (6, 2)
    shares = [simgd.accurate_share(tol) for tol in (1e-9, 1e9)]
    assert shares == [0.0, 1.0]


def test_the_script_writes_its_figure_and_summary(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "icr_projection.py"), "--seeds", "2",
                           "--steps", "20", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "projection-summary.md").read_text()
    assert "| eta diag(1, 1e-2): CGD keeps it longer than SimGD |" in summary
    assert (tmp_path / "projection.png").stat().st_size > 10_000
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "icr_projection.py"), "--lr", "0",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--lr: got 0.0; allowed: a number > 0" in bad.stderr
