"""Sample grids (augment/samples.py) and the names written beside their rows."""
import numpy as np
import pytest
import torch

from augment.samples import grid, save_grid, with_row_labels


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


@pytest.mark.parametrize("channels", [1, 3])
def test_a_saved_grid_holds_its_pictures_as_stored_beside_their_names(tmp_path, channels):
    from PIL import Image

    rows = [torch.randint(0, 256, (4, channels, 8, 8), dtype=torch.uint8) for _ in range(3)]
    save_grid(rows, tmp_path / "plain.png")
    save_grid(rows, tmp_path / "named.png", labels=["source", "translated", "reconstructed"])
    plain, named = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("plain", "named"))
    if channels == 1:  # saved as grey
        plain, named = plain[:, :, None], named[:, :, None]
    assert (plain == grid(rows)).all()  # the pixels exactly, upscaled
    assert (named == with_row_labels(grid(rows), ["source", "translated", "reconstructed"])).all()


@pytest.mark.parametrize("classes, says", [(3, "one per class;"), (12, "one for each of 10 of the 12 classes (spread over the class list);")])
def test_the_comparison_caption_says_how_many_of_the_classes_its_columns_show(tmp_path, classes, says):
    """comparison.png shows 10 classes at most, while its caption said "one per class" of 43."""
    from augment.dataset import load_prepared
    from augment.prepare import PrepareConfig, prepare
    from pipelines.stages.evaluate import comparison_caption, comparison_rows
    from tests.conftest import make_folders

    names = tuple(f"c{i:02d}" for i in range(classes))
    root = make_folders(tmp_path / "data", classes=names, per_class=2)
    prepare(PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=8, channels=3), tmp_path / "prepared")
    data = load_prepared(tmp_path / "prepared")
    rows = comparison_rows(data, tmp_path / "gans", [], None, device=torch.device("cpu"))
    assert [name.split(" (")[0] for name, _ in rows] == ["source", "real target"] and len(rows[0][1]) == min(classes, 10)
    assert comparison_caption(rows, len(data.classes)).startswith(f"The same source test images, {says} rows, top to bottom: source, real target")
