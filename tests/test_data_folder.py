import numpy as np
import pytest
import torch
from PIL import Image

from equilibria.data import load_dataset
from equilibria.data.folder import load_image_folder


def _stripes(width: int, height: int) -> Image.Image:
    """Red outer quarters, green centre half (along the long side)."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[..., 0] = 255
    if width >= height:
        array[:, width // 4: 3 * width // 4] = (0, 255, 0)
    else:
        array[height // 4: 3 * height // 4] = (0, 255, 0)
    return Image.fromarray(array)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    _stripes(40, 20).save(tmp_path / "b_wide.png")
    _stripes(20, 40).save(tmp_path / "sub" / "c_tall.PNG")
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(tmp_path / "a_gray.bmp")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_loads_sorted_resized_and_centre_cropped(folder):
    dataset = load_image_folder(folder, 10)
    assert dataset.kind == "image" and dataset.labels is None
    assert dataset.data.shape == (3, 3, 10, 10) and dataset.data.dtype == torch.uint8
    gray, wide, tall = dataset.data  # sorted: a_gray.bmp, b_wide.png, sub/c_tall.PNG
    assert torch.all(gray == 200)  # grayscale converted to RGB, upscaled 8 -> 10
    # The centre crop keeps the green middle half of the long side.
    assert wide[:, :, 2:8].tolist() == tall[:, 2:8, :].transpose(1, 2).tolist()
    assert torch.all(wide[1, :, 3:7] == 255) and torch.all(wide[0, :, 3:7] == 0)
    assert torch.all(tall[1, 3:7, :] == 255)
    reference = _stripes(40, 20).resize((20, 10), Image.BILINEAR).crop((5, 0, 15, 10))
    assert np.array_equal(wide.permute(1, 2, 0).numpy(), np.asarray(reference))


def test_grayscale(folder):
    dataset = load_image_folder(folder, 6, channels=1)
    assert dataset.data.shape == (3, 1, 6, 6)
    assert torch.all(dataset.data[0] == 200)


def test_through_load_dataset(folder):
    assert load_dataset("folder", root=folder, image_size=4, num_samples=2).data.shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="image_size: required"):
        load_dataset("folder", root=folder)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=f"no image files .* under {tmp_path}"):
        load_image_folder(tmp_path, 8)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope", 8)


def test_unreadable_image_names_the_file(folder):
    (folder / "broken.jpg").write_bytes(b"definitely not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*broken.jpg"):
        load_image_folder(folder, 8)
