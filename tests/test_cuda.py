"""On a CUDA GPU (``pytest -m cuda``; skipped without one): each method's run on the GPU equals the
CPU run to float tolerance (TF32 off, so that both compute in fp32), and runs in bf16, in fp16 and
compiled train and stay finite. ``benchmarks/gpu.py`` runs these before timing the methods."""

import math

import pytest
import torch
from test_run import final_weights, metrics

from equilibria.training.config import load_config
from equilibria.training.run import train

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]

COMMON = ["train.steps=6", "train.batch_size=32", "log.every=2", "log.checkpoint_every=6", "log.progress=false",
          "log.tensorboard=false", "log.num_samples=4", "train.ema=0.9",
          # SGD: a parameter whose gradient is rounding noise (a bias before a normalisation) would take
          # full Adam steps, differently on each device
          "optim.generator.name=sgd", "optim.adversary.name=sgd", "optim.generator.lr=0.01",
          "optim.adversary.lr=0.01"]
RING = ["data.name=ring", "data.num_samples=1024", "generator.arch=mlp", "generator.width=16",
        "discriminator.width=16"]
IMAGES = ["generator.width=8", "discriminator.width=8"]
METHODS = {
    "alternating": [*IMAGES, "objective=wgan", "penalties.gradient_penalty=10", "train.n_adv=2"],
    "simultaneous": [*IMAGES, "train.update=simultaneous", "penalties.r1=1.0"],
    "advas-exact": [*IMAGES, "objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true",
                    "advas.mode=exact"],
    "advas-hvp": [*IMAGES, "objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true",
                  "advas.mode=hvp"],
    "acgd": [*RING, "objective=wgan", "penalties.gradient_penalty=10", "cgd.enabled=true", "cgd.lr=1e-3"],
    "lens": [*IMAGES, "lens.enabled=true", "lens.width=4", "lens.blocks=1"],
    "vral": [*RING, "objective=vral", "vral.enabled=true"],
    "r3gan": [*RING, "r3gan.enabled=true"],
}


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("method", list(METHODS))
def test_cuda_equals_cpu(tmp_path, method):
    cpu = train(load_config(None, COMMON + METHODS[method] + ["device=cpu"]), tmp_path / "cpu")
    gpu = train(load_config(None, COMMON + METHODS[method] + ["device=cuda"]), tmp_path / "cuda")
    for a, b in zip(metrics(cpu), metrics(gpu), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), (key, a["step"])
    for wa, wb in zip(final_weights(cpu), final_weights(gpu)):
        for key in wa:
            torch.testing.assert_close(wb[key].cpu(), wa[key], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("variant", [["train.precision=bf16"], ["train.precision=fp16"], ["train.compile=true"],
                                     ["train.channels_last=true", "train.precision=bf16"]],
                         ids=["bf16", "fp16", "compiled", "channels_last-bf16"])
@pytest.mark.parametrize("method", ["alternating", "advas-hvp", "lens"])
def test_cuda_variants_train_and_stay_finite(tmp_path, method, variant):
    run = train(load_config(None, COMMON + METHODS[method] + ["device=cuda", *variant]), tmp_path)
    records = metrics(run)  # a non-finite value would have stopped the run
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(math.isfinite(v) for r in records for v in r.values())
