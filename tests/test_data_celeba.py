"""CelebA from a small generated folder of the same shape: 178x218 JPEG files and a partition file."""

import numpy as np
import pytest
import torch
from PIL import Image

from equilibria.data import load_dataset
from equilibria.data import celeba as celeba_module
from equilibria.data.celeba import load_celeba

RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 230, 20)


def face(shade: int) -> Image.Image:
    """178 x 218 (as CelebA's aligned images): green outside the centre 108 x 108 square, whose left
    half is red, right half blue, and top row band of gray ``shade`` (the image's identity)."""
    array = np.zeros((218, 178, 3), dtype=np.uint8)
    array[:] = GREEN
    top, left = (218 - 108) // 2, (178 - 108) // 2
    array[top:top + 108, left:left + 54] = RED
    array[top:top + 108, left + 54:left + 108] = BLUE
    array[top:top + 27, left:left + 108] = shade
    return Image.fromarray(array)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRIA_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(1, 7):
        face(40 * i).save(folder / f"{i:06d}.jpg", quality=95)
    # train 1, 2, 4; validation 3; test 5, 6 (listed out of order: the file's order is kept)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        "000002.jpg 0\n000001.jpg 0\n000003.jpg 1\n000004.jpg 0\n000006.jpg 2\n000005.jpg 2\n")
    return tmp_path / "celeba"


def shade_of(image: torch.Tensor) -> float:
    return float(image[:, 2, 8:56].float().mean())  # inside the gray band at the top


def test_splits_follow_the_partition_file_and_the_crop_keeps_the_centre_square(root):
    train, test, everything = (load_celeba(root, split, 64) for split in ("train", "test", "all"))
    assert train.data.shape == (3, 3, 64, 64) and train.data.dtype == torch.uint8 and train.kind == "image"
    assert [round(shade_of(x) / 40) for x in train.data] == [2, 1, 4]
    assert [round(shade_of(x) / 40) for x in test.data] == [6, 5]
    assert [round(shade_of(x) / 40) for x in everything.data] == [1, 2, 3, 4, 5, 6]
    image = train.data[0].permute(1, 2, 0).int()
    # no green inside a 2-pixel border (JPEG blurs the edges of the square): the crop is centred; red on
    # the left, blue on the right below the band
    assert (image[2:-2, 2:-2, 1] < 110).all()
    assert (image[20:-2, 2:30] - torch.tensor(RED)).abs().max() <= 12
    assert (image[20:-2, 34:-2] - torch.tensor(BLUE)).abs().max() <= 12


def test_load_dataset_resizes_keeps_the_first_samples_and_caches_the_decoded_tensor(root, monkeypatch):
    first = load_dataset("celeba", root=root, split="train", image_size=32, num_samples=2)
    assert first.data.shape == (2, 3, 32, 32) and first.name == "celeba"
    assert load_dataset("celeba", root=root, split="test").data.shape == (2, 3, 64, 64)  # 64 by default

    def no_decoding(*args):
        raise AssertionError("decoded again instead of read from the cache")

    monkeypatch.setattr(celeba_module, "centre_crop_resize", no_decoding)
    again = load_dataset("celeba", root=root, split="train", image_size=32, num_samples=2)
    assert torch.equal(again.data, first.data)
    face(7).save(root / "img_align_celeba" / "000001.jpg", quality=50)  # another size: another cache entry
    with pytest.raises(AssertionError, match="decoded again"):
        load_celeba(root, "train", 32)


def test_missing_and_malformed_files_are_named(root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"img_align_celeba does not exist; allowed: data.root holding"):
        load_celeba(tmp_path / "nowhere")
    (root / "list_eval_partition.txt").rename(root / "elsewhere.txt")
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt does not exist .*allowed without it: "
                                                 r"split all"):
        load_celeba(root, "test")
    assert len(load_celeba(root, "all", 16)) == 6
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(ValueError, match=r"line 2: got '000002.jpg train'"):
        load_celeba(root, "train")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000099.jpg 0\n")
    with pytest.raises(FileNotFoundError, match=r"000099.jpg"):
        load_celeba(root, "train")
