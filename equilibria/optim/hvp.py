"""Gradients and mixed second derivatives of a scalar f(x, y), as flat vectors, through autograd.

``MixedHessian(f, x_params, y_params)`` takes the gradient of f once with its graph, then gives
products with the mixed Hessians by differentiating the gradient again (reverse over reverse):

    D_xy f w = d/dx (grad_y f . w)   (an x-vector),      D_yx f v = d/dy (grad_x f . v)   (a y-vector).

Reverse over reverse reuses the graph of the one forward pass (so BatchNorm's running statistics
move once per step, as with any optimizer), and measured faster than forward over reverse
(``torch.func.jvp`` over ``torch.func.grad``, which recomputes the forward pass per product):
see docs/CGD.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors' elements in one 1-D vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Views of ``vector`` shaped like ``like`` (the inverse of ``flatten``)."""
    return [piece.view_as(t) for piece, t in zip(vector.split([t.numel() for t in like]), like)]


class MixedHessian:
    """The gradients of ``loss`` and products with its mixed Hessians at the current parameters.

    ``grad_x``/``grad_y`` are the flat gradients (detached); ``products`` counts the Hessian-vector
    products taken. The loss's graph is kept until this object is dropped. ``average`` (data
    parallelism) replaces each gradient and product by its mean over the processes, so that a
    solver built on them runs identically on every process.
    """

    def __init__(self, loss: Tensor, x_params: Sequence[Tensor], y_params: Sequence[Tensor],
                 average: Callable[[Sequence[Tensor]], None] | None = None):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"loss: got {_describe(loss)}; allowed: a scalar tensor")
        if not loss.requires_grad:
            raise ValueError("loss: it does not depend on the parameters (it has no autograd graph)")
        self.x_params, self.y_params = list(x_params), list(y_params)
        try:
            grads = torch.autograd.grad(loss.reshape(()), [*self.x_params, *self.y_params], create_graph=True,
                                        allow_unused=True, materialize_grads=True)
        except RuntimeError as error:
            if "backward through the graph a second time" in str(error):
                raise RuntimeError("loss: its graph was freed, probably by loss.backward(); CGD/ACGD compute "
                                   "the gradients themselves, so pass the loss without calling backward") from None
            raise
        self._grads_x, self._grads_y = grads[: len(self.x_params)], grads[len(self.x_params):]
        self.grad_x = flatten(self._grads_x).detach()
        self.grad_y = flatten(self._grads_y).detach()
        self.average = average
        if average is not None:
            average([self.grad_x, self.grad_y])
        self.products = 0

    def xy(self, w: Tensor) -> Tensor:
        """D_xy f w for a y-vector w: an x-vector."""
        return self._product(self._grads_y, w, self.x_params)

    def yx(self, v: Tensor) -> Tensor:
        """D_yx f v for an x-vector v: a y-vector."""
        return self._product(self._grads_x, v, self.y_params)

    def _product(self, grads: Sequence[Tensor], vector: Tensor, wrt: list[Tensor]) -> Tensor:
        self.products += 1
        # A gradient without a graph (f linear in that parameter, or not using it) is constant:
        # it contributes nothing to the second derivative and cannot be differentiated.
        pairs = [(g, v) for g, v in zip(grads, unflatten(vector, grads)) if g.requires_grad]
        if not pairs:
            return torch.zeros(sum(p.numel() for p in wrt), dtype=vector.dtype, device=vector.device)
        outputs, vectors = zip(*pairs)
        product = flatten(torch.autograd.grad(outputs, wrt, vectors, retain_graph=True, allow_unused=True,
                                              materialize_grads=True))
        if self.average is not None:
            self.average([product])
        return product


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"
