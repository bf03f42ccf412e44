"""``frechet_distance`` (eigen-decomposition, float64) against the scipy.linalg.sqrtm formulation.

The baseline is the computation of pytorch-fid's ``calculate_frechet_distance``:
``sqrtm(sigma1 @ sigma2, disp=False)``, a retry with 1e-6 added to the diagonals if that is not
finite, the real part, then ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(covmean).
Both run on the same 2048-dimensional statistics of realistic features (non-negative, like pooled
ReLU activations, with a decaying spectrum of correlations), in turn, in one process; prints the
median seconds of each, the speed-up and the relative difference of the two distances.

    .venv/bin/python benchmarks/frechet_distance.py [--dim 2048] [--samples 10000] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits

from equilibria.metrics.frechet import Statistics, feature_statistics, frechet_distance


def realistic_features(rng: np.random.Generator, samples: int, dim: int, shift: float) -> np.ndarray:
    """ReLU of correlated Gaussians: a random rotation with singular values decaying like i^-0.7."""
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mixing = basis * (np.arange(1, dim + 1) ** -0.7)
    latent = rng.normal(size=(samples, dim)) + shift
    return np.maximum(latent @ mixing.T + 0.1, 0.0)


def sqrtm_distance(a: Statistics, b: Statistics, eps: float = 1e-6) -> float:
    """pytorch-fid's formulation (scipy.linalg.sqrtm of the non-symmetric product)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # disp=False is deprecated since scipy 1.16
        covmean, _ = scipy.linalg.sqrtm(a.sigma @ b.sigma, disp=False)
        if not np.isfinite(covmean).all():
            offset = np.eye(a.sigma.shape[0]) * eps
            covmean, _ = scipy.linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset), disp=False)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(np.real(covmean)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with threadpool_limits(args.threads):
        rng = np.random.default_rng(0)
        real = feature_statistics(realistic_features(rng, args.samples, args.dim, 0.0))
        fake = feature_statistics(realistic_features(rng, args.samples, args.dim, 0.05))
        ours_times, sqrtm_times = [], []
        for i in range(args.repeats):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                value = (frechet_distance, sqrtm_distance)[which](real, fake)
                (ours_times, sqrtm_times)[which].append(time.perf_counter() - start)
                if which == 0:
                    ours = value
                else:
                    reference = value

    ours_median, sqrtm_median = statistics.median(ours_times), statistics.median(sqrtm_times)
    print(f"statistics: dim {args.dim}, {args.samples} samples each, threads {args.threads}, "
          f"{args.repeats} repeats interleaved; numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"scipy.linalg.sqrtm (pytorch-fid): {sqrtm_median:.3f} s (median)")
    print(f"frechet_distance (eigh):          {ours_median:.3f} s (median)")
    print(f"speed-up: {sqrtm_median / ours_median:.1f}x")
    print(f"distance: {ours:.6f} (ours) vs {reference:.6f} (sqrtm), relative difference "
          f"{abs(ours - reference) / abs(reference):.2e}")


if __name__ == "__main__":
    main()
