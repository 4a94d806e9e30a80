"""The packed image set: pixels.npy is what stages read; the PNGs are a copy for people."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.dataset import load_prepared, load_synthetic
from augment.pixels import PIXELS, PixelWriter, read_pixels, restore_pngs
from augment.prepare import PrepareConfig, prepare


def _prepare(folders, out, **kw):
    cfg = dict(dataset="folders", root=str(folders), source="src", target="tgt", image_size=16, channels=3)
    return prepare(PrepareConfig(**{**cfg, **kw}), out)


def test_row_i_of_pixels_is_manifest_row_i_and_its_png(folders, tmp_path):
    out = tmp_path / "prepared"
    manifest = _prepare(folders, out)
    pixels = np.load(out / PIXELS)
    assert pixels.shape == (len(manifest), 16, 16, 3) and pixels.dtype == np.uint8
    for i in (0, len(manifest) // 2, len(manifest) - 1):
        with Image.open(out / manifest.path.iloc[i]) as img:
            assert np.array_equal(np.asarray(img), pixels[i])
    # What the stages load is those rows, by role and split, in manifest order.
    data = load_prepared(out)
    rows = data.rows("target", "test")
    x = data.images("target", "test")
    assert np.array_equal(((x.permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy(), pixels[rows.index.to_numpy()])


def test_a_pixels_file_from_another_run_is_refused_by_name(folders, tmp_path):
    out = tmp_path / "prepared"
    manifest = _prepare(folders, out)
    np.save(out / PIXELS, np.zeros((len(manifest) - 1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"pixels\.npy.*lists %d images" % len(manifest)):
        load_prepared(out)
    (out / PIXELS).write_bytes(b"not an array")
    with pytest.raises(ValueError, match=r"pixels\.npy: not a readable image array"):
        load_prepared(out)
    (out / PIXELS).unlink()
    with pytest.raises(FileNotFoundError, match=r"pixels\.npy: missing"):
        load_prepared(out)


def test_restore_pngs_rebuilds_the_copies_and_drops_strays(folders, tmp_path):
    out = tmp_path / "prepared"
    manifest = _prepare(folders, out)
    first = out / manifest.path.iloc[0]
    first.unlink()
    stray = out / "images" / "src" / "train" / "a" / "stray.png"
    stray.write_bytes(b"left from another run")
    assert restore_pngs(out) == len(manifest)
    assert first.is_file() and not stray.exists()


def test_restore_pngs_keeps_the_copies_when_pixels_npy_cannot_be_read(folders, tmp_path):
    """`domain-augment pngs` removed images/ and then found pixels.npy empty or cut short: the PNGs,
    then the only readable copy of the images, were gone. An empty file was also a traceback."""
    out = tmp_path / "prepared"
    manifest = _prepare(folders, out)
    good = (out / PIXELS).read_bytes()
    for broken, says in [(b"", r"pixels\.npy: not a readable image array"), (good[:60], r"pixels\.npy: not a readable image array"),
                         (good[:-100], r"pixels\.npy: .*")]:
        (out / PIXELS).write_bytes(broken)
        with pytest.raises(ValueError, match=says):
            restore_pngs(out)
        assert all((out / rel).is_file() for rel in manifest.path)
    (out / PIXELS).write_bytes(good)
    (out / "manifest.csv").write_text("garbage\n")
    with pytest.raises(ValueError, match=r"manifest\.csv: not a manifest"):
        restore_pngs(out)
    assert all((out / rel).is_file() for rel in manifest.path)


def test_writer_refuses_mixed_sizes_and_writes_an_empty_set(tmp_path):
    w = PixelWriter(tmp_path)
    w.append(np.zeros((4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match=r"image 1 is \(5, 4, 1\)"):
        w.append(np.zeros((5, 4, 1), np.uint8))
    assert w.close(empty_shape=(4, 4, 1)) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    PixelWriter(empty).close(empty_shape=(4, 4, 1))
    assert read_pixels(empty, 0).shape == (0, 4, 4, 1)
    # A synthetic folder whose filter kept nothing loads as an empty set (the arm is then unavailable).
    pd.DataFrame(columns=["path", "source_path", "label", "label_index"]).to_csv(empty / "manifest.csv", index=False)
    images, rows = load_synthetic(empty)
    assert len(images) == 0 and rows.empty


def test_pngs_with_no_folder_written_yet_says_so(tmp_path):
    """`domain-augment pngs` before any stage ran printed nothing and exited 0."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(tmp_path), "pngs"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {tmp_path}: no prepared or synthetic folder yet"), proc.stderr


def test_restore_pngs_writes_nothing_outside_images_for_a_path_that_leaves_it(folders, tmp_path):
    """A manifest row `../x.png` (edited, or from elsewhere) had its PNG written outside the folder."""
    out = tmp_path / "prepared"
    manifest = _prepare(folders, out)
    edited = manifest.copy()
    edited.loc[0, "path"] = "images/../../escaped.png"
    edited.to_csv(out / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"manifest\.csv: path 'images/\.\./\.\./escaped\.png' is not under images/"):
        restore_pngs(out)
    assert not (tmp_path / "escaped.png").exists() and all((out / rel).is_file() for rel in manifest.path[1:])
