"""Tests of equilibria.images: grids, PNG writing and scatter plots."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from equilibria import images
from equilibria.images import enlarge, make_grid, save_png, scatter_png


def test_make_grid_exact_layout():
    # Two 1x2x2 images in [-1, 1], padding 1, one row: (1 + 2 + 1) x (1 + 2 + 1 + 2 + 1) pixels.
    # -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, 0.5 -> 191.25 -> 191, -0.5 -> 63.75 -> 64; padding white.
    batch = torch.tensor([[[[-1.0, 1.0], [0.0, 0.5]]], [[[1.0, -1.0], [-0.5, 0.0]]]])
    grid = make_grid(batch, padding=1)
    expected = np.array(
        [
            [255, 255, 255, 255, 255, 255, 255],
            [255, 0, 255, 255, 255, 0, 255],
            [255, 128, 191, 255, 64, 128, 255],
            [255, 255, 255, 255, 255, 255, 255],
        ],
        dtype=np.uint8,
    )
    assert grid.dtype == np.uint8
    assert grid.shape == (4, 7, 1)
    np.testing.assert_array_equal(grid[:, :, 0], expected)


def test_make_grid_wraps_rows_and_pads_missing_tiles():
    # Three 1x1 images, two per row, padding 2: 2 rows x 2 columns of 3-pixel cells plus a border of 2.
    batch = torch.tensor([0.0, 0.5, 1.0]).reshape(3, 1, 1, 1)
    grid = make_grid(batch, nrow=2, padding=2, value_range=(0.0, 1.0), pad_value=0.0)[:, :, 0]
    assert grid.shape == (2 + 2 * 3, 2 + 2 * 3)
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[2, 2], expected[2, 5], expected[5, 2] = 0, 128, 255  # the 4th tile stays padding
    np.testing.assert_array_equal(grid, expected)


def test_make_grid_clamps_to_value_range():
    batch = torch.tensor([-3.0, 0.0, 2.0, 4.0, 7.0, float("nan")]).reshape(1, 1, 1, 6)
    row = make_grid(batch, padding=0, value_range=(0.0, 4.0))[0, :, 0]
    np.testing.assert_array_equal(row, [0, 0, 128, 255, 255, 0])


def test_make_grid_keeps_colour_channels():
    batch = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    grid = make_grid(batch, padding=1, pad_value=0.0)
    assert grid.shape == (3, 3, 3)
    np.testing.assert_array_equal(grid[1, 1], [0, 128, 255])
    np.testing.assert_array_equal(grid[0, 0], [0, 0, 0])


def test_make_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="make_grid: images must be a non-empty"):
        make_grid(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r"make_grid: value_range .* got \(1.0, 1.0\)"):
        make_grid(torch.zeros(1, 1, 4, 4), value_range=(1.0, 1.0))


def test_enlarge_repeats_pixels_until_the_longer_side_is_readable():
    grid = np.arange(2 * 3 * 1, dtype=np.uint8).reshape(2, 3, 1)
    big = enlarge(grid, min_side=7)  # 3 * 3 = 9 >= 7 > 3 * 2
    assert big.shape == (6, 9, 1)
    assert (big[:3, :3] == grid[0, 0]).all() and (big[3:, 6:] == grid[1, 2]).all()
    assert enlarge(grid, min_side=3).shape == grid.shape  # already long enough
    digits = make_grid(torch.zeros(64, 1, 8, 8), nrow=8)  # 82 x 82, the digits grid
    assert digits.shape[:2] == (82, 82) and enlarge(digits).shape[:2] == (574, 574)


def test_save_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(6, 4, 1), dtype=np.uint8)
    save_png(tmp_path / "nested" / "dir" / "rgb.png", rgb)
    save_png(tmp_path / "gray.png", gray)
    with Image.open(tmp_path / "nested" / "dir" / "rgb.png") as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), rgb)
    with Image.open(tmp_path / "gray.png") as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), gray[:, :, 0])


def test_save_png_atomic_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "grid.png"
    save_png(target, np.zeros((2, 2), dtype=np.uint8))
    save_png(target, np.full((3, 3), 200, dtype=np.uint8))  # overwrites
    assert os.listdir(tmp_path) == ["grid.png"]
    with Image.open(target) as image:
        assert image.size == (3, 3)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "grid.png"
    save_png(target, np.full((2, 2), 7, dtype=np.uint8))
    before = target.read_bytes()

    def broken_save(self, file, **kwargs):
        file.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(images.Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_png(target, np.zeros((2, 2), dtype=np.uint8))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["grid.png"]


def test_save_png_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="save_png: array must be uint8"):
        save_png(tmp_path / "x.png", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="save_png: array must be uint8"):
        save_png(tmp_path / "x.png", np.zeros((2, 2, 2), dtype=np.uint8))


def test_scatter_png(tmp_path):
    torch.manual_seed(0)
    angles = torch.arange(8) * (2 * torch.pi / 8)
    centers = torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles)], dim=1)
    real = centers.repeat(50, 1) + 0.05 * torch.randn(400, 2)
    target = tmp_path / "plots" / "step_100.png"
    scatter_png(target, torch.randn(400, 2), real=real, centers=centers, title="step 100")
    assert os.listdir(target.parent) == ["step_100.png"]
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == (500, 500)
        assert np.asarray(image.convert("L")).std() > 0  # something was drawn
    scatter_png(tmp_path / "fake_only.png", torch.randn(10, 2))
    assert (tmp_path / "fake_only.png").stat().st_size > 0


def test_scatter_png_rejects_bad_points(tmp_path):
    with pytest.raises(ValueError, match=r"scatter_png: real must have shape \(N, 2\); got \(10, 3\)"):
        scatter_png(tmp_path / "x.png", torch.zeros(10, 2), real=torch.zeros(10, 3))
