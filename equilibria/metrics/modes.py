"""Mode coverage, as in the VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) tables.

2-D mixtures (ring, grid): a sample is *high quality* when it lies within ``num_stds`` (3)
standard deviations of its nearest mode; a mode is *covered* when at least ``min_samples`` high
quality samples have it as their nearest mode. The papers' wording ("within three standard
deviations of the nearest mode") and the PacGAN authors' evaluation code (``MetricLogger`` in
fjxmlzn/PacGAN: a mode counts once it has one such sample) give ``min_samples = 1``, the default.
The reverse KL is PacGAN's third column: KL(p || uniform) = sum_m p(m) log(p(m) * M), p the
histogram of the high-quality samples over their nearest modes; it is undefined (None) when no
sample is high quality.

Stacked MNIST: a classifier labels each channel of a generated image as a digit, the mode is
100 * d_R + 10 * d_G + d_B; a mode is covered when at least ``min_samples`` (1, as in PacGAN's
code) samples fall on it. The KL divergence is KL(p_model || uniform) = sum_m p(m) log(p(m) * M),
p the generated samples' mode histogram (the direction of PacGAN's evaluation code, ``log_metrics``
in its stacked-MNIST experiment).
No smoothing is needed: the uniform distribution has full support, and modes that no sample
hits contribute 0 (0 log 0 = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MixtureCoverage:
    """Covered modes, the share of high-quality samples, each mode's high-quality count, and
    KL(high-quality mode histogram || uniform) (None without a high-quality sample)."""

    modes_covered: int
    high_quality: float
    counts: Tensor
    kl: float | None


@dataclass(frozen=True)
class StackedCoverage:
    """Covered modes, KL(mode histogram || uniform) and each mode's sample count."""

    modes_covered: int
    kl: float
    counts: Tensor


def _check_min_samples(min_samples: int) -> None:
    if min_samples < 1:
        raise ValueError(f"min_samples: got {min_samples}; allowed: an integer >= 1")


def mixture_coverage(points: Tensor, centers: Tensor, std: float, num_stds: float = 3.0,
                     min_samples: int = 1) -> MixtureCoverage:
    """Mode coverage of ``points`` (N, d) for a mixture of isotropic Gaussians at ``centers`` (M, d)."""
    points, centers = torch.as_tensor(points).detach().cpu().double(), torch.as_tensor(centers).cpu().double()
    if points.dim() != 2 or centers.dim() != 2 or points.shape[1] != centers.shape[1] or len(points) == 0:
        raise ValueError(f"points: got shape {tuple(points.shape)} for centers of shape {tuple(centers.shape)}; "
                         f"allowed: (N, {centers.shape[-1]}) with N >= 1")
    if not std > 0 or not num_stds > 0:
        raise ValueError(f"std and num_stds: got {std} and {num_stds}; allowed: both > 0")
    _check_min_samples(min_samples)
    distances = torch.cdist(points, centers)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= num_stds * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    return MixtureCoverage(int((counts >= min_samples).sum()), good.double().mean().item(), counts,
                           _kl_to_uniform(counts) if counts.sum() > 0 else None)


def _kl_to_uniform(counts: Tensor) -> float:
    """KL(p || uniform over len(counts) modes), p = counts normalised; empty modes contribute 0."""
    p = counts.double() / counts.sum()
    hit = p > 0
    return (p[hit] * (p[hit].log() + math.log(len(counts)))).sum().item()


def stacked_mnist_coverage(modes: Tensor, num_modes: int = 1000, min_samples: int = 1) -> StackedCoverage:
    """Coverage and KL(p_model || uniform) of predicted modes (N,) in 0..num_modes-1."""
    modes = torch.as_tensor(modes).detach().cpu().long()
    if modes.dim() != 1 or len(modes) == 0:
        raise ValueError(f"modes: got shape {tuple(modes.shape)}; allowed: (N,) with N >= 1")
    if modes.min() < 0 or modes.max() >= num_modes:
        raise ValueError(f"modes: values span {modes.min().item()}..{modes.max().item()}; "
                         f"allowed: 0..{num_modes - 1}")
    _check_min_samples(min_samples)
    counts = torch.bincount(modes, minlength=num_modes)
    return StackedCoverage(int((counts >= min_samples).sum()), _kl_to_uniform(counts), counts)
