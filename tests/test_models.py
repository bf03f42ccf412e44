"""Tests of equilibria.models against the papers' architecture tables."""

import math

import pytest
import torch
from torch import nn

from equilibria.models import ARCHITECTURES, build_discriminator, build_generator, init_weights

# Data shape each architecture is tested on, and a second shape it must also accept.
SHAPES = {
    "mlp": [(2,), (5,)],
    "dcgan8": [(1, 8, 8), (3, 8, 8)],
    "advas_mnist": [(1, 28, 28)],
    "advas_mnist_bilinear": [(1, 28, 28)],
    "icr_mnist": [(1, 28, 28)],
    "dcgan32": [(3, 32, 32), (1, 32, 32)],
    "dcgan64": [(3, 64, 64)],
    "stylegan2": [(3, 16, 16), (1, 8, 8)],
    "autogan": [(3, 32, 32), (1, 32, 32)],
}
# Latent sizes from the papers (mlp and dcgan8 have none; see their module docstrings).
PAPER_LATENT = {"mlp": 16, "dcgan8": 32, "advas_mnist": 128, "advas_mnist_bilinear": 128, "icr_mnist": 96,
                "dcgan32": 128, "dcgan64": 128, "stylegan2": 512, "autogan": 128}

# The tables, one row per top-level block: (layers, kernel, stride, output shape per sample).
# Layer names as in the papers; "IN" is InstanceNorm. A discriminator's final "Linear 1" row is a
# score per sample: the block returns shape (N,), written () here.
ICR_TABLE_1 = [
    ("Linear, BN, ReLU", None, None, (1024,)),
    ("Linear, BN, ReLU", None, None, (128, 7, 7)),
    ("ConvT2d, BN, ReLU", 4, 2, (64, 14, 14)),
    ("ConvT2d, Tanh", 4, 2, (1, 28, 28)),
]
ICR_TABLE_2 = [
    ("Conv2d, LeakyReLU", 5, 1, (32, 24, 24)),
    ("MaxPool", 2, 2, (32, 12, 12)),
    ("Conv2d, LeakyReLU", 5, 1, (64, 8, 8)),
    ("MaxPool", 2, 2, (64, 4, 4)),
    ("Linear, LeakyReLU", None, None, (1024,)),
    ("Linear", None, None, ()),
]
ICR_TABLE_4 = [
    ("Linear, BN, ReLU", None, None, (256, 4, 4)),
    ("ConvT2d, BN, ReLU", 4, 2, (128, 8, 8)),
    ("ConvT2d, BN, ReLU", 4, 2, (64, 16, 16)),
    ("ConvT2d, Tanh", 4, 2, (3, 32, 32)),
]
ICR_TABLE_5 = [
    ("Conv2d, LeakyReLU", 4, 2, (64, 16, 16)),
    ("Conv2d, LeakyReLU", 4, 2, (128, 8, 8)),
    ("Conv2d, LeakyReLU", 4, 2, (256, 4, 4)),
    ("Linear", None, None, ()),
]
# AdvAs Appendix E.1 in prose; kernels and strides are our documented choices.
ADVAS_G = [
    ("Linear, ReLU", None, None, (64, 7, 7)),
    ("ConvT2d, IN, ReLU", 4, 2, (32, 14, 14)),
    ("ConvT2d, IN, ReLU", 4, 2, (16, 28, 28)),
    ("ConvT2d, Sigmoid", 3, 1, (1, 28, 28)),
]
ADVAS_D = [
    ("Conv2d, IN, ReLU", 4, 2, (64, 14, 14)),
    ("Conv2d, IN, ReLU", 4, 2, (128, 7, 7)),
    ("Conv2d, IN, ReLU", 4, 2, (256, 3, 3)),
    ("Linear", None, None, ()),
]
DCGAN8_G = [
    ("Linear, BN, ReLU", None, None, (64, 2, 2)),
    ("ConvT2d, BN, ReLU", 4, 2, (32, 4, 4)),
    ("ConvT2d, Tanh", 4, 2, (1, 8, 8)),
]
DCGAN8_D = [
    ("Conv2d, LeakyReLU", 4, 2, (32, 4, 4)),
    ("Conv2d, LeakyReLU", 4, 2, (64, 2, 2)),
    ("Linear", None, None, ()),
]
MLP_G = [("Linear, ReLU", None, None, (128,))] * 3 + [("Linear", None, None, (2,))]
MLP_D = [("Linear, LeakyReLU", None, None, (128,))] * 3 + [("Linear", None, None, ())]

