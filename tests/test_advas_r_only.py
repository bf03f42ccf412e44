"""AdvAs Appendix C.3: the bilinear-upsampling generator, and the generator trained on r alone against a
trained or a frozen adversary."""

import copy

import pytest
import torch
from torch import nn

from equilibria.models import build_generator
from equilibria.training.build import build_trainer
from equilibria.training.config import ConfigError, load_config

TINY = ["data.name=digits", "data.image_size=28", "generator.width=8", "discriminator.width=8",
        "train.batch_size=8", "log.progress=false", "log.tensorboard=false"]


def test_the_bilinear_generator_upsamples_bilinearly_with_3x3_convolutions():
    g = build_generator("advas_mnist_bilinear", width=8, out_shape=(1, 28, 28))
    ups = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(u.mode == "bilinear" and u.scale_factor == 2 for u in ups)
    assert not any(isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2) for m in g.modules())
    assert g(torch.randn(3, 128)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("n_adv", [0, 1])
def test_r_only_moves_the_generator_and_a_frozen_adversary_stays_at_its_initialisation(n_adv):
    config = load_config("configs/advas-mnist-r-only.yaml", [*TINY, f"train.n_adv={n_adv}"])
    trainer = build_trainer(config)
    g0, d0 = copy.deepcopy(trainer.generator.state_dict()), copy.deepcopy(trainer.discriminator.state_dict())
    for _ in range(2):
        logs = trainer.train_step()
    assert "advas/r" in logs and float(logs["advas/lambda"]) > 0
    moved = any(not torch.equal(v, trainer.generator.state_dict()[k]) for k, v in g0.items())
    kept = all(torch.equal(v, trainer.discriminator.state_dict()[k]) for k, v in d0.items())
    assert moved and kept == (n_adv == 0)


def test_a_frozen_adversary_needs_alternating_updates():
    with pytest.raises(ConfigError, match=r"'train.n_adv': got 0 with train.update=simultaneous"):
        load_config(None, ["train.n_adv=0", "train.update=simultaneous"])
