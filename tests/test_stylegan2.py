"""StyleGAN2: shapes, style mixing, the path-length penalty against finite differences, the lazy
regularisers' weights and intervals, AdvAs's two modes through its discriminator, and training."""

import math
from types import SimpleNamespace

import pytest
import torch

from equilibria.core.components import GeneratorStep
from equilibria.core.objectives import get_objective
from equilibria.core.parallel import SINGLE
from equilibria.core.penalties import r1_penalty
from equilibria.methods.advas import advas_gradient
from equilibria.methods.stylegan2 import StyleGAN2Regularisers, path_length_penalty
from equilibria.models import build_discriminator, build_generator
from equilibria.models.stylegan2 import Discriminator, minibatch_std
from equilibria.training.config import ConfigError, load_config

NONSATURATING = get_objective("nonsaturating")


def tiny(resolution=8, width=4, latent_dim=5, channels=1, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    shape = (channels, resolution, resolution)
    g = build_generator("stylegan2", width=width, latent_dim=latent_dim, out_shape=shape).to(dtype)
    d = build_discriminator("stylegan2", width=width, in_shape=shape).to(dtype)
    return g, d


@pytest.mark.parametrize("resolution, num_ws", [(32, 8), (64, 10)])
def test_shapes_at_32_and_64(resolution, num_ws):
    g, d = tiny(resolution, width=8, latent_dim=16, channels=3, dtype=torch.float32)
    images = g(torch.randn(4, 16))
    assert images.shape == (4, 3, resolution, resolution) and g.num_ws == num_ws == 2 * math.log2(resolution) - 2
    assert d(images).shape == (4,)
    with pytest.raises(ValueError, match=r"'stylegan2' does not support the shape \(3, 48, 48\); allowed: \(C, R, R\)"):
        build_generator("stylegan2", width=8, out_shape=(3, 48, 48))


def test_paper_widths_give_config_f_channels():
    g = build_generator("stylegan2", out_shape=(3, 64, 64))
    assert {m.weight.shape[0] for m in g.modules() if type(m).__name__ == "ModulatedConv2d" and m.weight.shape[0] > 3} \
        == {512}  # config F: 512 channels at every resolution up to 64
    assert len(g.mapping.net) == 8 and g.latent_dim == 512


def test_style_mixing_takes_the_second_codes_w_from_the_cutoff_on():
    g, _ = tiny()
    g.style_mixing = 1.0
    z = torch.randn(3, 5, dtype=torch.float64)
    torch.manual_seed(7)
    ws = g.mapping_ws(z)
    torch.manual_seed(7)  # the same draws, by hand: the cutoff, the coin, the second code
    cutoff = 1 + int(torch.rand(1).item() * (g.num_ws - 1))
    torch.rand(1)
    w2 = g.mapping(torch.randn(3, 5, dtype=torch.float64))
    w1 = g.mapping(z)
    assert 1 <= cutoff < g.num_ws
    torch.testing.assert_close(ws[:, :cutoff], w1[:, None].expand(-1, cutoff, -1))
    torch.testing.assert_close(ws[:, cutoff:], w2[:, None].expand(-1, g.num_ws - cutoff, -1))
    g.eval()  # no mixing and no draws in eval mode
    state = torch.get_rng_state()
    torch.testing.assert_close(g.mapping_ws(z), w1[:, None].expand(-1, g.num_ws, -1))
    assert torch.equal(torch.get_rng_state(), state)


def test_each_block_reads_only_its_own_ws():
    g, _ = tiny(resolution=16)
    g.eval()
    ws = g.mapping_ws(torch.randn(2, 5, dtype=torch.float64)).detach().requires_grad_(True)
    x = image = None
    index = 0
    for block in g.blocks:  # 4 x 4 reads ws 0-1, 8 x 8 ws 1-3, 16 x 16 ws 3-5
        x, image = block(x, image, ws[:, index:index + block.num_layers + 1])
        (grad,) = torch.autograd.grad(image.sum(), ws, retain_graph=True)
        used = (grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
        assert used == list(range(0, index + block.num_layers + 1))
        index += block.num_layers
    assert index + 1 == g.num_ws


def test_path_length_penalty_matches_finite_differences():
    g, _ = tiny()
    g.eval()  # fixed noise inputs, no mixing: the images are a function of the ws alone
    z = torch.randn(2, 5, dtype=torch.float64)
    torch.manual_seed(3)
    penalty, mean = path_length_penalty(g, z, pl_mean=0.5, decay=0.1)
    ws = g.mapping_ws(z).detach()
    images = g.synthesis(ws)
    torch.manual_seed(3)
    y = torch.randn(images.shape, dtype=torch.float64) / math.sqrt(8 * 8)

    def f(w):
        with torch.no_grad():
            return float((g.synthesis(w) * y).sum())

    h, lengths = 1e-6, []
    for i in range(2):
        squares = []
        for j in range(g.num_ws):
            grad = []
            for k in range(ws.shape[2]):
                plus, minus = ws.clone(), ws.clone()
                plus[i, j, k] += h
                minus[i, j, k] -= h
                grad.append((f(plus) - f(minus)) / (2 * h))
            squares.append(sum(v * v for v in grad))
        lengths.append(math.sqrt(sum(squares) / g.num_ws))
    a = 0.5 + 0.1 * (sum(lengths) / 2 - 0.5)
    torch.testing.assert_close(penalty, torch.tensor([(v - a) ** 2 for v in lengths], dtype=torch.float64),
                               rtol=1e-6, atol=1e-10)
    assert float(mean) == pytest.approx(a, rel=1e-6)


def test_path_length_penalty_takes_any_generator_with_mapping_ws_and_synthesis():
    g, _ = tiny()
    g.eval()
    z = torch.randn(3, 5, dtype=torch.float64)
    bare = SimpleNamespace(mapping_ws=g.mapping_ws, synthesis=g.synthesis)  # another library's, no draw_batch
    torch.manual_seed(4)
    ours = path_length_penalty(g, z, pl_mean=0.5)
    torch.manual_seed(4)
    theirs = path_length_penalty(bare, z, pl_mean=0.5)
    torch.testing.assert_close(theirs, ours)


def trainer_at(step, g, d):
    return SimpleNamespace(step=step, generator=g, discriminator=d, parallel=SINGLE,
                           noise=lambda n: torch.randn(n, g.latent_dim, dtype=torch.float64))


def test_lazy_r1_every_interval_weighted_by_it():
    g, d = tiny()
    component = StyleGAN2Regularisers(r1_gamma=3.0, r1_interval=4, pl_weight=0.0, pl_interval=4, pl_decay=0.01,
                                      pl_batch_shrink=2)
    real = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    assert component.adversary_terms(trainer_at(5, g, d), real, None, None, None) == {}
    term = component.adversary_terms(trainer_at(8, g, d), real, None, None, None)["r1_lazy"].detach()
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x)
    assert float(term) == pytest.approx(3.0 * 4 * 0.5 * float(grad.pow(2).sum() / 4))
    assert float(term) == pytest.approx(12 * float(r1_penalty(d, real).detach()))


def test_lazy_path_length_adds_its_gradient_every_interval():
    g, d = tiny()
    component = StyleGAN2Regularisers(r1_gamma=0.0, r1_interval=16, pl_weight=2.0, pl_interval=4, pl_decay=0.01,
                                      pl_batch_shrink=2)
    params = list(g.parameters())
    step = GeneratorStep(torch.zeros(4, 5), None, None, None)
    for p in params:
        p.grad = torch.ones_like(p)
    assert component.adjust_generator_gradient(trainer_at(3, g, d), step) == {}
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in params)
    torch.manual_seed(11)
    logs = component.adjust_generator_gradient(trainer_at(4, g, d), step)
    torch.manual_seed(11)
    z = torch.randn(2, 5, dtype=torch.float64)  # the batch of 4 shrunk by 2
    penalty, mean = path_length_penalty(g, z, 0.0, 0.01)
    expected = torch.autograd.grad(2.0 * 4 * penalty.mean(), params, allow_unused=True)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.grad, 1 + (torch.zeros_like(p) if e is None else e))
    assert logs["stylegan2/pl_mean"] == pytest.approx(float(mean)) == component.pl_mean
    assert component.state_dict() == {"pl_mean": component.pl_mean}


