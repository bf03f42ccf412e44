"""Feature extractors and batched feature extraction.

A feature extractor is anything callable ``images (N, C, H, W) -> features (N, dim)`` with a
``name`` (which names the network, its weights and its preprocessing: cache keys use it) and a
``dim``. One that classifies also gives ``features_and_logits``. The FID Inception
(:class:`InceptionFeatures`) and the dataset classifiers implement this protocol.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from tqdm import tqdm

from equilibria.metrics.inception import (FEATURE_DIM, NUM_CLASSES, RESIZE_MODES, FIDInceptionV3, InceptionOutput,
                                          preprocess)
from equilibria.metrics.weights import load_fid_inception


@runtime_checkable
class FeatureExtractor(Protocol):
    """Images (N, C, H, W) -> features (N, dim). ``name`` identifies network, weights and preprocessing."""

    name: str
    dim: int

    def __call__(self, images: Tensor) -> Tensor: ...


@runtime_checkable
class ClassifierExtractor(FeatureExtractor, Protocol):
    """A feature extractor that also classifies: logits (N, num_classes) from the same forward pass."""

    num_classes: int

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]: ...


def weights_fingerprint(module: nn.Module) -> str:
    """First 8 hex digits of the sha256 of a module's state dict (names, shapes and values)."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(f"{key}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:8]


class InceptionFeatures(nn.Module):
    """The FID Inception with its preprocessing, as a :class:`ClassifierExtractor`.

    Takes uint8 images, or float images in ``value_range``, with 1 or 3 channels; gives the
    2048-d pool_3 features, and as logits the unbiased 1008-way logits the Inception Score uses
    (:class:`~equilibria.metrics.inception.InceptionOutput`). ``name`` holds the weights'
    fingerprint and the resize convention, e.g. ``inception-v3-fid-1a2b3c4d-tensorflow``.
    """

    dim = FEATURE_DIM
    num_classes = NUM_CLASSES

    def __init__(self, network: FIDInceptionV3, value_range: tuple[float, float] = (-1.0, 1.0),
                 resize: str = "tensorflow") -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize: unknown mode {resize!r}; allowed: {', '.join(RESIZE_MODES)}")
        self.network = network
        self.value_range = value_range
        self.resize = resize
        self.name = f"inception-v3-fid-{weights_fingerprint(network)}-{resize}"
        self.eval()

    def _run(self, images: Tensor) -> InceptionOutput:
        float_range = None if images.dtype == torch.uint8 else self.value_range
        return self.network(preprocess(images, float_range, self.resize))

    def forward(self, images: Tensor) -> Tensor:
        return self._run(images).features

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        output = self._run(images)
        return output.features, output.logits_unbiased


def fid_inception(path: str | os.PathLike | None = None, download: bool = False,
                  value_range: tuple[float, float] = (-1.0, 1.0), resize: str = "tensorflow") -> InceptionFeatures:
    """The FID Inception extractor with the weights found (or downloaded) by ``load_fid_inception``."""
    return InceptionFeatures(load_fid_inception(path, download), value_range, resize)


def _batches(images: Tensor | Iterable[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Chunks of at most ``batch_size`` images from a tensor or from an iterable of batches."""
    for batch in ([images] if isinstance(images, Tensor) else images):
        if not isinstance(batch, Tensor) or batch.dim() != 4:
            shape = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise ValueError(f"images: each batch must be a tensor (N, C, H, W); got {shape}")
        yield from batch.split(batch_size)


def extract_features(extractor: FeatureExtractor, images: Tensor | Iterable[Tensor], batch_size: int = 16,
                     device: str | torch.device | None = None, progress: bool = True,
                     logits: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Features (N, extractor.dim), float32 on the CPU, of images (N, C, H, W) or an iterable of batches.

    Runs in chunks of ``batch_size`` under ``torch.inference_mode``; a module extractor is put in
    eval mode (each submodule's mode is restored afterwards) and, if ``device`` is given, moved there. With
    ``logits=True`` (a :class:`ClassifierExtractor`) returns ``(features, logits)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: got {batch_size}; allowed: an integer >= 1")
    if logits and not isinstance(extractor, ClassifierExtractor):
        raise TypeError(f"logits=True: extractor {getattr(extractor, 'name', extractor)!r} has no "
                        "features_and_logits")
    modes = {}
    if isinstance(extractor, nn.Module):
        modes = {module: module.training for module in extractor.modules()}
        extractor.eval()
        if device is not None:
            extractor.to(device)
        elif (parameter := next(extractor.parameters(), None)) is not None:
            device = parameter.device
    total = images.shape[0] if isinstance(images, Tensor) else None
    features, all_logits = [], []
    try:
        with torch.inference_mode(), tqdm(total=total, unit="img", desc=f"features {extractor.name}",
                                          leave=False, disable=not progress) as bar:
            for batch in _batches(images, batch_size):
                batch = batch.to(device) if device is not None else batch
                if logits:
                    out, out_logits = extractor.features_and_logits(batch)
                    all_logits.append(out_logits.float().cpu())
                else:
                    out = extractor(batch)
                if out.shape != (batch.shape[0], extractor.dim):
                    raise ValueError(f"extractor {extractor.name!r} gave features of shape {tuple(out.shape)}; "
                                     f"expected ({batch.shape[0]}, {extractor.dim})")
                features.append(out.float().cpu())
                bar.update(batch.shape[0])
    finally:
        for module, training in modes.items():
            module.training = training
    if not features:
        raise ValueError("images: got no images")
    result = torch.cat(features)
    return (result, torch.cat(all_logits)) if logits else result
