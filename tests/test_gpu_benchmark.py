"""``benchmarks/gpu.py`` runs on a CPU with ``--device cpu --tiny`` (it cannot be run on a GPU here):
its table has a time for every variant that applies and a dash for compiled ACGD, and its profile a
wall time per path (the GPU's columns are dashes on a CPU). One compiled variant only: compiling on
this CPU takes a minute a variant."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_gpu_benchmark_runs_tiny_on_a_cpu():
    paths = "advas-e1 AdvAs n_adv=1,icr dcgan32 ACGD"
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--tiny", "--warmup", "1",
                           "--iterations", "1", "--paths", paths, "--variants", "fp32,bf16,fp32 compiled",
                           "--profile"],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "CUDA checks (pytest -m cuda): not run (the device is not a GPU)" in lines
    header = next(line for line in lines if line.startswith("path"))
    assert header.split()[1:] == ["fp32", "bf16", "fp32", "compiled"]
    cell = r"\s+\d+\.\d\d ms \(\d\.\d\dx\)"
    assert re.fullmatch(r"advas-e1 AdvAs n_adv=1" + cell * 3, next(l for l in lines if l.startswith("advas")))
    assert re.fullmatch(r"icr dcgan32 ACGD" + cell * 2 + r"\s+-",
                        next(l for l in lines if l.startswith("icr")))
    profiled = lines[lines.index(next(l for l in lines if l.startswith("fp32 eager, per iteration"))) + 1:]
    assert [l.split()[0] for l in profiled[:2]] == ["advas-e1", "icr"]  # each path, a wall time, no GPU columns
    assert all(re.fullmatch(r".+?\s+\d+\.\d\d ms" + r"\s+-" * 3, l) for l in profiled[:2]), profiled
