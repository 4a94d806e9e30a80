"""The names written beside the rows of the reports' sample grids."""
import numpy as np
import pytest
import torch

from augment.row_labels import label_rows, save_labeled_grid, with_row_labels
from augment.samples import grid, save_grid


@pytest.mark.parametrize("channels", [1, 3])
def test_each_row_is_named_in_a_column_of_its_own_and_the_pictures_are_unchanged(channels):
    rows = [torch.full((3, channels, 8, 8), v) for v in (-1.0, 0.0, 1.0)]  # black, grey, white rows
    plain = grid(rows)
    named = with_row_labels(plain, ["source", "cyclegan", "real target"])
    width = named.shape[1] - plain.shape[1]
    assert named.shape[0] == plain.shape[0] and named.shape[2] == channels and width > 20
    assert (named[:, width:] == plain).all()
    column, band = named[:, :width, 0], (plain.shape[0] + 2) // 3
    for r in range(3):  # dark text inside each row's band, white margins around it
        inside = column[r * band:(r + 1) * band - 2]
        assert (inside < 128).any() and inside[0].min() == 255 and inside[:, 0].min() == 255
    longer = with_row_labels(plain, ["source", "translated by the class-conditional GAN", "x"])
    assert longer.shape[1] > named.shape[1]  # as wide as its longest name


def test_labels_that_do_not_match_the_rows_are_refused():
    plain = grid([torch.zeros(2, 1, 8, 8)] * 3)
    with pytest.raises(ValueError, match="4 row labels for a grid 196 px high"):
        with_row_labels(plain, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="0 row labels"):
        with_row_labels(plain, [])


def test_a_written_grid_is_copied_with_its_rows_named(tmp_path):
    from PIL import Image

    rows = [torch.rand(4, 3, 8, 8) * 2 - 1 for _ in range(3)]
    save_grid(rows, tmp_path / "samples.png")
    label_rows(tmp_path / "samples.png", ["source", "translated", "reconstructed"], tmp_path / "shown.png")
    save_labeled_grid(rows, ["source", "translated", "reconstructed"], tmp_path / "direct.png")
    shown, direct, plain = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("shown", "direct", "samples"))
    assert (shown == direct).all() and (shown[:, shown.shape[1] - plain.shape[1]:] == plain).all()
