"""Autodiff helpers for methods that differentiate a GAN loss more than once or at perturbed points.

- ``CompositeNorms``: batch, instance and layer normalisation computed from elementwise
  operations. PyTorch's fused kernels give silently wrong third derivatives (torch 2.13;
  ``gradgradcheck`` fails); these differentiate correctly to any order.
- ``FrozenKinks``: records the branch each piecewise-linear function (ReLU, leaky ReLU, hardtanh,
  max pooling) takes, then replays it as a linear map, so that a finite difference across a kink
  measures the smooth part only.
- ``RandomState`` and ``Buffers``: the random state and a module's buffers at construction, to
  evaluate a loss several times from the same draws and the same BatchNorm statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode


class RandomState:
    """The random state at construction, to start every evaluation of L_adv from the same draws."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class Buffers:
    """The discriminator's buffers (BatchNorm statistics, spectral-norm vectors) at construction."""

    def __init__(self, module: nn.Module):
        self.pairs = [(b, b.clone()) for b in module.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        for buffer, saved in self.pairs:
            buffer.copy_(saved)


# -- normalisation layers that differentiate correctly to any order --------------------------------
def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out


@torch.no_grad()
def _update_running(running_mean: Tensor | None, running_var: Tensor | None, mean: Tensor, var: Tensor,
                    count: int, momentum: float) -> None:
    """What the native kernels do: exponential averages of the mean and the unbiased variance."""
    if running_mean is not None:
        running_mean.lerp_(mean.to(running_mean.dtype), momentum)
    if running_var is not None:
        running_var.lerp_((var * count / max(count - 1, 1)).to(running_var.dtype), momentum)


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    if not training and running_mean is not None:  # affine in the input: the native kernel is exact
        return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    dims = (0, *range(2, input.dim()))
    mean, var = input.mean(dims, keepdim=True), input.var(dims, unbiased=False, keepdim=True)
    if training:
        _update_running(running_mean, running_var, mean.flatten(), var.flatten(), input.numel() // input.shape[1],
                        momentum)
    shape = (1, -1) + (1,) * (input.dim() - 2)
    return _affine((input - mean) * torch.rsqrt(var + eps), weight, bias, shape)


def _instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                   weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                   momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    if not use_input_stats:
        return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
    dims = tuple(range(2, input.dim()))
    mean, var = input.mean(dims, keepdim=True), input.var(dims, unbiased=False, keepdim=True)
    count = math.prod(input.shape[2:])
    _update_running(running_mean, running_var, mean.flatten(1).mean(0), var.flatten(1).mean(0), count, momentum)
    shape = (1, -1) + (1,) * len(dims)
    return _affine((input - mean) * torch.rsqrt(var + eps), weight, bias, shape)


def _layer_norm(input: Tensor, normalized_shape: list[int] | tuple[int, ...], weight: Tensor | None = None,
                bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    dims = tuple(range(-len(normalized_shape), 0))
    mean, var = input.mean(dims, keepdim=True), input.var(dims, unbiased=False, keepdim=True)
    out = (input - mean) * torch.rsqrt(var + eps)
    return _affine(out, weight, bias, tuple(normalized_shape))


_COMPOSITE_NORMS = {F.batch_norm: _batch_norm, F.instance_norm: _instance_norm, F.layer_norm: _layer_norm}


class CompositeNorms(TorchFunctionMode):
    """Batch, instance and layer normalisation from elementwise operations (third derivatives right)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return _COMPOSITE_NORMS.get(func, func)(*args, **(kwargs or {}))


# -- piecewise-linear functions on recorded branches -----------------------------------------------
_RELUS = (F.relu, torch.relu, Tensor.relu)
_POOLS = (F.max_pool1d, F.max_pool2d, F.max_pool3d)


class FrozenKinks(TorchFunctionMode):
    """Records the branch each piecewise-linear function takes, then replays it as a linear map.

    ``recording()``: native results, branches stored in call order. ``replaying()``: relu(x) =
    x * mask, leaky_relu(x) = where(mask, x, slope x), hardtanh(x) = where(mask, x, recorded bound),
    max pooling gathers the recorded argmax positions. L_adv must call them in the same order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.branches: list[tuple[torch.Size, tuple[Tensor, ...]]] = []
        self.record = True
        self.position = 0

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.branches, self.record = [], True
        with self:
            yield

    @contextmanager
    def replaying(self) -> Iterator[None]:
        self.record, self.position = False, 0
        with self:
            yield
        if self.position != len(self.branches):
            raise RuntimeError(f"advas.mode=hvp: L_adv evaluated {self.position} piecewise-linear functions at the "
                               f"perturbed point but {len(self.branches)} at phi; it must run the same operations")

    def _store(self, x: Tensor, *tensors: Tensor) -> None:
        self.branches.append((x.shape, tensors))

    def _branch(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.position >= len(self.branches):
            raise RuntimeError("advas.mode=hvp: L_adv evaluated more piecewise-linear functions at the perturbed "
                               "point than at phi; it must run the same operations")
        shape, tensors = self.branches[self.position]
        self.position += 1
        if shape != x.shape:
            raise RuntimeError(f"advas.mode=hvp: a piecewise-linear function saw shape {tuple(x.shape)} at the "
                               f"perturbed point but {tuple(shape)} at phi")
        return tensors

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELUS:
            return self._relu(func, args, kwargs)
        if func is F.leaky_relu:
            return self._leaky_relu(func, args, kwargs)
        if func is F.hardtanh:
            return self._hardtanh(func, args, kwargs)
        if func in _POOLS:
            return self._max_pool(func, args, kwargs)
        return func(*args, **kwargs)

    def _relu(self, func, args, kwargs):
        x = args[0]
        if self.record:
            out = func(*args, **kwargs)
            self._store(x, out > 0)
            return out
        (mask,) = self._branch(x)
        return x * mask

    def _leaky_relu(self, func, args, kwargs):
        x = args[0]
        slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
        if self.record:
            self._store(x, x > 0)
            return func(*args, **kwargs)
        (mask,) = self._branch(x)
        return torch.where(mask, x, x * slope)

    def _hardtanh(self, func, args, kwargs):
        x = args[0]
        low = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        high = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
        if self.record:
            self._store(x, (x > low) & (x < high), x >= high)
            return func(*args, **kwargs)
        inside, above = self._branch(x)
        return torch.where(inside, x, torch.full_like(x, low).masked_fill(above, high))

    def _max_pool(self, func, args, kwargs):
        x, rest = args[0], list(args[1:])
        wants_indices = kwargs.pop("return_indices", rest.pop(5) if len(rest) > 5 else False)
        if self.record:
            out, indices = func(x, *rest, return_indices=True, **kwargs)
            self._store(x, indices)
        else:
            (indices,) = self._branch(x)
            dims = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3}[func]
            out = x.flatten(-dims).gather(-1, indices.flatten(-dims)).view(indices.shape)
        return (out, indices) if wants_indices else out
