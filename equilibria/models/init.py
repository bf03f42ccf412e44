"""Weight initialisation schemes.

* ``default``: PyTorch's own initialisation of every layer (``reset_parameters``).
* ``dcgan``: Radford et al.'s DCGAN scheme: convolution, transposed-convolution and linear
  weights N(0, 0.02); normalisation-layer scales N(1, 0.02); all biases 0.
* ``xavier``: Glorot & Bengio's uniform initialisation of convolution, transposed-convolution and
  linear weights, biases 0, as in the lens paper (tempered-adversarial-networks-lens, Sec. A.2);
  normalisation layers keep PyTorch's (scale 1, shift 0).
* ``autogan``: AutoGAN's official ``train_derived.py``: Xavier-uniform convolution weights, everything
  else PyTorch's (convolution biases included), BatchNorm scales N(1, 0.02) and shifts 0.

Every scheme re-initialises all parameters (and resets normalisation running statistics), so the
result does not depend on what the module held before.
"""

from torch import nn

INIT_SCHEMES: tuple[str, ...] = ("default", "dcgan", "xavier", "autogan")

_WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)
_WEIGHT_INIT = {
    "dcgan": lambda weight: nn.init.normal_(weight, 0.0, 0.02),
    "xavier": nn.init.xavier_uniform_,
}


def init_weights(module: nn.Module, scheme: str) -> None:
    """Initialise every layer of ``module`` in place with ``scheme``, one of INIT_SCHEMES."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init: unknown scheme {scheme!r}; allowed: {', '.join(INIT_SCHEMES)}")
    for layer in module.modules():
        if scheme in _WEIGHT_INIT and isinstance(layer, _WEIGHTED):
            _WEIGHT_INIT[scheme](layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
            if scheme == "autogan" and isinstance(layer, nn.Conv2d):
                nn.init.xavier_uniform_(layer.weight)
            if scheme in ("dcgan", "autogan") and isinstance(layer, _NORMS) and layer.weight is not None:
                nn.init.normal_(layer.weight, 1.0, 0.02)