TABLES = {
    "icr_mnist": (ICR_TABLE_1, ICR_TABLE_2, (1, 28, 28)),
    "dcgan32": (ICR_TABLE_4, ICR_TABLE_5, (3, 32, 32)),
    "advas_mnist": (ADVAS_G, ADVAS_D, (1, 28, 28)),
    "dcgan8": (DCGAN8_G, DCGAN8_D, (1, 8, 8)),
    "mlp": (MLP_G, MLP_D, (2,)),
}

LAYER_NAMES = {
    nn.Linear: "Linear",
    nn.BatchNorm1d: "BN",
    nn.BatchNorm2d: "BN",
    nn.InstanceNorm2d: "IN",
    nn.ReLU: "ReLU",
    nn.LeakyReLU: "LeakyReLU",
    nn.Tanh: "Tanh",
    nn.Sigmoid: "Sigmoid",
    nn.Conv2d: "Conv2d",
    nn.ConvTranspose2d: "ConvT2d",
    nn.MaxPool2d: "MaxPool",
}


def layer_names(block: nn.Module) -> str:
    """The block's layers in the papers' notation, ignoring reshapes."""
    leaves = [m for m in block.modules() if not list(m.children())]
    return ", ".join(LAYER_NAMES[type(m)] for m in leaves if not isinstance(m, (nn.Flatten, nn.Unflatten)))


def block_output_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    hooks = [
        block.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
        for block in net.children()
    ]
    net(x)
    for hook in hooks:
        hook.remove()
    return shapes


def check_table(net: nn.Module, x: torch.Tensor, table: list) -> None:
    blocks = list(net.children())
    assert len(blocks) == len(table)
    assert block_output_shapes(net, x) == [row[3] for row in table]
    for block, (names, kernel, stride, _) in zip(blocks, table):
        assert layer_names(block) == names
        spatial = [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d))]
        if kernel is None:
            assert not spatial
        else:
            (layer,) = spatial
            assert layer.kernel_size in (kernel, (kernel, kernel))
            assert layer.stride in (stride, (stride, stride))


@pytest.mark.parametrize("arch", TABLES)  # stylegan2 has no table: tests/test_stylegan2.py
def test_layers_match_table(arch):
    g_table, d_table, shape = TABLES[arch]
    torch.manual_seed(0)
    generator = build_generator(arch, out_shape=shape)
    discriminator = build_discriminator(arch, in_shape=shape)
    check_table(generator, torch.randn(4, generator.latent_dim), g_table)
    check_table(discriminator, torch.randn(4, *shape), d_table)


def test_leaky_relu_slope_is_0_2():
    for arch, (_, _, shape) in TABLES.items():
        modules = build_discriminator(arch, in_shape=shape).modules()
        slopes = {m.negative_slope for m in modules if isinstance(m, nn.LeakyReLU)}
        assert slopes in (set(), {0.2}), arch


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("width", [None, 8])
def test_output_shapes_and_ranges(arch, width):
    torch.manual_seed(0)
    for shape in SHAPES[arch]:
        generator = build_generator(arch, width=width, out_shape=shape)
        discriminator = build_discriminator(arch, width=width, in_shape=shape)
        assert generator.latent_dim == PAPER_LATENT[arch]
        fake = generator(torch.randn(5, generator.latent_dim))
        assert fake.shape == (5, *shape)
        if generator.output_range is not None:
            low, high = generator.output_range
            assert low <= fake.min().item() and fake.max().item() <= high
        assert discriminator(fake).shape == (5,)
        assert discriminator(torch.randn(1, *shape)).shape == (1,)


