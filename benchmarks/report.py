"""A report's reading of the runs' metrics: ``equilibria.experiment.write_report`` over hand-written
runs, with ``report.load_metrics`` keeping each file's parsed records against parsing the file at
every call (as before the cache), alternated in one process; medians and their ratio.

    .venv/bin/python benchmarks/report.py --runs 40 --records 2000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from equilibria import report
from equilibria.experiment import write_report

METRICS = ["eval/fid", "d_fake_std", "grad_norm_fake"]


def write_runs(root: Path, runs: int, records: int) -> dict[str, list[Path]]:
    """Two groups of ``runs`` / 2 runs, each logging training scalars every step and FID every 10th."""
    rng = random.Random(0)
    groups: dict[str, list[Path]] = {"a": [], "b": []}
    for i in range(runs):
        run = root / f"g{i % 2}" / f"s{i // 2}"
        run.mkdir(parents=True)
        lines = []
        for step in range(1, records + 1):
            record = {"step": step, "seconds": step * 0.1, "loss_adv": rng.random(), "loss_gen": rng.random(),
                      "d_real": rng.random(), "d_fake": rng.random(), "d_fake_std": rng.random(),
                      "grad_norm_fake": rng.random()}
            if step % 10 == 0:
                record["eval/fid"] = 10 + 100 / step + rng.random()
            lines.append(json.dumps(record) + "\n")
        (run / "metrics.jsonl").write_text("".join(lines))
        (run / "config.yaml").write_text(f"train: {{steps: {records}}}\n")  # a finished run
        groups["ab"[i % 2]].append(run)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--records", type=int, default=2000, help="records per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    original = report.load_metrics

    def parse_every_call(run_dir):
        report._parsed.cache_clear()
        return original(run_dir)

    loaders = {"kept": original, "parsed at every call": parse_every_call}
    times: dict[str, list[float]] = {name: [] for name in loaders}
    with tempfile.TemporaryDirectory() as tmp:
        groups = write_runs(Path(tmp) / "runs", args.runs, args.records)
        out = Path(tmp) / "out"
        out.mkdir()
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                report._parsed.cache_clear()  # each report starts from the files, as a new process does
                with mock.patch.object(report, "load_metrics", loader):
                    start = time.perf_counter()
                    write_report(groups, METRICS, out, "benchmark", {"b": ["a"]}, ratio=["eval/fid"])
                    times[name].append(time.perf_counter() - start)
    kept, every = (statistics.median(times[name]) for name in times)
    print(f"write_report, {args.runs} runs of {args.records} records: records kept {kept:.2f} s, "
          f"parsed at every call {every:.2f} s, ratio {kept / every:.2f}")


if __name__ == "__main__":
    main()
