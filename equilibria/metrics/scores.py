"""Sample-quality scores from classifier outputs and features: IS, KID, precision and recall.

- Inception score (Salimans et al. 2016): IS = exp(E_x KL(p(y|x) || p(y))), computed on each of
  ``splits`` consecutive chunks of the samples (p(y) is the chunk's marginal); the mean and the
  standard deviation over the chunks are reported, as in the authors' code.
- Kernel inception distance (Binkowski et al. 2018, with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3): the unbiased estimate of MMD^2 on ``subsets`` random subsets of
  ``subset_size`` samples from each set; mean and standard deviation over the subsets.
- Improved precision and recall (Kynkaanniemi et al. 2019): each set's manifold is the
  union of balls around its samples with radius the distance to the k-th nearest other sample;
  precision is the share of generated samples inside the real manifold, recall the share of real
  samples inside the generated one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _features(x: Tensor | np.ndarray, option: str, dtype: torch.dtype = torch.float64) -> Tensor:
    x = torch.as_tensor(x).detach().cpu().to(dtype)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"{option}: got shape {tuple(x.shape)}; allowed: (N, D) with N >= 1")
    return x


def inception_score(logits: Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` chunks of exp(E_x KL(p(y|x) || p(y))).

    ``logits`` (N, K) are unnormalised log-probabilities (a log-softmax is applied in float64). Chunk
    i holds samples i*N//splits up to (i+1)*N//splits, as in the authors' code (improved-gan).
    """
    log_p = torch.log_softmax(_features(logits, "logits"), dim=1)
    if not 1 <= splits <= log_p.shape[0]:
        raise ValueError(f"splits: got {splits}; allowed: 1..{log_p.shape[0]} (the number of samples)")
    scores = []
    n = log_p.shape[0]
    for chunk in (log_p[i * n // splits:(i + 1) * n // splits] for i in range(splits)):
        log_marginal = torch.logsumexp(chunk, dim=0) - math.log(chunk.shape[0])
        kl = (chunk.exp() * (chunk - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def _polynomial_mmd2(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 between equal-sized sets x and y."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return (within - 2 * k_xy.mean()).item()


def kernel_inception_distance(feats_a: Tensor | np.ndarray, feats_b: Tensor | np.ndarray, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased polynomial-kernel MMD^2 over random subsets.

    Each subset draws ``subset_size`` samples without replacement from each set (numpy generator
    seeded with ``seed``); computed in float64.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features: sizes differ ({a.shape[1]} and {b.shape[1]}); allowed: features of one extractor")
    if subsets < 1:
        raise ValueError(f"kid subsets: got {subsets}; allowed: an integer >= 1")
    if subset_size < 2:
        raise ValueError(f"kid subset_size: got {subset_size}; allowed: an integer >= 2")
    smaller = min(len(a), len(b))
    if subset_size > smaller:
        raise ValueError(f"kid subset_size: got {subset_size}, but the sets have {len(a)} and {len(b)} samples; "
                         f"allowed: subset_size <= {smaller} (use more samples or a smaller subset_size)")
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd2(a[torch.from_numpy(rng.choice(len(a), subset_size, replace=False))],
                               b[torch.from_numpy(rng.choice(len(b), subset_size, replace=False))])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _squared_distances(x: Tensor, y: Tensor) -> Tensor:
    return (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2 * x @ y.T).clamp_(min=0)


def _kth_neighbour_radii(x: Tensor, k: int, chunk_size: int) -> Tensor:
    """Squared distance of each sample to its k-th nearest other sample."""
    return torch.cat([_squared_distances(rows, x).kthvalue(k + 1, dim=1).values
                      for rows in x.split(chunk_size)])


def _share_inside(points: Tensor, centres: Tensor, radii: Tensor, chunk_size: int) -> float:
    """Share of ``points`` within the squared radius of at least one centre."""
    inside = [(_squared_distances(rows, centres) <= radii).any(dim=1) for rows in points.split(chunk_size)]
    return torch.cat(inside).double().mean().item()


def precision_recall(real_feats: Tensor | np.ndarray, fake_feats: Tensor | np.ndarray, k: int = 3,
                     chunk_size: int = 500) -> tuple[float, float]:
    """Improved precision and recall with k-NN manifolds.

    Squared distances in float32 (as in the authors' implementation; twice as fast as float64),
    ``chunk_size`` rows at a time (memory ~ 4 * chunk_size * N bytes).
    """
    real, fake = _features(real_feats, "real_feats", torch.float32), _features(fake_feats, "fake_feats", torch.float32)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"features: sizes differ ({real.shape[1]} and {fake.shape[1]}); "
                         "allowed: features of one extractor")
    smaller = min(len(real), len(fake))
    if not 1 <= k < smaller:
        raise ValueError(f"pr k: got {k}, with {len(real)} real and {len(fake)} generated samples; "
                         f"allowed: 1 <= k < {smaller}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: got {chunk_size}; allowed: an integer >= 1")
    precision = _share_inside(fake, real, _kth_neighbour_radii(real, k, chunk_size), chunk_size)
    recall = _share_inside(real, fake, _kth_neighbour_radii(fake, k, chunk_size), chunk_size)
    return precision, recall
