"""Data parallelism with plain torch.distributed, as StyleGAN2-ADA does it.

Every process holds both players whole and trains on its equal share of each global batch; after
each backward pass the gradients are averaged over the processes with one ``all_reduce`` on a
flattened buffer (not DistributedDataParallel: its wrapper does not support ``autograd.grad`` with
``create_graph=True``, which the gradient penalty, R1 and AdvAs need, and one flat reduction per
player is what DDP's buckets would do for these small networks anyway).

Every random draw is made for the global batch on every process, from the same seed, and each
process keeps its share: the latent codes, the data order and the gradient penalty's interpolation
weights are those of a single process training the global batch, so that N processes equal one to
float tolerance (the sum of N shard means is reduced in another order). Layers that couple the
samples of a batch (BatchNorm) see only their share, as under DDP, unless ``synchronise_batchnorm``
makes them use the global batch's statistics.
"""

from __future__ import annotations

import atexit
import datetime
import os
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

# differentiable collectives, in every torch 2.x. Imported here, before any process group exists: the
# module's functions default to ``group=group.WORLD``, evaluated at import, and imported once a group is
# running they would hold it past ``destroy_process_group``, its gloo threads alive into interpreter
# exit, where one that frees a tensor aborts the process (2 of 113 runs of 3 configs on 2 processes)
from torch.distributed.nn.functional import all_gather, all_reduce

from equilibria.randomness import draw


@dataclass(frozen=True)
class DataParallel:
    """This process's place among ``world`` processes (``rank`` 0 writes the run's files); ``device``
    holds the buffers of collectives that take no tensor of the caller's (a GPU under NCCL)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, batch: Tensor) -> Tensor:
        """This process's equal share of a global batch (dimension 0)."""
        if self.world == 1:
            return batch
        if batch.shape[0] % self.world:
            raise ValueError(f"a global batch of {batch.shape[0]} does not split into {self.world} equal parts")
        size = batch.shape[0] // self.world
        return batch[self.rank * size:(self.rank + 1) * size]

    def share(self, n: int) -> slice:
        """This process's contiguous share of ``n`` items, as equal as they come (the first processes
        take one more when ``n`` does not divide); ``concatenate`` puts the shares back in order."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def concatenate(self, tensor: Tensor) -> Tensor:
        """Every process's ``tensor`` (whose lengths may differ), concatenated in the processes' order
        along dimension 0, on every process; not differentiable."""
        if self.world == 1:
            return tensor
        sizes = [torch.zeros((), dtype=torch.long, device=self.device) for _ in range(self.world)]
        dist.all_gather(sizes, torch.tensor(tensor.shape[0], device=self.device))
        longest = max(int(size) for size in sizes)
        padded = tensor.new_zeros((longest, *tensor.shape[1:]), device=self.device)
        padded[:tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:int(size)] for part, size in zip(parts, sizes)]).to(tensor.device)

    def draw(self, sample: Callable[..., Tensor], n: int, *shape: int, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> Tensor:
        """``sample(n * world, *shape)`` for the global batch (from the CPU's stream, see
        ``randomness.draw``), this process's share of it: every process makes the same draws, so the
        random stream is a single process's."""
        return self.part(draw(sample, n * self.world, *shape, device=device, dtype=dtype))

    def average(self, tensors: Sequence[Tensor]) -> None:
        """Replace each tensor by its mean over the processes, with one all_reduce of a flat buffer."""
        if self.world == 1 or not tensors:
            return
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        for tensor, piece in zip(tensors, flat.split([t.numel() for t in tensors])):
            tensor.detach().copy_(piece.view_as(tensor))

    def average_gradients(self, parameters: Sequence[Tensor]) -> None:
        """Average ``.grad`` over the processes (a missing gradient counts as zero)."""
        if self.world == 1:
            return
        for p in parameters:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.average([p.grad for p in parameters])

    def gather(self, batch: Tensor) -> Tensor:
        """The global batch from every process's share (dimension 0), differentiable: the gradient of a
        loss on it reaches each process's share (summed over the processes, which compute the same
        loss; the gradient average then divides by their number)."""
        if self.world == 1:
            return batch
        return torch.cat(all_gather(batch))

    def broadcast(self, value: object) -> object:
        """The first process's ``value``, on every process (a run directory named by the clock)."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """Whether any process says ``flag`` (a stop request), agreed by all."""
        if self.world == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


SINGLE = DataParallel()


def synchronise_batchnorm(module: nn.Module) -> int:
    """Make every BatchNorm layer of ``module`` normalise, in training, by the statistics of the global
    batch: per-channel sums and sums of squares are all-reduced (differentiably, so gradients and
    AdvAs's higher derivatives see the global batch), and the running statistics follow them.
    PyTorch's SyncBatchNorm does this on GPUs only. The layers keep their parameters, buffers and
    state-dict keys; evaluation mode is unchanged. Returns the number of layers changed."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        if layer.momentum is None or not layer.track_running_stats:
            raise ValueError(f"{type(layer).__name__}: momentum None or no running statistics is not supported "
                             "with synchronised statistics")
        layer.forward = types.MethodType(_global_batch_norm, layer)
    return len(layers)


def _global_batch_norm(layer: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    if not layer.training:
        return type(layer).forward(layer, x)
    dims = [0, *range(2, x.dim())]
    channels = x.shape[1]
    local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), x.numel() / channels)])
    total = all_reduce(local)
    count = total[-1]
    mean = total[:channels] / count
    var = total[channels:2 * channels] / count - mean * mean
    with torch.no_grad():
        layer.running_mean.lerp_(mean.detach(), layer.momentum)
        layer.running_var.lerp_((var * count / (count - 1)).detach(), layer.momentum)
        layer.num_batches_tracked += 1
    shape = (1, channels) + (1,) * (x.dim() - 2)
    out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + layer.eps)
    if layer.affine:
        out = out * layer.weight.view(shape) + layer.bias.view(shape)
    return out


def from_environment(device: torch.device, timeout: float = 1800.0) -> DataParallel:
    """The process group torchrun describes (``WORLD_SIZE``, ``RANK``), started if needed: NCCL on
    GPUs (``device`` is this process's GPU, see ``local_device``), gloo on CPU; one process without
    torchrun. A collective that waits longer than ``timeout`` seconds (a process died) raises instead
    of hanging. A group started here is ended before Python exits (``end_process_group``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return SINGLE
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
        atexit.register(end_process_group)
    return DataParallel(dist.get_rank(), dist.get_world_size(), str(device) if device.type == "cuda" else "cpu")


def end_process_group() -> None:
    """End the default process group, if one is running. Left to interpreter exit, gloo's threads are
    torn down unjoined and abort the process ("terminate called without an active exception",
    pytorch/pytorch#190489); torchrun, seeing one process fail, fails the run and kills the others."""
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """``cuda`` without an index is, under torchrun, this process's GPU: ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
