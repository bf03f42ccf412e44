"""Peak memory of one ACGD step against one Adam step of both players (issue 12), on the ICR networks.

    .venv/bin/python benchmarks/acgd_memory.py [--width 64] [--batch 64]

Each update runs in a fresh process: the trainer is built (networks, data, optimizers), the peak
resident memory is read (``ru_maxrss``), one iteration runs, and the peak is read again; the
difference is what the iteration added at its peak (activations, gradients, the optimizers' state
made on the first step, and for ACGD the graph kept for Hessian-vector products and the Krylov
vectors). Both players' sizes are printed for scale. CPU memory, so only a ratio is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

UPDATES = {
    "adam (alternating, both players)": ["objective=wgan"],
    "acgd (joint)": ["objective=wgan", "cgd.enabled=true"],
}


def measure(overrides: list[str]) -> dict[str, float]:
    from equilibria.training.build import build_trainer
    from equilibria.training.config import load_config

    torch.set_num_threads(1)
    trainer = build_trainer(load_config(None, overrides))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainer.train_step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parameters = sum(p.numel() for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()])
    return {"added_mib": (after - before) / 1024, "parameters": parameters}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    common = ["data.image_size=28", "generator.arch=icr_mnist", f"generator.width={args.width}",
              f"discriminator.width={args.width}", f"train.batch_size={args.batch}", "threads=1"]
    if args.measure:
        print(json.dumps(measure([*common, *json.loads(args.measure)])))
        return
    results = {}
    for name, extra in UPDATES.items():
        done = subprocess.run([sys.executable, __file__, "--width", str(args.width), "--batch", str(args.batch),
                               "--measure", json.dumps(extra)], capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"ICR MNIST networks (Tables 1-2) at width {args.width}, batch {args.batch}, digits at 28x28; "
          f"{next(iter(results.values()))['parameters']:,} parameters in both players")
    for name, result in results.items():
        print(f"{name:34s} peak memory added by one iteration: {result['added_mib']:8.1f} MiB")
    adam, acgd = (r["added_mib"] for r in results.values())
    print(f"ratio acgd / adam: {acgd / adam:.2f}")


if __name__ == "__main__":
    main()
