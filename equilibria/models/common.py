"""Building blocks shared by the architecture families: the generator container and argument checks."""

from collections import OrderedDict
from numbers import Integral

from torch import nn


class Generator(nn.Sequential):
    """Named blocks, one per row of the paper's table, mapping z (N, latent_dim) to (N, *out_shape).

    ``output_range`` is the interval the last activation maps into ((-1, 1) for tanh, (0, 1) for
    sigmoid), or None when the output layer is linear.
    """

    def __init__(
        self,
        blocks: "OrderedDict[str, nn.Module]",
        *,
        latent_dim: int,
        out_shape: tuple[int, ...],
        output_range: tuple[float, float] | None,
    ) -> None:
        super().__init__(blocks)
        self.latent_dim = latent_dim
        self.out_shape = out_shape
        self.output_range = output_range


def score_head(in_features: int) -> nn.Sequential:
    """Flatten, Linear to one unit, and drop the unit axis: raw scores of shape (N,), no sigmoid."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, 1), nn.Flatten(0))


def check_positive(option: str, value: int, multiple_of: int = 1) -> int:
    """Return ``value`` if it is a positive integer divisible by ``multiple_of``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0 or value % multiple_of:
        allowed = "a positive integer" + (f" divisible by {multiple_of}" if multiple_of > 1 else "")
        raise ValueError(f"{option}: invalid value {value!r}; allowed: {allowed}")
    return int(value)


def check_shape(role: str, arch: str, shape: tuple[int, ...], pattern: tuple[int | None, ...]) -> tuple[int, ...]:
    """Return ``shape`` as a tuple if it matches ``pattern`` (None = any positive size), else raise ValueError.

    ``role`` is "generator" (checking its output shape) or "discriminator" (its input shape).
    """
    fits = isinstance(shape, (tuple, list)) and len(shape) == len(pattern) and all(
        isinstance(s, Integral) and s > 0 and p in (None, s) for s, p in zip(shape, pattern)
    )
    if not fits:
        names = ("d",) if len(pattern) == 1 else ("C", "H", "W")
        sizes = ", ".join(name if p is None else str(p) for name, p in zip(names, pattern))
        wanted = f"({sizes},)" if len(pattern) == 1 else f"({sizes})"
        side = "output" if role == "generator" else "input"
        raise ValueError(
            f"{role}.arch: architecture {arch!r} does not support the {side} shape {shape!r}; allowed: {wanted}"
        )
    return tuple(int(s) for s in shape)