def test_output_ranges():
    ranges = {arch: build_generator(arch, out_shape=SHAPES[arch][0]).output_range for arch in ARCHITECTURES}
    assert ranges == {
        "mlp": None,
        "dcgan8": (-1.0, 1.0),
        "advas_mnist": (0.0, 1.0),
        "advas_mnist_bilinear": (0.0, 1.0),
        "icr_mnist": (-1.0, 1.0),
        "dcgan32": (-1.0, 1.0),
        "dcgan64": (-1.0, 1.0),
        "stylegan2": None,
        "autogan": (-1.0, 1.0),
    }


def test_latent_dim_override():
    generator = build_generator("dcgan32", latent_dim=7, out_shape=(3, 32, 32))
    assert generator.latent_dim == 7
    assert generator(torch.randn(2, 7)).shape == (2, 3, 32, 32)


def test_width_scales_channels():
    # icr_mnist with width 32 halves every count of Tables 1 and 2.
    generator = build_generator("icr_mnist", width=32, out_shape=(1, 28, 28))
    assert block_output_shapes(generator, torch.randn(2, 96)) == [(512,), (64, 7, 7), (32, 14, 14), (1, 28, 28)]
    discriminator = build_discriminator("icr_mnist", width=32, in_shape=(1, 28, 28))
    assert block_output_shapes(discriminator, torch.randn(2, 1, 28, 28)) == [
        (16, 24, 24), (16, 12, 12), (32, 8, 8), (32, 4, 4), (512,), ()
    ]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_by_hand():
    icr_g = build_generator("icr_mnist", out_shape=(1, 28, 28))
    # Linear 1024 -> 128*7*7 = 6272 (weights + biases), then BatchNorm1d(6272) (scale + shift).
    assert n_params(icr_g.fc2) == 1024 * 6272 + 6272 + 2 * 6272
    icr_d = build_discriminator("icr_mnist", in_shape=(1, 28, 28))
    assert n_params(icr_d.conv2) == 32 * 64 * 5 * 5 + 64
    dcgan_d = build_discriminator("dcgan32", in_shape=(3, 32, 32))
    assert n_params(dcgan_d.conv1) == 3 * 64 * 4 * 4 + 64
    assert n_params(dcgan_d.score) == 256 * 4 * 4 + 1
    advas_d = build_discriminator("advas_mnist", in_shape=(1, 28, 28))
    assert n_params(advas_d.score) == 256 * 3 * 3 + 1
    mlp_g = build_generator("mlp", out_shape=(2,))
    assert n_params(mlp_g) == (16 * 128 + 128) + 2 * (128 * 128 + 128) + (128 * 2 + 2)


def test_advas_uses_instance_norm():
    generator = build_generator("advas_mnist", out_shape=(1, 28, 28))
    discriminator = build_discriminator("advas_mnist", in_shape=(1, 28, 28))
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in generator.modules()) == 2
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in discriminator.modules()) == 3
    norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    assert not any(isinstance(m, norms) for m in [*generator.modules(), *discriminator.modules()])


@pytest.mark.parametrize("arch", ["mlp", "dcgan8", "dcgan32"])
def test_gradient_penalty_discriminators_have_no_batchnorm(arch):
    discriminator = build_discriminator(arch, in_shape=SHAPES[arch][0])
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())


def test_unknown_architecture():
    with pytest.raises(ValueError) as error:
        build_generator("dcgan128", out_shape=(3, 128, 128))
    assert str(error.value) == ("generator.arch: unknown architecture 'dcgan128'; allowed: mlp, dcgan8, "
                                "advas_mnist, advas_mnist_bilinear, icr_mnist, dcgan32, dcgan64, stylegan2, autogan")
    with pytest.raises(ValueError, match=r"^discriminator\.arch: unknown architecture 'resnet'"):
        build_discriminator("resnet", in_shape=(3, 32, 32))


