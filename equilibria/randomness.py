"""Random draws from one stream on every device.

Every random draw of an iteration (latent codes, the gradient penalty's interpolation weights, the
meta-discriminators' Gaussian batches) comes from the CPU's generator and is then moved to the
players' device: a run on a GPU makes the draws of the same run on the CPU (so the two agree to
float tolerance, ``tests/test_cuda.py``), and one random state (``torch.get_rng_state``) decides a
run wherever it trains. On a GPU the draw is written to pinned memory and copied without making
the host wait for the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def draw(sample: Callable[..., Tensor], *shape: int, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> Tensor:
    """``sample(shape)`` (``torch.randn``, ``torch.rand``) from the CPU's random stream, on ``device``."""
    if torch.device(device).type == "cpu":
        return sample(shape, dtype=dtype)
    host = torch.empty(shape, dtype=dtype, pin_memory=True)
    sample(shape, dtype=dtype, out=host)
    return host.to(device, non_blocking=True)


def draw_batch(sample: Callable[..., Tensor], n: int, *shape: int, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` draws of ``shape`` for a batch of ``n`` samples: one process's. ``DataParallel.draw`` has this
    signature and makes the global batch's draws, keeping this process's share; a network that draws
    per-sample noise in training takes the one its trainer gives it (``equilibria.models.stylegan2``)."""
    return draw(sample, n, *shape, device=device, dtype=dtype)
