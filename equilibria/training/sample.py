"""Samples from a finished (or running) run's checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from equilibria.files import save_atomically
from equilibria.images import enlarge, make_grid, save_png, scatter_png
from equilibria.training import checkpoint
from equilibria.training.build import build_networks
from equilibria.training.run import load_run_config, warn_skipped


def load_generator(run_dir: Path, checkpoint_path: str | Path | None = None, use_ema: bool = True
                   ) -> tuple[torch.nn.Module, int, bool]:
    """The run's generator (its EMA if kept and ``use_ema``) in eval mode, the checkpoint's step and
    whether the weights are the EMA's."""
    config = load_run_config(run_dir)
    if checkpoint_path is None:
        state, path, skipped = checkpoint.load_latest(run_dir / "checkpoints")
        warn_skipped(skipped)
    else:
        path, state = checkpoint_path, checkpoint.load(checkpoint_path)
    generator, _ = build_networks(config, state.sample_shape)
    found = checkpoint.difference(state.generator_weights(use_ema), generator.state_dict(), "generator")
    if found:
        raise checkpoint.CheckpointError(f"checkpoint {str(path)!r} does not fit this run: {found}")
    generator.load_state_dict(state.generator_weights(use_ema))
    return generator.eval(), state.step, use_ema and "ema" in state.trainer


@torch.no_grad()
def sample_run(run_dir: Path, *, checkpoint: str | None = None, num: int = 64, out: str | None = None,
               use_ema: bool = True, seed: int = 0, tensor_out: str | None = None) -> Path:
    """Write ``num`` samples as a PNG grid (or a scatter plot for 2-D data); optionally as a tensor.
    ``out`` and ``tensor_out`` must name files in existing directories."""
    if num < 1:
        raise ValueError(f"--num: got {num}; allowed: an integer >= 1")
    for option, target in (("--out", out), ("--tensor", tensor_out)):
        if target and not Path(target).parent.is_dir():
            raise ValueError(f"{option}: got {target!r}, whose directory does not exist; allowed: a file in an "
                             "existing directory")
    generator, step, _ = load_generator(run_dir, checkpoint, use_ema)
    z = torch.randn(num, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    fake = generator(z)
    path = Path(out) if out else run_dir / "samples" / f"sample-step-{step:08d}.png"
    if fake.dim() == 2:
        scatter_png(path, fake, title=f"step {step}")
    else:
        nrow = int(num ** 0.5 + 0.999999)
        save_png(path, enlarge(make_grid(fake, nrow=nrow, value_range=generator.output_range or (-1.0, 1.0))))
    if tensor_out:
        save_atomically(fake, tensor_out)
    return path