@pytest.mark.parametrize(
    ("arch", "shape", "allowed"),
    [
        ("advas_mnist", (1, 32, 32), "(1, 28, 28)"),
        ("advas_mnist", (3, 28, 28), "(1, 28, 28)"),
        ("icr_mnist", (28, 28), "(1, 28, 28)"),
        ("dcgan32", (3, 28, 28), "(C, 32, 32)"),
        ("dcgan8", (1, 28, 28), "(C, 8, 8)"),
        ("mlp", (1, 8, 8), "(d,)"),
        ("mlp", (0,), "(d,)"),
    ],
)
def test_unsupported_shapes(arch, shape, allowed):
    with pytest.raises(ValueError) as error:
        build_generator(arch, out_shape=shape)
    assert str(error.value) == (
        f"generator.arch: architecture '{arch}' does not support the output shape {shape}; allowed: {allowed}"
    )
    with pytest.raises(ValueError) as error:
        build_discriminator(arch, in_shape=shape)
    assert str(error.value) == (
        f"discriminator.arch: architecture '{arch}' does not support the input shape {shape}; allowed: {allowed}"
    )


def test_invalid_sizes():
    with pytest.raises(ValueError, match=r"^generator\.width: invalid value 0; allowed: a positive integer$"):
        build_generator("dcgan32", width=0, out_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=r"^generator\.latent_dim: invalid value -1"):
        build_generator("mlp", latent_dim=-1, out_shape=(2,))
    with pytest.raises(ValueError, match=r"^generator\.width: invalid value 6; allowed: .* divisible by 4$"):
        build_generator("advas_mnist", width=6, out_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"^discriminator\.width: invalid value 3; allowed: .* divisible by 2$"):
        build_discriminator("icr_mnist", width=3, in_shape=(1, 28, 28))


def test_init_dcgan_statistics():
    torch.manual_seed(0)
    discriminator = build_discriminator("dcgan32", in_shape=(3, 32, 32))
    init_weights(discriminator, "dcgan")
    weight = discriminator.conv3[0].weight  # 256 x 128 x 4 x 4 = 524288 values
    assert abs(weight.std().item() - 0.02) < 0.0005
    assert abs(weight.mean().item()) < 0.0005
    for layer in discriminator.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            assert torch.count_nonzero(layer.bias) == 0
    generator = build_generator("dcgan32", out_shape=(3, 32, 32))
    generator(torch.randn(8, 128))  # moves the BatchNorm running statistics away from 0 / 1
    init_weights(generator, "dcgan")
    norm = generator.fc[1]  # BatchNorm1d(4096)
    assert abs(norm.weight.mean().item() - 1.0) < 0.002
    assert abs(norm.weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(norm.bias) == 0
    assert torch.count_nonzero(norm.running_mean) == 0
    assert torch.equal(norm.running_var, torch.ones(4096))


def test_init_xavier_statistics():
    torch.manual_seed(0)
    generator = build_generator("icr_mnist", out_shape=(1, 28, 28))
    init_weights(generator, "xavier")
    weight = generator.fc2[0].weight  # Linear 1024 -> 6272
    bound = math.sqrt(6 / (1024 + 6272))  # Glorot & Bengio's uniform bound
    assert weight.abs().max().item() <= bound
    assert abs(weight.std().item() - bound / math.sqrt(3)) < 0.01 * bound
    assert torch.count_nonzero(generator.fc2[0].bias) == 0
    assert torch.equal(generator.fc2[1].weight, torch.ones(6272))  # BatchNorm keeps scale 1


def test_init_default_restores_pytorch_initialisation():
    torch.manual_seed(0)
    generator = build_generator("icr_mnist", out_shape=(1, 28, 28))
    init_weights(generator, "dcgan")
    init_weights(generator, "default")
    weight = generator.fc2[0].weight
    bound = 1 / math.sqrt(1024)  # PyTorch's Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert weight.abs().max().item() <= bound
    assert abs(weight.std().item() - bound / math.sqrt(3)) < 0.01 * bound
    assert torch.equal(generator.fc2[1].weight, torch.ones(6272))


def test_init_unknown_scheme():
    with pytest.raises(ValueError, match=r"^init: unknown scheme 'he'; allowed: default, dcgan, xavier, autogan$"):
        init_weights(nn.Linear(2, 2), "he")
