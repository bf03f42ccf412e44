"""AutoGAN's autogan_cifar10_a networks: parameter counts, cells, initialisation, and the Section 5.2 configs."""

from pathlib import Path

import torch
import torch.nn.functional as F

from equilibria.experiment import load_experiment
from equilibria.models import build_discriminator, build_generator, init_weights
from equilibria.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_parameter_counts_equal_the_published_architecture():
    # the layer list of the official models/autogan_cifar10_a.py at gf_dim 256, df_dim 128, latent 128
    g, d, z = 256, 128, 128
    cell = 2 * conv(g, g, 3)
    generator = (z * 16 * g + 16 * g  # l1
                 + cell + conv(g, g, 1)  # cell 1: shortcut
                 + cell + conv(g, g, 1) + conv(g, g, 1)  # cell 2: shortcut, one skip
                 + cell + 2 * conv(g, g, 1)  # cell 3: two skips
                 + 2 * g + conv(g, 3, 3))  # BatchNorm, to RGB
    discriminator = (conv(3, d, 3) + conv(d, d, 3) + conv(3, d, 1)  # optimised block
                     + 2 * conv(d, d, 3) + conv(d, d, 1)  # downsampling block
                     + 2 * 2 * conv(d, d, 3)  # two blocks with identity shortcuts
                     + d)  # the last Linear, no bias
    built_g = build_generator("autogan", out_shape=(3, 32, 32))
    built_d = build_discriminator("autogan", in_shape=(3, 32, 32))
    assert sum(p.numel() for p in built_g.parameters()) == generator == 4_405_251
    assert sum(p.numel() for p in built_d.parameters()) == discriminator == 1_053_824
    assert built_g.latent_dim == 128 and built_g(torch.randn(2, 128)).shape == (2, 3, 32, 32)
    assert built_d(torch.randn(2, 3, 32, 32)).shape == (2,)


def test_cells_pass_on_c1_with_the_skips_added_as_the_official_code():
    torch.manual_seed(0)
    g = build_generator("autogan", width=8, latent_dim=4, out_shape=(3, 32, 32)).double()
    z = torch.randn(2, 4, dtype=torch.float64)
    x = g.l1(z).view(-1, 8, 4, 4)
    c1 = g.cell1
    h1 = c1.c1(F.interpolate(F.relu(x), scale_factor=2, mode="nearest"))
    x1 = c1.c2(F.relu(h1)) + c1.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))
    c2 = g.cell2
    h2 = c2.c1(F.interpolate(F.relu(x1), scale_factor=2, mode="bilinear"))
    h2 = h2 + c2.skips[0](F.interpolate(h1, size=(16, 16), mode="bilinear"))  # added in place there
    x2 = c2.c2(F.relu(h2)) + c2.c_sc(F.interpolate(x1, scale_factor=2, mode="bilinear"))
    c3 = g.cell3
    h3 = c3.c1(F.interpolate(F.relu(x2), scale_factor=2, mode="nearest"))
    h3 = h3 + c3.skips[0](F.interpolate(h1, size=(32, 32), mode="nearest"))
    h3 = h3 + c3.skips[1](F.interpolate(h2, size=(32, 32), mode="nearest"))
    x3 = c3.c2(F.relu(h3))  # no shortcut
    torch.testing.assert_close(g(z), g.to_rgb(x3))


def test_the_autogan_initialisation():
    torch.manual_seed(0)
    g = build_generator("autogan", out_shape=(3, 32, 32))
    init_weights(g, "autogan")
    weight = g.cell1.c1.weight.detach()
    bound = (6 / (2 * 256 * 9)) ** 0.5  # Xavier uniform: sqrt(6 / (fan_in + fan_out))
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
    bn = g.to_rgb[0].requires_grad_(False)
    assert abs(float(bn.weight.mean()) - 1) < 0.01 and 0.015 < float(bn.weight.std()) < 0.025
    assert float(bn.bias.abs().max()) == 0.0
    linear = g.l1.weight.detach()  # PyTorch's own: uniform within 1 / sqrt(fan_in)
    assert linear.abs().max() <= 128 ** -0.5


def test_configs_follow_the_official_training_script():
    # exps/autogan_cifar10_a.sh and functions.py of VITA-Group/AutoGAN
    for name in ("baseline", "advas"):
        c = load_config(ROOT / "configs" / f"advas-autogan-cifar10-{name}.yaml")
        assert (c.objective, c.train.n_adv, c.train.ema, c.train.steps) == ("hinge", 5, 0.999, 50000)
        assert (c.generator.width, c.generator.latent_dim, c.discriminator.width) == (256, 128, 128)
        assert c.discriminator.spectral_norm and c.generator.init == c.discriminator.init == "autogan"
        for player in (c.optim.generator, c.optim.adversary):
            assert (player.name, player.lr, tuple(player.betas), player.decay) == ("adam", 2e-4, (0.0, 0.9), "linear")
        assert (c.eval.num_samples, c.eval.metrics) == (50000, "fid,is")
    assert load_config(ROOT / "configs" / "advas-autogan-cifar10-advas.yaml").advas.lam == 0.01
    experiment = load_experiment(ROOT / "experiments" / "advas-autogan-cifar10.yaml")
    n_adv = {name: load_config(g.config, g.overrides).train.n_adv for name, g in experiment.groups.items()}
    assert n_adv == {"baseline-nadv1": 1, "baseline-nadv2": 2, "baseline-nadv5": 5, "advas-nadv1": 1,
                     "advas-nadv2": 2, "advas-nadv5": 5}

