"""data.resize: how a non-square image becomes the square data.image_size (stretch, crop or pad)."""
import json
import typing

import numpy as np
import pytest
from PIL import Image, ImageDraw

from augment.images import RESIZE_MODES, canonical
from augment.prepare import PrepareConfig, prepare
from pipelines.config import DataParams, ParamsError, parse_params
from tests.conftest import make_folders


def _disc_in_wide_image() -> Image.Image:
    """A 64x32 grey image, black, with a white disc of diameter 24 at its centre."""
    img = Image.new("L", (64, 32))
    ImageDraw.Draw(img).ellipse((20, 4, 44, 28), fill=255)
    return img


def _extent(arr: np.ndarray) -> tuple[int, int]:
    """(width, height) of the bright pixels' bounding box."""
    ys, xs = np.nonzero(arr[:, :, 0] > 127)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def test_stretch_crop_and_pad_keep_what_they_say():
    img = _disc_in_wide_image()
    w, h = _extent(canonical(img, size=32, channels=1, resize="stretch"))
    assert w < 0.7 * h  # squeezed sideways: the disc becomes a tall ellipse
    cropped = canonical(img, size=32, channels=1, resize="crop")
    w, h = _extent(cropped)
    assert abs(w - h) <= 1 and 22 <= w <= 26  # the centre square, at scale 1: the disc whole and round
    padded = canonical(img, size=32, channels=1, resize="pad")
    w, h = _extent(padded)
    assert abs(w - h) <= 1 and 10 <= w <= 14  # the whole image at half scale: the disc round
    assert padded[:8].max() == 0 and padded[-8:].max() == 0  # black bars above and below
    for mode in RESIZE_MODES:  # a square image is only resized, whatever the mode
        square = Image.new("L", (16, 16), 200)
        assert (canonical(square, size=8, channels=1, resize=mode) == 200).all()


def test_params_name_the_modes_and_refuse_others():
    assert typing.get_args(DataParams.model_fields["resize"].annotation) == RESIZE_MODES
    with pytest.raises(ParamsError, match=r"data\.resize: Input should be 'stretch', 'crop' or 'pad'"):
        parse_params({"data": {"resize": "fit"}})


def test_prepare_uses_and_records_the_mode(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=2, size=20)
    wide = root / "src/train/a/wide.png"
    _disc_in_wide_image().save(wide)
    cfg = PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=16, channels=1, resize="pad")
    manifest = prepare(cfg, tmp_path / "prepared")
    assert json.loads((tmp_path / "prepared/dataset.json").read_text())["resize"] == "pad"
    row = manifest.index[manifest.source_path.str.endswith("wide.png")][0]
    pixels = np.load(tmp_path / "prepared/pixels.npy", mmap_mode="r")
    assert pixels[row][:4].max() == 0 and pixels[row][6:10].max() > 127  # bars, and the disc between them
    assert tuple(manifest.loc[row, ["width", "height"]]) == (64, 32)  # the stored size, as before
