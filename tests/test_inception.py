"""The FID Inception: architecture against a hand-written spec of the weights file, strict loading,
checked downloads, preprocessing against hand-computed values, and batched feature extraction."""

import copy
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from equilibria.data.download import DownloadError
from equilibria.metrics.features import (ClassifierExtractor, FeatureExtractor, InceptionFeatures, extract_features,
                                         weights_fingerprint)
from equilibria.metrics.inception import FIDInceptionV3, preprocess, resize_bilinear
from equilibria.metrics.weights import (FID_WEIGHTS_NAME, FID_WEIGHTS_SHA256, FID_WEIGHTS_URLS, download_fid_weights,
                                        fid_weights_path,
                                        load_fid_inception)

# ---------------------------------------------------------------------------------------------
# The weights file's convolutions, written out from the Inception-v3 architecture (Szegedy et al.
# 2016, torchvision's module names): name -> (in channels, out channels, kernel h, kernel w).


def _block_a(name, cin, pool):
    return {f"{name}.branch1x1": (cin, 64, 1, 1), f"{name}.branch5x5_1": (cin, 48, 1, 1),
            f"{name}.branch5x5_2": (48, 64, 5, 5), f"{name}.branch3x3dbl_1": (cin, 64, 1, 1),
            f"{name}.branch3x3dbl_2": (64, 96, 3, 3), f"{name}.branch3x3dbl_3": (96, 96, 3, 3),
            f"{name}.branch_pool": (cin, pool, 1, 1)}


def _block_c(name, c7):
    return {f"{name}.branch1x1": (768, 192, 1, 1), f"{name}.branch7x7_1": (768, c7, 1, 1),
            f"{name}.branch7x7_2": (c7, c7, 1, 7), f"{name}.branch7x7_3": (c7, 192, 7, 1),
            f"{name}.branch7x7dbl_1": (768, c7, 1, 1), f"{name}.branch7x7dbl_2": (c7, c7, 7, 1),
            f"{name}.branch7x7dbl_3": (c7, c7, 1, 7), f"{name}.branch7x7dbl_4": (c7, c7, 7, 1),
            f"{name}.branch7x7dbl_5": (c7, 192, 1, 7), f"{name}.branch_pool": (768, 192, 1, 1)}


def _block_e(name, cin):
    return {f"{name}.branch1x1": (cin, 320, 1, 1), f"{name}.branch3x3_1": (cin, 384, 1, 1),
            f"{name}.branch3x3_2a": (384, 384, 1, 3), f"{name}.branch3x3_2b": (384, 384, 3, 1),
            f"{name}.branch3x3dbl_1": (cin, 448, 1, 1), f"{name}.branch3x3dbl_2": (448, 384, 3, 3),
            f"{name}.branch3x3dbl_3a": (384, 384, 1, 3), f"{name}.branch3x3dbl_3b": (384, 384, 3, 1),
            f"{name}.branch_pool": (cin, 192, 1, 1)}


