"""Mixed precision: bf16 autocast for the players' forward passes; every method trains and stays finite
in bf16 on CPU, the forward passes run in bf16, and fp32 stays as it was."""

import json
import math

import pytest
import torch

from equilibria.training.build import build_trainer
from equilibria.training.config import ConfigError, load_config
from equilibria.training.run import train

SMALL = ["train.steps=6", "train.batch_size=16", "log.every=2", "log.progress=false", "log.tensorboard=false",
         "log.num_samples=4", "generator.width=8", "discriminator.width=8", "threads=1", "train.precision=bf16"]
RING = ["data.name=ring", "data.num_samples=256", "generator.arch=mlp"]
METHODS = {
    "plain, WGAN-GP": ["objective=wgan", "penalties.gradient_penalty=10"],
    "simultaneous, R1": ["train.update=simultaneous", "penalties.r1=1"],
    "advas": ["objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true", "advas.mode=hvp"],
    "cgd": [*RING, "objective=wgan", "cgd.enabled=true", "cgd.lr=1e-3"],
    "lens": ["lens.enabled=true", "lens.width=4", "lens.blocks=1"],
    "vral": [*RING, "objective=vral", "vral.enabled=true"],
    "r3gan": [*RING, "r3gan.enabled=true"],
}


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains_and_stays_finite_in_bf16(tmp_path, method):
    run = train(load_config(None, SMALL + METHODS[method]), tmp_path)  # a non-finite value would stop it
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(isinstance(v, float) and math.isfinite(v) for r in records for k, v in r.items() if k != "step")


def test_the_forward_passes_run_in_bf16_and_the_penalty_in_fp32():
    trainer = build_trainer(load_config(None, SMALL + METHODS["plain, WGAN-GP"]))
    seen = []
    first = next(m for m in trainer.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    first.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    trainer.train_step()
    # D on the real and the generated batch under autocast; the gradient penalty's D in fp32
    assert torch.bfloat16 in seen and torch.float32 in seen


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="'train.precision': got 'fp8'; allowed: one of fp32, bf16"):
        load_config(None, ["train.precision=fp8"])
