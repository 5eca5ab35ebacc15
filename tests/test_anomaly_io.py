"""The seed's cutout folder layout: round trip and clear errors."""

import numpy as np
import pytest
from PIL import Image

from astrogen.io.anomaly import ImageFolderError, load_image_folder, load_images, write_image_folder


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 3, 64, 64)).astype(np.float32)


def test_round_trip_through_png(tmp_path):
    sets = {"train": _images(5), "test_normal": _images(3, 1), "test_abnormal": _images(2, 2)}
    write_image_folder(tmp_path / "sky", sets)
    loaded = load_image_folder(tmp_path / "sky")
    for key, images in sets.items():
        assert loaded[key].shape == images.shape
        assert np.abs(loaded[key] - images).max() <= 0.5 / 255 + 1e-6  # 8-bit quantisation
        assert len(loaded[f"{key}_names"]) == len(images)


def test_jpeg_is_read_and_test_folders_may_be_empty(tmp_path):
    folder = tmp_path / "sky" / "train" / "0.normal"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "a.jpg")
    loaded = load_image_folder(tmp_path / "sky")
    assert loaded["train"].shape == (1, 3, 64, 64)
    assert loaded["test_abnormal"].shape == (0, 3, 64, 64)


def test_errors_name_file_and_expectation(tmp_path):
    with pytest.raises(ImageFolderError, match="no such directory"):
        load_image_folder(tmp_path / "missing")
    folder = tmp_path / "sky" / "train" / "0.normal"
    folder.mkdir(parents=True)
    with pytest.raises(ImageFolderError, match="no images"):
        load_image_folder(tmp_path / "sky")
    (folder / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ImageFolderError, match=r"broken\.png: not a readable"):
        load_images(folder)
    (folder / "broken.png").unlink()
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(folder / "small.png")
    with pytest.raises(
        ImageFolderError, match=r"small\.png: image is 48×32 pixels; expected 64×64"
    ):
        load_images(folder)
    (folder / "small.png").unlink()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "grey.png")
    with pytest.raises(ImageFolderError, match=r"grey\.png: image mode 'L'; expected 'RGB'"):
        load_images(folder)
