"""Gaussian-mixture toy benchmarks for mode coverage (VEEGAN / PacGAN)."""

from __future__ import annotations

import math

import torch

from .dataset import Dataset


def ring(n: int, seed: int, modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Dataset:
    """``n`` points from ``modes`` Gaussians evenly spaced on a circle (mode k at angle 2*pi*k/modes)."""
    _check_positive("ring", modes=modes)
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    centers = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return _mixture("ring", centers, n, seed, std)


def grid(n: int, seed: int, side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Dataset:
    """``n`` points from ``side**2`` Gaussians on a centred square grid ({-4,-2,0,2,4}^2 by default)."""
    _check_positive("grid", side=side)
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    centers = torch.cartesian_prod(coords, coords)
    return _mixture("grid", centers, n, seed, std)


def _mixture(name: str, centers: torch.Tensor, n: int, seed: int, std: float) -> Dataset:
    """Draw ``n`` points: a uniformly chosen centre plus isotropic Gaussian noise of ``std``."""
    _check_positive(name, n=n, std=std)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    data = (centers[labels] + std * noise).float()
    return Dataset(name, data, labels, "points", centers=centers.float(), std=float(std),
                   num_modes=len(centers))


def _check_positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}: {key} must be > 0, got {value!r}")
