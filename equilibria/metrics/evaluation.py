"""Score a generator, or a tensor of samples, against a dataset: FID, IS, KID, precision/recall, modes.

Which metrics apply depends on the reference dataset:

=====================  ==========================================================================
reference              metrics
=====================  ==========================================================================
ring, grid (2-D)       ``modes``: modes covered and the share of high-quality samples
stacked_mnist          ``fid``, ``is``, ``kid``, ``pr``, ``modes`` (covered of 1000, KL to uniform)
other image datasets   ``fid``, ``is``, ``kid``, ``pr``
=====================  ==========================================================================

``metrics=None`` computes every metric that applies; asking for one that does not apply is an
error naming the metrics allowed. Results (a flat dict of floats): ``fid``; ``is``, ``is_std``;
``kid``, ``kid_std``; ``precision``, ``recall``; ``modes`` with ``high_quality`` and ``kl`` (mixtures;
``kl`` left out while no sample is high quality) or
``kl`` (stacked MNIST).

Extractors: digits, MNIST and stacked MNIST default to their dataset classifier
(``equilibria.metrics.classifier``), CIFAR-10 and image folders to the FID Inception. With a
classifier, IS is the classifier's Inception score: the same formula on the classifier's logits
(at most 10 for digits and MNIST, 1000 for stacked MNIST), not comparable with Inception-network
IS. Stacked-MNIST modes always come from the stacked MNIST classifier.

Generated samples: ``num_samples`` latent codes drawn at once from a ``torch.Generator`` seeded
with ``seed`` (the global random state is untouched, and the codes do not depend on
``batch_size``), the generator in eval mode under ``no_grad`` (its mode restored afterwards).
Reference features are those of the first ``reference_size`` images of the dataset, as stored
(uint8), cached on disk (``equilibria.metrics.cache``).

Under data parallelism (``parallel``), each process generates and extracts the features of its
contiguous share of the samples (the same latent codes as one process), the features are gathered
in order, and every process computes the same scores: one process's value, to float tolerance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from equilibria.core.parallel import SINGLE, DataParallel
from equilibria.data import Dataset
from equilibria.metrics.cache import Reference, cached_reference, data_hash, reference_key, reference_path
from equilibria.metrics.classifier import CLASSIFIER_DATASETS, classifier_extractor
from equilibria.metrics.frechet import feature_statistics, frechet_distance
from equilibria.metrics.modes import mixture_coverage, stacked_mnist_coverage
from equilibria.metrics.scores import inception_score, kernel_inception_distance, precision_recall

METRICS = ("fid", "is", "kid", "pr", "modes")
EXTRACTORS = ("classifier", "inception")
REFERENCE_PREPROCESSING = "uint8 images as stored"
DEFAULT_NUM_SAMPLES = 10_000
BATCH_SIZE = 64  # generated samples and extracted features per batch (the Inception is as fast at 16-64)


def applicable_metrics(reference: Dataset) -> tuple[str, ...]:
    """The metrics that apply to ``reference`` (see the module's table)."""
    if reference.kind == "points":
        return ("modes",) if reference.centers is not None and reference.std is not None else ()
    return METRICS if reference.name == "stacked_mnist" else METRICS[:4]


def default_extractor(dataset_name: str, kind: str | None = None, *, value_range: tuple[float, float] = (-1.0, 1.0),
                      data_root: str | Path | None = None, data_split: str = "train",
                      cache_dir: str | Path | None = None, progress: bool = True):
    """The feature extractor for ``dataset_name``: ``kind`` "classifier" or "inception", or None for
    the dataset's default (classifier for digits, mnist and stacked_mnist, else Inception).

    The classifier is trained (once, then cached) on MNIST from ``data_root``/``data_split`` (the
    bundled digits need neither); the Inception weights are found as ``equilibria.metrics.weights``
    says. The global random state is left as it was.
    """
    if kind not in (None, *EXTRACTORS):
        raise ValueError(f"extractor: got {kind!r}; allowed: {', '.join(EXTRACTORS)}")
    if dataset_name in ("ring", "grid"):
        raise ValueError(f"extractor: {dataset_name} is a 2-D points dataset, which has no feature extractor; "
                         "allowed metrics: modes")
    kind = kind or ("classifier" if dataset_name in CLASSIFIER_DATASETS else "inception")
    if kind == "classifier" and dataset_name not in CLASSIFIER_DATASETS:
        raise ValueError(f"extractor: no classifier for {dataset_name}; allowed: classifier for "
                         f"{', '.join(CLASSIFIER_DATASETS)}, inception for any image dataset")
    with torch.random.fork_rng(devices=[]):  # building a network draws initial weights: keep the random state
        if kind == "classifier":
            return classifier_extractor(dataset_name, data_root, data_split, value_range=value_range,
                                        cache_dir=cache_dir, progress=progress)
        from equilibria.metrics.features import fid_inception  # the Inception is large: imported when used

        return fid_inception(value_range=value_range)


def _check_metrics(metrics, reference: Dataset) -> tuple[str, ...]:
    allowed = applicable_metrics(reference)
    if metrics is None:
        return allowed
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"metrics: unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
        if metric not in allowed:
            raise ValueError(f"metrics: {metric!r} does not apply to {reference.name}; allowed: "
                             f"{', '.join(allowed) or 'none'}")
    if not metrics:
        raise ValueError(f"metrics: got none; allowed: any of {', '.join(allowed)}")
    return metrics


def generated_batches(generator: nn.Module, num_samples: int, batch_size: int, seed: int,
                      share: slice = slice(None)) -> Iterator[Tensor]:
    """Batches of samples from latent codes seeded with ``seed`` (those of ``share`` of the
    ``num_samples``), in eval mode under no_grad."""
    parameter = next(generator.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    z = torch.randn(num_samples, generator.latent_dim, generator=torch.Generator().manual_seed(seed))[share]
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            for codes in z.split(batch_size):
                yield generator(codes.to(device)).detach()
    finally:
        generator.train(was_training)


def _samples(source: nn.Module | Tensor, reference: Dataset, num_samples: int | None, batch_size: int,
             seed: int, parallel: DataParallel) -> Tensor | Iterator[Tensor]:
    """This process's share of the source's samples: a tensor, or an iterator of generated batches."""
    if isinstance(source, Tensor):
        if tuple(source.shape[1:]) != reference.sample_shape:
            raise ValueError(f"source: samples of shape {tuple(source.shape[1:])}; allowed: {reference.name}'s "
                             f"sample shape {reference.sample_shape}")
        if num_samples is not None and num_samples != len(source):
            raise ValueError(f"num_samples: got {num_samples} with a tensor of {len(source)} samples; "
                             "allowed: None or the tensor's size")
        return source.detach()[parallel.share(len(source))]
    if not isinstance(source, nn.Module) or not hasattr(source, "latent_dim"):
        raise TypeError(f"source: got {type(source).__name__}; allowed: a generator module with latent_dim, "
                        "or a tensor of samples")
    num_samples = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    if num_samples < 2:
        raise ValueError(f"num_samples: got {num_samples}; allowed: an integer >= 2")
    out_shape = getattr(source, "out_shape", None)
    if out_shape is not None and tuple(out_shape) != reference.sample_shape:
        raise ValueError(f"source: the generator makes samples of shape {tuple(out_shape)}; allowed: "
                         f"{reference.name}'s sample shape {reference.sample_shape}")
    return generated_batches(source, num_samples, batch_size, seed, parallel.share(num_samples))


def reference_features(reference: Dataset, extractor, *, size: int | None = None, split: str | None = None,
                       batch_size: int = BATCH_SIZE, device: str | torch.device | None = None, progress: bool = True,
                       cache_dir: str | Path | None = None) -> Reference:
    """Features and statistics of the first ``size`` images of ``reference`` (default: all, at most
    10000), from the cache or computed and cached."""
    from equilibria.metrics.features import extract_features

    size = min(len(reference), 10_000) if size is None else size
    if not 2 <= size <= len(reference):
        raise ValueError(f"reference_size: got {size}; allowed: 2..{len(reference)} (the images in {reference.name})")
    data = reference.data[:size]
    key = reference_key(dataset=reference.name, split=split, size=size, data=data_hash(data), extractor=extractor.name,
                        preprocessing=REFERENCE_PREPROCESSING)
    return cached_reference(reference_path(reference.name, key, cache_dir),
                            lambda: extract_features(extractor, data, batch_size, device, progress))


def _check_value_range(extractor, images_are_float: bool, value_range: tuple[float, float]) -> None:
    own = getattr(extractor, "value_range", None)
    if images_are_float and own is not None and tuple(own) != tuple(value_range):
        raise ValueError(f"extractor: {extractor.name} takes float images in {tuple(own)}, but the samples lie in "
                         f"{tuple(value_range)}; allowed: an extractor built with value_range={tuple(value_range)}")


def evaluate(source: nn.Module | Tensor, reference: Dataset, metrics=None, extractor=None, *,
             num_samples: int | None = None, reference_size: int | None = None, batch_size: int = BATCH_SIZE,
             seed: int = 0, value_range: tuple[float, float] | None = None, progress: bool = True,
             device: str | torch.device | None = None, data_root: str | Path | None = None,
             data_split: str = "train", cache_dir: str | Path | None = None, is_splits: int = 10,
             kid_subsets: int = 100, kid_subset_size: int = 1000, pr_k: int = 3,
             parallel: DataParallel = SINGLE) -> dict[str, float]:
    """Scores of ``source`` (a generator, or samples (N, *sample_shape)) against ``reference``.

    ``value_range`` is where float samples lie (default: the generator's ``output_range``, else
    (-1, 1)); uint8 samples are taken as 0..255. ``extractor`` is a feature extractor, "classifier",
    "inception" or None (the dataset's default, see :func:`default_extractor`, which also takes
    ``data_root``, ``data_split`` and ``cache_dir``); 2-D points take none. ``num_samples`` is the
    number of generated samples (None: 10000; a tensor is used whole); ``reference_size`` the
    number of reference images (default all, at most 10000). Under data parallelism every process
    calls it with its ``parallel``, and each gets the scores.
    """
    metrics = _check_metrics(metrics, reference)
    if batch_size < 1:
        raise ValueError(f"batch_size: got {batch_size}; allowed: an integer >= 1")
    if value_range is None:
        value_range = getattr(source, "output_range", None) or (-1.0, 1.0)
    samples = _samples(source, reference, num_samples, batch_size, seed, parallel)
    if reference.kind == "points":
        if extractor is not None:
            raise ValueError(f"extractor: {reference.name} is a 2-D points dataset, scored on the points "
                             f"themselves; allowed: None")
        points = parallel.concatenate(samples if isinstance(samples, Tensor)
                                      else torch.cat([batch.cpu() for batch in samples]))
        coverage = mixture_coverage(points, reference.centers, reference.std)
        scores = {"modes": float(coverage.modes_covered), "high_quality": coverage.high_quality}
        return scores if coverage.kl is None else {**scores, "kl": coverage.kl}
    if extractor is None or isinstance(extractor, str):
        extractor = default_extractor(reference.name, extractor, value_range=value_range, data_root=data_root,
                                      data_split=data_split, cache_dir=cache_dir, progress=progress)
    is_float = not (isinstance(samples, Tensor) and samples.dtype == torch.uint8)
    _check_value_range(extractor, is_float, value_range)
    stacked_modes = "modes" in metrics
    if stacked_modes and getattr(extractor, "num_classes", None) != 1000:
        raise ValueError(f"extractor: modes on stacked_mnist need the stacked MNIST classifier (1000 classes); "
                         f"got {extractor.name}; allowed: extractor='classifier'")
    from equilibria.metrics.features import extract_features

    with_logits = "is" in metrics or stacked_modes
    out = extract_features(extractor, samples, batch_size, device, progress, logits=with_logits)
    features, logits = (parallel.concatenate(t) for t in out) if with_logits else (parallel.concatenate(out), None)
    results: dict[str, float] = {}
    ref = None
    if {"fid", "kid", "pr"} & set(metrics):
        ref = reference_features(reference, extractor, size=reference_size, split=data_split, batch_size=batch_size,
                                 device=device, progress=progress, cache_dir=cache_dir)
    for metric in metrics:
        if metric == "fid":
            results["fid"] = frechet_distance(feature_statistics(features), ref.statistics)
        elif metric == "is":
            results["is"], results["is_std"] = inception_score(logits, is_splits)
        elif metric == "kid":
            results["kid"], results["kid_std"] = kernel_inception_distance(features, ref.features, kid_subsets,
                                                                           kid_subset_size, seed)
        elif metric == "pr":
            results["precision"], results["recall"] = precision_recall(ref.features, features, pr_k)
        else:
            coverage = stacked_mnist_coverage(logits.argmax(dim=1))
            results["modes"], results["kl"] = float(coverage.modes_covered), coverage.kl
    return results


def evaluator(reference: Dataset, metrics=None, extractor=None, *, num_samples: int = DEFAULT_NUM_SAMPLES,
              value_range: tuple[float, float] = (-1.0, 1.0), data_root: str | Path | None = None,
              data_split: str = "train", cache_dir: str | Path | None = None, progress: bool = False,
              **options) -> Callable[[nn.Module], dict[str, float]]:
    """``evaluate`` with everything but the generator fixed, for evaluation during training.

    The extractor is built and the reference features are cached now, so that each call costs
    only the generated samples' features: ``scores = evaluator(generator)``. Pass the EMA
    generator when there is one. ``options`` are :func:`evaluate`'s (``batch_size``, ``seed``,
    ``reference_size``, ``device``, ``kid_subset_size``, ...).
    """
    metrics = _check_metrics(metrics, reference)
    if reference.kind == "image":
        if extractor is None or isinstance(extractor, str):
            extractor = default_extractor(reference.name, extractor, value_range=value_range, data_root=data_root,
                                          data_split=data_split, cache_dir=cache_dir, progress=progress)
        if {"fid", "kid", "pr"} & set(metrics):
            reference_features(reference, extractor, size=options.get("reference_size"), split=data_split,
                               batch_size=options.get("batch_size", BATCH_SIZE), device=options.get("device"),
                               progress=progress, cache_dir=cache_dir)
    return functools.partial(evaluate, reference=reference, metrics=metrics, extractor=extractor,
                             num_samples=num_samples, value_range=value_range, progress=progress,
                             data_split=data_split, cache_dir=cache_dir, **options)