def test_minibatch_std_groups_samples_i_and_i_plus_n_over_g():
    x = torch.arange(4 * 2 * 1 * 1, dtype=torch.float64).reshape(4, 2, 1, 1)
    out = minibatch_std(x, group_size=2)  # groups {0, 2} and {1, 3}
    assert out.shape == (4, 3, 1, 1)
    group0 = x[[0, 2]].std(dim=0, unbiased=False).mean()
    group1 = x[[1, 3]].std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(out[:, 2, 0, 0], torch.stack([group0, group1, group0, group1]), atol=1e-6, rtol=0)
    assert minibatch_std(torch.randn(3, 2, 4, 4), group_size=4).shape == (3, 3, 4, 4)  # a group of 3


def test_the_mbstd_group_option_decides_which_samples_a_score_depends_on():
    from equilibria.training.build import build_trainer

    overrides = ["generator.arch=stylegan2", "discriminator.arch=stylegan2", "generator.width=4",
                 "discriminator.width=4", "generator.latent_dim=8", "stylegan2.enabled=true", "train.batch_size=8"]
    x = torch.randn(8, 1, 8, 8)
    changed = x.clone()
    changed[2] += 1.0  # sample 2 shares a group of 4 with samples 0, 4 and 6 (i, i + N/G, ...)
    for group, untouched in ((4, [1, 3, 5, 7]), (1, [0, 1, 3, 4, 5, 6, 7])):
        d = build_trainer(load_config(None, [*overrides, f"stylegan2.mbstd_group={group}"])).discriminator
        with torch.no_grad():
            before, after = d(x), d(changed)
        torch.testing.assert_close(after[untouched], before[untouched])
        assert (after != before).sum() == 8 - len(untouched)


