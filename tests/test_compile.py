"""``train.compile``: the players' forward passes compiled with torch.compile give the eager run to
float tolerance, double backward (the gradient penalty, AdvAs's exact r) included, since those paths
stay eager; a joint (CGD) update, which differentiates twice through both networks, is refused."""

import pytest
import torch
from test_run import final_weights, metrics

from equilibria.training.config import ConfigError, load_config
from equilibria.training.run import train

SMALL = ["train.steps=4", "train.batch_size=16", "log.every=2", "log.progress=false", "log.tensorboard=false",
         "log.num_samples=4", "generator.width=8", "discriminator.width=8", "threads=1", "objective=wgan",
         "penalties.gradient_penalty=10", "advas.enabled=true", "advas.mode=exact", "train.ema=0.9",
         # SGD: biases before a normalisation have no gradient but rounding noise, which Adam would
         # scale up to full steps, differently in compiled and eager kernels
         "optim.generator.name=sgd", "optim.adversary.name=sgd", "optim.generator.lr=0.01",
         "optim.adversary.lr=0.01"]


def test_compiled_equals_eager_with_double_backward_paths(tmp_path):
    eager = train(load_config(None, SMALL), tmp_path / "eager")
    torch._dynamo.utils.counters.clear()
    compiled = train(load_config(None, [*SMALL, "train.compile=true"]), tmp_path / "compiled")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # G and D were compiled
    for a, b in zip(metrics(eager), metrics(compiled), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    for wa, wb in zip(final_weights(eager), final_weights(compiled)):
        assert wa.keys() == wb.keys()  # the compiled wrapper adds no prefix to the checkpoint's keys
        for key in wa:
            torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5)


def test_compile_with_a_joint_update_is_refused():
    with pytest.raises(ConfigError, match="'train.compile': got true with train.update=joint.*differentiates twice"):
        load_config(None, ["data.name=ring", "generator.arch=mlp", "objective=wgan", "cgd.enabled=true",
                           "train.compile=true"])
