"""The methods, each one module: plain functions for any training loop, a trainer component or
optimizer, and its ``Method`` (config section and builder), registered here.

| method | module | config section |
| --- | --- | --- |
| the Adversary's Assistant (AdvAs) | ``advas`` | ``advas`` |
| competitive gradient descent (CGD, ACGD) | ``cgd`` | ``cgd`` |
| the lens of tempered adversarial networks | ``lens`` | ``lens`` |
| variance-regularizing meta-discriminators (VRAL) | ``vral`` | ``vral`` |
| R3GAN: relativistic pairing loss with R1 and R2 | ``r3gan`` | ``r3gan`` |
| StyleGAN2's lazy R1, path-length regularisation, style mixing | ``stylegan2`` | ``stylegan2`` |

A method of your own is registered with ``register(Method(...))`` before the config is read.
"""

from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.methods import advas, cgd, lens, r3gan, stylegan2, vral
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
from equilibria.methods.lens import Lens, LensComponent, LensLoss, lens_lambda, lens_loss
from equilibria.methods.r3gan import relativistic_objective
from equilibria.methods.stylegan2 import StyleGAN2Regularisers, path_length_penalty
from equilibria.methods.vral import (
    LipschitzMeta,
    MetaDiscriminator,
    VarianceMeta,
    lipschitz_slopes,
    meta_adversary_loss,
    meta_discriminator_loss,
    vral_objective,
)
from equilibria.optim import ACGD, CGD

METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry: its section ``method.name`` becomes a config key."""
    if method.name in METHODS and METHODS[method.name] is not method:
        raise ValueError(f"a method named {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


for _module in (advas, cgd, lens, vral, r3gan, stylegan2):
    register(_module.METHOD)

__all__ = [
    "ACGD", "CGD", "AdvAs", "AdvAsGradient", "BuildContext", "Contribution", "Lens", "LensComponent", "LensLoss",
    "LipschitzMeta", "METHODS", "MetaDiscriminator", "Method", "StyleGAN2Regularisers", "VarianceMeta",
    "add_advas_gradient", "advas_gradient", "advas_gradient_unbiased", "advas_lambda", "apply_advas", "lens_lambda",
    "lens_loss", "lipschitz_slopes", "meta_adversary_loss", "meta_discriminator_loss", "path_length_penalty",
    "per_sample_adversary_loss", "register", "relativistic_objective", "vral_objective",
]