def test_a_discriminator_built_directly_refuses_an_mbstd_group_below_one():
    with pytest.raises(ValueError, match="mbstd_group: invalid value 0; allowed: a positive integer"):
        Discriminator(width=4, in_shape=(1, 8, 8), mbstd_group=0)
    d = Discriminator(width=4, in_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="mbstd_group: invalid value -1"):
        d.mbstd_group = -1  # as the config's builder sets it, after construction
    assert d.mbstd_group == 4


def test_advas_exact_and_hvp_agree_through_the_discriminator_with_r1():
    g, d = tiny()
    g.eval()
    real, z = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)

    def loss(x):
        return NONSATURATING.adversary_loss(d(real), d(x)) + 0.5 * r1_penalty(d, real)

    results = {mode: advas_gradient(loss, g(z), g, d, mode=mode) for mode in ("exact", "hvp")}
    exact = torch.cat([t.flatten() for t in results["exact"].gradient])
    hvp = torch.cat([t.flatten() for t in results["hvp"].gradient])
    assert float((exact - hvp).norm() / exact.norm()) < 1e-5
    torch.testing.assert_close(results["exact"].r, results["hvp"].r)


def test_the_method_needs_the_architecture_and_trains_with_advas_and_ema(tmp_path):
    from equilibria.training.run import train

    with pytest.raises(ConfigError, match=r"'stylegan2.enabled': got true with generator.arch=dcgan8; allowed: "
                                          r"generator.arch=stylegan2"):
        load_config(None, ["stylegan2.enabled=true"])
    config = load_config(None, ["generator.arch=stylegan2", "discriminator.arch=stylegan2", "generator.width=4",
                                "discriminator.width=4", "generator.latent_dim=8", "stylegan2.enabled=true",
                                "stylegan2.r1_interval=2", "stylegan2.pl_interval=2", "stylegan2.r1_gamma=0.1",
                                "advas.enabled=true", "train.ema=0.9", "train.steps=2", "train.batch_size=8",
                                "log.every=1", "log.progress=false", "log.tensorboard=false", "threads=1"])
    run = train(config, tmp_path / "run")
    text = (run / "metrics.jsonl").read_text()
    assert '"adv/r1_lazy"' in text and '"stylegan2/pl_mean"' in text and '"advas/lambda"' in text
    state = torch.load(run / "checkpoints" / "step-00000002.pt", weights_only=True)["trainer"]
    ema, raw = state["ema"], state["generator"]
    weight = "mapping.net.0.weight"  # after two steps of 0.9: between the initial and the trained weights
    assert not torch.equal(ema[weight], raw[weight]) and set(ema) == set(raw)