CONVS = {
    "Conv2d_1a_3x3": (3, 32, 3, 3), "Conv2d_2a_3x3": (32, 32, 3, 3), "Conv2d_2b_3x3": (32, 64, 3, 3),
    "Conv2d_3b_1x1": (64, 80, 1, 1), "Conv2d_4a_3x3": (80, 192, 3, 3),
    **_block_a("Mixed_5b", 192, 32), **_block_a("Mixed_5c", 256, 64), **_block_a("Mixed_5d", 288, 64),
    "Mixed_6a.branch3x3": (288, 384, 3, 3), "Mixed_6a.branch3x3dbl_1": (288, 64, 1, 1),
    "Mixed_6a.branch3x3dbl_2": (64, 96, 3, 3), "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3),
    **_block_c("Mixed_6b", 128), **_block_c("Mixed_6c", 160), **_block_c("Mixed_6d", 160),
    **_block_c("Mixed_6e", 192),
    "Mixed_7a.branch3x3_1": (768, 192, 1, 1), "Mixed_7a.branch3x3_2": (192, 320, 3, 3),
    "Mixed_7a.branch7x7x3_1": (768, 192, 1, 1), "Mixed_7a.branch7x7x3_2": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_3": (192, 192, 7, 1), "Mixed_7a.branch7x7x3_4": (192, 192, 3, 3),
    **_block_e("Mixed_7b", 1280), **_block_e("Mixed_7c", 2048),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The full network at 299 x 299 is slow on 2 threads when the other core is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def network():
    """A randomly initialised FID Inception, with random BatchNorm statistics so that loading shows."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def weights_file(network, tmp_path_factory):
    """The network's state dict in the weights-file format (a torch.save'd state dict)."""
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


def test_state_dict_names_and_shapes_match_the_weights_file_layout(network):
    state = network.state_dict()
    expected = {"fc.weight": (1008, 2048), "fc.bias": (1008,)}
    for name, (cin, cout, kh, kw) in CONVS.items():
        expected[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for buffer in ("weight", "bias", "running_mean", "running_var"):
            expected[f"{name}.bn.{buffer}"] = (cout,)
        expected[f"{name}.bn.num_batches_tracked"] = ()
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert all(m.eps == 0.001 for m in network.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(m.bias is not None for m in network.modules() if isinstance(m, nn.Conv2d))


def test_parameter_count_is_the_fid_inceptions():
    """From the spec, and from torchvision's published count of its ImageNet Inception-v3
    (27,161,264 with the auxiliary head and a 1000-way fc), minus the auxiliary head
    (1x1 conv 768->128 + BN, 5x5 conv 128->768 + BN, fc 768->1000), plus 8 more classes."""
    from_spec = sum(cin * cout * kh * kw + 2 * cout for cin, cout, kh, kw in CONVS.values()) + 2048 * 1008 + 1008
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    from_torchvision = 27_161_264 - aux + 8 * (2048 + 1)
    assert from_spec == from_torchvision == 23_850_960
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == from_spec


def _identity_bn_sum(conv_bn):
    """Make a ConvBN output the sum over its input channels (all-ones kernel, BN the identity)."""
    nn.init.ones_(conv_bn.conv.weight)
    conv_bn.bn.weight.data.fill_(1.0)
    conv_bn.bn.bias.data.zero_()
    conv_bn.bn.running_mean.zero_()
    conv_bn.bn.running_var.fill_(1.0 - conv_bn.bn.eps)


def test_pooling_branches_are_the_tf_graphs(network):
    """A, C, E blocks average without the zero padding; the last E block max-pools."""
    block_a = copy.deepcopy(network.Mixed_5b)
    _identity_bn_sum(block_a.branch_pool)
    with torch.no_grad():
        pooled = block_a(torch.ones(1, 192, 5, 5))[:, 64 + 64 + 96:]
    # count_include_pad=True would give 192 * 4/9 in the corners.
    torch.testing.assert_close(pooled, torch.full((1, 32, 5, 5), 192.0))

    block_c = copy.deepcopy(network.Mixed_6b)
    _identity_bn_sum(block_c.branch_pool)
    with torch.no_grad():
        pooled = block_c(torch.ones(1, 768, 4, 4))[:, 3 * 192:]
    torch.testing.assert_close(pooled, torch.full((1, 192, 4, 4), 768.0))

    spike = torch.zeros(1, 2048, 5, 5)
    spike[0, :, 2, 2] = 1.0
    around = torch.zeros(5, 5)
    around[1:4, 1:4] = 1.0
    for block, cin, value in ((network.Mixed_7b, 1280, 1280 / 9), (network.Mixed_7c, 2048, 2048.0)):
        block = copy.deepcopy(block)
        _identity_bn_sum(block.branch_pool)
        with torch.no_grad():
            pooled = block(spike[:, :cin])[:, -192:]
        torch.testing.assert_close(pooled, (value * around).expand(1, 192, 5, 5), rtol=1e-5, atol=1e-4)


def test_strict_load_every_weight_and_pooled_features(network, weights_file):
    loaded = load_fid_inception(weights_file)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    original = network.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    extractor = InceptionFeatures(loaded)
    assert extractor.name == f"inception-v3-fid-{weights_fingerprint(network)}-tensorflow"
    assert isinstance(extractor, ClassifierExtractor) and extractor.dim == 2048
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    features, logits = extract_features(extractor, images, batch_size=2, progress=False, logits=True)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and (features >= 0).all()  # averages of ReLU outputs
    loaded.channels_last = False  # the plain layout gives the same numbers up to round-off
    with torch.inference_mode():
        direct = loaded(preprocess(images))
    torch.testing.assert_close(features, direct.features, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, direct.logits_unbiased, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(direct.logits - direct.logits_unbiased, loaded.fc.bias.expand(2, -1))
    torch.testing.assert_close(direct.logits_unbiased, direct.features @ loaded.fc.weight.T)


def test_missing_extra_or_misshapen_weights_are_refused(network, tmp_path):
    state = network.state_dict()
    missing = {k: v for k, v in state.items() if k != "Mixed_6c.branch7x7_2.conv.weight"}
    extra = {**state, "AuxLogits.fc.weight": torch.zeros(1000, 768)}
    misshapen = {**state, "fc.weight": torch.zeros(1000, 2048)}
    cases = ((missing, "Missing key(s)", "Mixed_6c.branch7x7_2.conv.weight"),
             (extra, "Unexpected key(s)", "AuxLogits.fc.weight"), (misshapen, "size mismatch", "fc.weight"))
    for bad, problem, key in cases:
        path = tmp_path / "bad.pth"
        torch.save(bad, path)
        with pytest.raises(ValueError, match="not the FID Inception's weights") as error:
            load_fid_inception(path)
        assert problem in str(error.value) and key in str(error.value)
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        load_fid_inception(tmp_path / "tensor.pth")


def test_state_dict_without_batch_counters_loads(network, tmp_path):
    """A file converted from TF (plain dict, no num_batches_tracked, no metadata) loads strictly."""
    plain = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(plain, tmp_path / "plain.pth")
    loaded = load_fid_inception(tmp_path / "plain.pth")
    torch.testing.assert_close(loaded.Mixed_7c.branch_pool.bn.running_var, network.Mixed_7c.branch_pool.bn.running_var)


def test_weights_path_order_and_absent_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("EQUILIBRIA_FID_WEIGHTS", raising=False)
    monkeypatch.setenv("EQUILIBRIA_CACHE", str(tmp_path / "cache"))
    assert fid_weights_path() == tmp_path / "cache" / FID_WEIGHTS_NAME
    monkeypatch.setenv("EQUILIBRIA_FID_WEIGHTS", str(tmp_path / "env.pth"))
    assert fid_weights_path() == tmp_path / "env.pth"
    assert fid_weights_path(tmp_path / "arg.pth") == tmp_path / "arg.pth"
    with pytest.raises(FileNotFoundError) as error:
        load_fid_inception()
    message = str(error.value)
    assert str(tmp_path / "env.pth") in message and "EQUILIBRIA_FID_WEIGHTS" in message
    assert "download=True" in message and FID_WEIGHTS_URLS[0] in message
    assert FID_WEIGHTS_URLS[0] == ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                                   "pt_inception-2015-12-05-6726825d.pth")


# ---------------------------------------------------------------------------------------------
# Downloads from a local server


def _named_by_hash(content: bytes) -> str:
    return f"fake-weights-{hashlib.sha256(content).hexdigest()[:8]}.pth"


def test_the_published_digest_matches_the_name():
    assert FID_WEIGHTS_SHA256.startswith("6726825d") and "-6726825d." in FID_WEIGHTS_NAME


def test_download_checks_the_whole_sha256(served, tmp_path):
    www, base = served
    content = b"fake FID weights " * 1000
    name = _named_by_hash(content)
    (www / name).write_bytes(content)
    dest = tmp_path / "cache" / name
    got = download_fid_weights(dest, [f"{base}/missing/{name}", f"{base}/{name}"],
                               sha256=hashlib.sha256(content).hexdigest(), timeout=10, progress=False)
    assert got == dest and dest.read_bytes() == content
    assert sorted(p.name for p in dest.parent.iterdir()) == [name]


def test_download_refuses_a_file_whose_digest_only_starts_right(served, tmp_path):
    """The old check compared the 8 hex digits of the name; the whole digest must match now."""
    www, base = served
    content = b"fake FID weights " * 1000
    name = _named_by_hash(content)
    (www / name).write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    other = digest[:8] + ("0" if digest[8] != "0" else "1") + digest[9:]
    with pytest.raises(DownloadError, match=f"expected sha256 {other}"):
        download_fid_weights(tmp_path / "cache" / name, [f"{base}/{name}"], sha256=other, timeout=10,
                             progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_refuses_a_corrupted_file_and_leaves_nothing(served, tmp_path):
    www, base = served
    content = b"fake FID weights " * 1000
    name = _named_by_hash(content)
    corrupted = content[:-1] + b"!"
    (www / name).write_bytes(corrupted)
    dest = tmp_path / "cache" / name
    expected = hashlib.sha256(content).hexdigest()
    with pytest.raises(DownloadError, match=f"expected sha256 {expected}") as error:
        download_fid_weights(dest, [f"{base}/{name}"], sha256=expected, timeout=10, progress=False)
    assert hashlib.sha256(corrupted).hexdigest() in str(error.value)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(ValueError, match="sha256: got '1234'; allowed: the 64 hex digits"):
        download_fid_weights(tmp_path / "cache" / "weights.pth", [f"{base}/{name}"], sha256="1234", progress=False)


def test_load_downloads_when_absent(served, tmp_path, weights_file):
    www, base = served
    name = f"random-inception-{hashlib.sha256(weights_file.read_bytes()).hexdigest()[:8]}.pth"
    (www / name).symlink_to(weights_file)
    dest = tmp_path / "cache" / name
    loaded = load_fid_inception(dest, download=True, urls=[f"{base}/{name}"],
                                sha256=hashlib.sha256(weights_file.read_bytes()).hexdigest(), progress=False)
    assert dest.read_bytes() == weights_file.read_bytes()
    torch.testing.assert_close(loaded.fc.weight, torch.load(weights_file, weights_only=True)["fc.weight"])


# ---------------------------------------------------------------------------------------------
# Preprocessing


@pytest.mark.parametrize("resize", ["tensorflow", "pytorch"])
def test_constant_image_maps_to_its_normalised_level(resize):
    # 0.5 in [-1, 1] -> 0.75 * 255 = 191.25 -> 191 -> (191 - 128) / 128
    images = torch.full((2, 3, 7, 13), 0.5)
    out = preprocess(images, (-1, 1), resize)
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    # TF1's lerp a + (b - a) w is exact on constants; F.interpolate's w0 a + w1 b is exact up to rounding.
    torch.testing.assert_close(out, torch.full_like(out, 63 / 128), rtol=0, atol=0 if resize == "tensorflow" else 1e-6)


def test_uint8_levels_round_like_png():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    from_uint8 = preprocess(levels, resize="pytorch")
    from_float = preprocess(levels.double() / 255, (0, 1), resize="pytorch")
    assert torch.equal(from_uint8, from_float)
    # 299 is not a multiple of 16, so sample fixed pixels of a 299 x 299 constant instead:
    def level(value, value_range=(0, 255)):
        return preprocess(torch.full((1, 1, 4, 4), value), value_range)[0, 0, 0, 0].item()
    assert level(0.0) == -1.0 and level(255.0) == 127 / 128 and level(128.0) == 0.0
    assert level(127.5) == 0.0 and level(127.49) == -1 / 128  # halves round up
    assert level(300.0) == 127 / 128 and level(-5.0) == -1.0 and level(float("nan")) == -1.0
    assert level(-1.0, (-1, 1)) == -1.0 and level(1.0, (-1, 1)) == 127 / 128


def test_grey_is_repeated_to_rgb():
    grey = torch.rand(2, 1, 9, 9) * 2 - 1
    out = preprocess(grey, (-1, 1))
    assert torch.equal(out, preprocess(grey.expand(-1, 3, -1, -1), (-1, 1)))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])


def test_tensorflow_resize_samples_at_i_times_in_over_out():
    """TF1 ResizeBilinear(align_corners=False): a 2-pixel ramp 0 -> 200 becomes 200 * min(2 j / 299, 1)."""
    ramp = torch.tensor([[[[0, 200], [0, 200]]]], dtype=torch.uint8)
    out = preprocess(ramp, resize="tensorflow")[0, 0]
    j = np.arange(299)
    expected = (200 * np.minimum(2 * j / 299, 1.0) - 128) / 128
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(expected, (299, 299)), atol=1e-5)


def test_pytorch_resize_has_half_pixel_centres_like_pil():
    ramp = torch.tensor([[[[0, 200], [0, 200]]]], dtype=torch.uint8)
    out = preprocess(ramp, resize="pytorch")[0, 0]
    j = np.arange(299)
    expected = (200 * np.clip((j + 0.5) * 2 / 299 - 0.5, 0.0, 1.0) - 128) / 128
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(expected, (299, 299)), atol=1e-5)
    # PIL's bilinear upscaling (no antialiasing when enlarging) as an independent reference.
    image = np.random.default_rng(0).integers(0, 256, (28, 20)).astype(np.float32)
    pil = np.asarray(Image.fromarray(image).resize((299, 299), Image.BILINEAR))
    ours = resize_bilinear(torch.from_numpy(image)[None, None], 299, "pytorch")[0, 0].numpy()
    np.testing.assert_allclose(ours, pil, atol=1e-3)


def test_resize_keeps_299_images_unchanged():
    images = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    for mode in ("tensorflow", "pytorch"):
        assert torch.equal(preprocess(images, resize=mode), (images.float() - 128) / 128)


@pytest.mark.parametrize("images, kwargs, message", [
    (torch.zeros(1, 4, 8, 8), {"value_range": (0, 1)}, "C = 1 or 3"),
    (torch.zeros(3, 8, 8), {"value_range": (0, 1)}, r"\(N, C, H, W\)"),
    (torch.zeros(0, 3, 8, 8), {"value_range": (0, 1)}, "N >= 1"),
    (torch.zeros(1, 3, 8, 8), {}, "float images need value_range"),
    (torch.zeros(1, 3, 8, 8), {"value_range": (1, -1)}, "low < high"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int32), {}, "dtype torch.int32"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), {"value_range": (-1, 1)}, "uint8 images"),
    (torch.zeros(1, 3, 8, 8), {"value_range": (0, 1), "resize": "bicubic"}, "unknown resize 'bicubic'"),
])
def test_preprocess_rejects_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        preprocess(images, **kwargs)


def test_network_rejects_unprocessed_input(network):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) with H, W >= 75"):
        network(torch.zeros(1, 1, 28, 28))


# ---------------------------------------------------------------------------------------------
# Batched extraction with any extractor


class ChannelMeans(nn.Module):
    """A tiny extractor: per-channel means; records the conditions it was called under."""

    name = "channel-means"
    dim = 3

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, images):
        self.calls.append((images.shape[0], self.training, torch.is_inference_mode_enabled()))
        return images.float().mean(dim=(2, 3)) * self.scale


def test_extract_features_batches_in_eval_and_inference_mode():
    extractor = ChannelMeans().train()
    assert isinstance(extractor, FeatureExtractor) and not isinstance(extractor, ClassifierExtractor)
    images = torch.rand(10, 3, 4, 4)
    features = extract_features(extractor, images, batch_size=4, progress=False)
    torch.testing.assert_close(features, images.mean(dim=(2, 3)))
    assert extractor.calls == [(4, False, True), (4, False, True), (2, False, True)]
    assert extractor.training  # restored
    wrapper = nn.Sequential(extractor).train()
    extractor.eval()  # mixed modes are restored module by module
    wrapper.name, wrapper.dim = extractor.name, extractor.dim
    extract_features(wrapper, images, progress=False)
    assert wrapper.training and not extractor.training
    extractor.calls.clear()
    batches = [images[:3], images[3:]]
    torch.testing.assert_close(extract_features(extractor, iter(batches), batch_size=5, progress=False), features)
    assert [n for n, _, _ in extractor.calls] == [3, 5, 2]


def test_extract_features_rejects_bad_input():
    extractor = ChannelMeans()
    with pytest.raises(ValueError, match="batch_size: got 0"):
        extract_features(extractor, torch.rand(2, 3, 4, 4), batch_size=0)
    with pytest.raises(ValueError, match=r"got \(3, 4, 4\)"):
        extract_features(extractor, [torch.rand(3, 4, 4)], progress=False)
    with pytest.raises(ValueError, match="no images"):
        extract_features(extractor, [], progress=False)
    with pytest.raises(TypeError, match="'channel-means' has no features_and_logits"):
        extract_features(extractor, torch.rand(2, 3, 4, 4), logits=True)
    extractor.dim = 5
    with pytest.raises(ValueError, match=r"expected \(2, 5\)"):
        extract_features(extractor, torch.rand(2, 3, 4, 4), progress=False)


def test_fingerprint_names_the_weights(network):
    other = copy.deepcopy(network)
    assert weights_fingerprint(other) == weights_fingerprint(network)
    with torch.no_grad():
        other.Mixed_6e.branch_pool.bn.running_mean[0] += 1e-3
    assert weights_fingerprint(other) != weights_fingerprint(network)
    assert InceptionFeatures(network, resize="pytorch").name.endswith("-pytorch")
    with pytest.raises(ValueError, match="unknown mode 'nearest'"):
        InceptionFeatures(network, resize="nearest")
