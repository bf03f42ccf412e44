"""The methods: each a plain-function core usable in any loop, and a trainer component."""

from equilibria.methods.advas import (
    AdvAs,
    AdvAsGradient,
    add_advas_gradient,
    advas_gradient,
    advas_gradient_unbiased,
    advas_lambda,
    apply_advas,
    per_sample_adversary_loss,
)

__all__ = [
    "AdvAs",
    "AdvAsGradient",
    "add_advas_gradient",
    "advas_gradient",
    "advas_gradient_unbiased",
    "advas_lambda",
    "apply_advas",
    "per_sample_adversary_loss",
]
