"""The data contract: discovery, labels, flat target train, bad files and bad layouts."""
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.contract import DataLayoutError, discover, natural_key
from augment.dataset import load_prepared
from augment.few_labels import choose_few, consumer_file, write_consumer_files
from augment.images import ImageRejected, decode, read_image
from augment.prepare import PrepareConfig, prepare
from tests.conftest import make_folders


def cfg(root, **kw) -> PrepareConfig:
    base = dict(dataset="folders", root=str(root), source="src", target="tgt", image_size=16, channels=1)
    return PrepareConfig(**{**base, **kw})


def test_discovery_labels_and_flat_target_train(folders):
    files, classes = discover(folders, "src", "tgt")
    assert classes == ["a", "b", "c"]
    target_train = [f for f in files if f.role == "target" and f.split == "train"]
    assert target_train and all(f.label is None for f in target_train)
    assert all(f.label in classes for f in files if not (f.role == "target" and f.split == "train"))


def test_prepare_writes_manifest_images_and_hides_nothing_it_should_keep(folders, tmp_path):
    out = tmp_path / "prepared"
    manifest = prepare(cfg(folders), out)
    assert {"path", "domain", "split", "label", "sha256", "picture", "width", "height"} <= set(manifest.columns)
    assert len(manifest) == 2 * 2 * 3 * 6
    assert (manifest[(manifest.role == "target") & (manifest.split == "train")].label_index == -1).all()
    assert choose_few(manifest, 2, seed=0).empty  # flat target train: no labels to show anyone
    data = load_prepared(out)
    x = data.images("source", "train")
    assert x.shape == (18, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    for p in manifest.path:
        assert (out / p).is_file()
    assert pd.read_csv(out / "rejected.csv").empty


def test_labeled_target_train_gives_few_labels_per_class_to_their_consumers_only(tmp_path):
    root = make_folders(tmp_path / "raw", flat_target_train=False)
    manifest = prepare(cfg(root), tmp_path / "prepared")
    few = write_consumer_files(manifest, 2, 0, tmp_path / "labels", gans_that_read={"cgan"})
    chosen = manifest[manifest.path.isin(few.path)]
    assert len(chosen) == 6 and (chosen.groupby("label").size() == 2).all()
    assert set(chosen.role) == {"target"} and set(chosen.split) == {"train"}
    data = load_prepared(tmp_path / "prepared", few_labels=consumer_file(tmp_path / "labels", arm="target_few"))
    assert len(data.labeled("target", "train", visible="few")[0]) == 6
    assert len(data.labeled("target", "train", visible="all")[0]) == 18
    for consumer in ({"arm": "source_only"}, {"arm": "oracle"}, {"arm": "cgan"}, {"gan": "cyclegan"}):
        blind = load_prepared(tmp_path / "prepared", few_labels=consumer_file(tmp_path / "labels", **consumer))
        assert len(blind.labeled("target", "train", visible="few")[0]) == 0, consumer
    assert (blind.visible_target_labels("few") == -1).all()
    seen = load_prepared(tmp_path / "prepared", few_labels=consumer_file(tmp_path / "labels", gan="cgan"))
    assert (seen.visible_target_labels("few") >= 0).sum() == 6
    # The same choice for every consumer and every run; another count changes only the readers' files.
    again = write_consumer_files(manifest, 3, 0, tmp_path / "labels3", gans_that_read={"cgan"})
    assert set(few.path) < set(again.path)
    for name in ("arm-source_only.csv", "gan-cyclegan.csv"):
        assert (tmp_path / "labels" / name).read_bytes() == (tmp_path / "labels3" / name).read_bytes()


def test_rgb_output_and_sizes(folders, tmp_path):
    manifest = prepare(cfg(folders, channels=3, image_size=12), tmp_path / "p")
    with Image.open(tmp_path / "p" / manifest.path.iloc[0]) as img:
        assert img.mode == "RGB" and img.size == (12, 12)


def test_target_class_missing_from_source_is_a_clear_error(folders):
    (folders / "tgt" / "test" / "zebra").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "tgt" / "test" / "zebra" / "0.png")
    with pytest.raises(DataLayoutError, match=r"tgt/test: classes \['zebra'\] have no images in .*src/train"):
        discover(folders, "src", "tgt")


def test_class_names_are_compared_as_people_read_them(folders, tmp_path):
    """A class folder whose name is stored decomposed (NFD, as macOS's HFS+ copies it) is the same class
    as its composed spelling (it was refused as a class without source train images); two folders that
    compose to one name are refused by name; when a class lacks source train images, a source class
    that differs only in case or end spaces, or a symlinked class folder, is pointed to."""
    composed, decomposed = "\u00dcberholverbot", "U\u0308berholverbot"
    (folders / "src/train/a").rename(folders / "src/train" / composed)
    (folders / "src/test/a").rename(folders / "src/test" / composed)
    (folders / "tgt/test/a").rename(folders / "tgt/test" / decomposed)
    files, classes = discover(folders, "src", "tgt")
    assert classes == ["b", "c", composed] and {f.label for f in files if (f.role, f.split) == ("target", "test")} == set(classes)
    shutil.copytree(folders / "src/train" / composed, folders / "src/train" / decomposed)
    with pytest.raises(DataLayoutError, match=f"two class folders named '{composed}' once their Unicode is composed"):
        discover(folders, "src", "tgt")
    shutil.rmtree(folders / "src/train" / decomposed)
    (folders / "tgt/test/b").rename(folders / "tgt/test/B ")
    with pytest.raises(DataLayoutError, match=r"\('B ' differs from the source class 'b' only in case or in spaces\)"):
        discover(folders, "src", "tgt")
    (folders / "tgt/test/B ").rename(folders / "tgt/test/b")
    numbered = make_folders(tmp_path / "numbered", classes=("1", "2", "10"), per_class=2)
    (numbered / "tgt/test/2").rename(numbered / "tgt/test/02")  # one domain numbers its folders with leading zeros
    with pytest.raises(DataLayoutError, match=r"classes \['02'\] have no images in .*\('02' differs from the source class '2' only in leading zeros\)"):
        discover(numbered, "src", "tgt")
    (folders / "src/train/c").rename(tmp_path / "c_elsewhere")
    (folders / "src/train/c").symlink_to(tmp_path / "c_elsewhere")
    with pytest.raises(DataLayoutError, match=r"classes \['c'\] have no images in .*\(c in the source train split: symlinked folder, not followed\)"):
        discover(folders, "src", "tgt")


def test_unlabeled_target_images_kept_in_sub_folders_are_pointed_to_the_flat_layout(folders):
    for k, image in enumerate(sorted((folders / "tgt/train").glob("*.png"))):
        (folders / f"tgt/train/session_{k % 2}").mkdir(exist_ok=True)
        image.rename(folders / f"tgt/train/session_{k % 2}" / image.name)
    with pytest.raises(DataLayoutError, match=r"tgt/train: classes \['session_0', 'session_1'\] have no images in .*put the images in the "
                                              r"target train folder itself: a flat target train split needs no labels"):
        discover(folders, "src", "tgt")


def test_one_class_is_refused_before_any_stage_trains(tmp_path):
    """With a single class every model reads every image right: no arm could be measured, and the
    semantic loss and the conditional GAN would stop mid-run with a traceback."""
    root = make_folders(tmp_path / "one", classes=("only",), per_class=3)
    with pytest.raises(DataLayoutError, match=r"one/src/train: one class folder with usable images \(only\); a classifier needs at least 2"):
        discover(root, "src", "tgt")
    with pytest.raises(DataLayoutError, match="one class folder"):
        prepare(cfg(root), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_target_test_split_of_one_class_is_refused(tmp_path):
    """A target test split left with one class (the other class folder a link, not followed) ran, and the
    answer recommended arms whose classifiers read every image as that class (+0.750, "helped")."""
    import shutil

    root = make_folders(tmp_path / "raw", classes=("a", "b"), per_class=3)
    shutil.move(root / "tgt/test/b", tmp_path / "b")
    (root / "tgt/test/b").symlink_to(tmp_path / "b", target_is_directory=True)
    with pytest.raises(DataLayoutError, match=r"raw/tgt/test: images of one class only \(a\); a classifier that reads every image as a "
                                              r"scores 1.000 there, so no arm could be measured"):
        discover(root, "src", "tgt")
    (root / "tgt/test/b").unlink()
    shutil.move(tmp_path / "b", root / "tgt/test/b")
    discover(root, "src", "tgt")  # two classes: measured


def test_a_source_test_class_without_source_train_images_is_a_clear_error(folders):
    """No arm could learn it from the source; it would only lower every arm's source test score."""
    (folders / "src" / "test" / "zebra").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "src" / "test" / "zebra" / "0.png")
    with pytest.raises(DataLayoutError, match=r"src/test: classes \['zebra'\] have no images in .*src/train"):
        discover(folders, "src", "tgt")


def test_what_lies_beside_train_and_test_is_listed_not_read(folders):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "src" / "cover.png")
    (folders / "tgt" / "val" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "tgt" / "val" / "a" / "0.png")
    files, _ = discover(folders, "src", "tgt")
    beside = {f.path.name: f.problem for f in files if f.split == ""}
    assert set(beside) == {"cover.png", "val"} and all("not read" in why for why in beside.values())
    assert not any("val" in f.path.parts for f in files if f.problem is None)


def test_a_split_that_is_a_file_is_named_as_such(folders):
    import shutil

    shutil.rmtree(folders / "tgt" / "train")
    (folders / "tgt" / "train").write_text("not a folder")
    with pytest.raises(DataLayoutError, match=r"tgt/train: a file, not a folder"):
        discover(folders, "src", "tgt")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: (r / "tgt").rename(r / "other"), r"tgt: missing \(data.target='tgt'\)"),
        (lambda r: __import__("shutil").rmtree(r / "src" / "test"), r"src/test: missing"),
        (lambda r: Image.fromarray(np.zeros((8, 8), np.uint8)).save(r / "src" / "train" / "loose.png"), r"src/train: 1 image\(s\) directly"),
        (lambda r: Image.fromarray(np.zeros((8, 8), np.uint8)).save(r / "tgt" / "test" / "loose.jpg", format="PNG"), r"tgt/test: 1 image\(s\) directly"),
    ],
)
def test_bad_layout_names_the_folder(folders, mutate, message):
    mutate(folders)
    with pytest.raises(DataLayoutError, match=message):
        discover(folders, "src", "tgt")


def test_files_that_are_not_images_beside_the_class_folders_of_a_labeled_split_are_listed_not_fatal(folders, tmp_path):
    """A README, a labels.csv or a Thumbs.db beside the class folders has no class to be and no image
    to lose: prepare lists it in rejected.csv and runs. An image there still stops it (above)."""
    import os

    extra = [folders / "src" / "train" / "README.txt", folders / "src" / "test" / "labels.csv", folders / "tgt" / "test" / "Thumbs.db"]
    for path in extra:
        path.write_text("class,file\n")
    os.mkfifo(folders / "tgt" / "test" / "pipe")  # never opened: a FIFO waits for a writer forever
    files, classes = discover(folders, "src", "tgt")
    assert classes == ["a", "b", "c"]
    listed = {f.path.name: f.problem for f in files if f.label is None and f.split and not (f.role == "target" and f.split == "train")}
    assert set(listed) == {p.name for p in extra} | {"pipe"}
    assert all("beside the class folders of a labeled split: not read" in why for why in listed.values())
    prepare(cfg(folders), tmp_path / "p")
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    reasons = {Path(p).name: r for p, r in zip(rejected.source_path, rejected.reason)}
    assert reasons == listed and all(p.exists() for p in extra)


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataLayoutError, match="data.root .*nope: not a folder"):
        discover(tmp_path / "nope", "src", "tgt")


def test_bad_files_are_rejected_not_fatal_and_left_in_place(folders, tmp_path):
    bad_dir = folders / "src" / "train" / "a"
    (bad_dir / "empty.png").write_bytes(b"")
    (bad_dir / "notes.txt").write_text("not an image")
    good = bad_dir / "0.png"
    (bad_dir / "truncated.png").write_bytes(good.read_bytes()[:60])
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(bad_dir / "huge.png")
    manifest = prepare(cfg(folders, max_image_pixels=1000), tmp_path / "p")
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    reasons = {Path(p).name: r for p, r in zip(rejected.source_path, rejected.reason)}
    assert set(reasons) == {"empty.png", "notes.txt", "truncated.png", "huge.png"}
    assert "zero-byte" in reasons["empty.png"]
    assert "not an image" in reasons["notes.txt"]
    assert "too large" in reasons["huge.png"]
    assert all((bad_dir / n).exists() for n in reasons)  # left untouched where they are
    assert len(manifest) == 72


def test_a_split_whose_every_file_is_rejected_stops_prepare_with_the_folder_and_the_reasons(folders, tmp_path):
    """No rejected.csv is written when prepare stops, so the message itself says why the files went."""
    for f in (folders / "tgt" / "test").rglob("*.png"):
        f.write_bytes(b"junk")
    with pytest.raises(DataLayoutError, match=rf"{folders / 'tgt' / 'test'}: no readable images \(\w+/0.png: a text file, not an image .* and \d+ more\); "
                                              "prepare needs at least one in each split"):
        prepare(cfg(folders), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_prepare_keeps_previous_output(folders, tmp_path):
    out = tmp_path / "p"
    prepare(cfg(folders), out)
    before = (out / "manifest.csv").read_text()
    (folders / "tgt" / "test" / "zebra").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "tgt" / "test" / "zebra" / "0.png")
    with pytest.raises(DataLayoutError):
        prepare(cfg(folders), out)
    assert (out / "manifest.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p")] == []


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_any_mode_converts(tmp_path, mode):
    arr = (np.arange(30 * 20) % 256).reshape(20, 30).astype(np.uint8)
    img = Image.fromarray(arr, "L")
    img = Image.fromarray(arr.astype(np.uint16) * 200) if mode == "I;16" else img.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I;16", "CMYK") else "x.png")
    img.save(path)
    for channels in (1, 3):
        out = read_image(path, size=8, channels=channels)
        assert out.shape == (8, 8, channels) and out.dtype == np.uint8
        assert out.max() > 0  # converted, not blanked


def test_deep_images_keep_their_level(tmp_path):
    """16-bit and float values are read by their scale, not stretched over their own range: a flat
    16-bit white stays white (it came out black), and a picture saved as 16-bit or as float in [0, 1]
    decodes as its 8-bit self."""
    pic = np.random.default_rng(0).integers(40, 200, (20, 20)).astype(np.uint8)
    Image.fromarray(pic.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(tmp_path / "white16.png")
    Image.fromarray(pic.astype(np.float32) / 255, "F").save(tmp_path / "unit.tif")
    Image.fromarray(np.full((20, 20), 0.5, np.float32), "F").save(tmp_path / "grey.tif")
    Image.fromarray(pic.astype(np.float32) * 10 - 500, "F").save(tmp_path / "wide.tif")  # no scale: stretched over its range

    def grey(name):
        return read_image(tmp_path / name, size=20, channels=1)[..., 0]

    assert np.array_equal(grey("sixteen.png"), pic) and np.array_equal(grey("unit.tif"), pic)
    assert (grey("white16.png") == 255).all() and (grey("grey.tif") == 128).all()
    wide = grey("wide.tif")
    assert wide.min() == 0 and wide.max() == 255


def test_max_image_pixels_is_the_only_size_limit(tmp_path):
    """data.max_image_pixels decides alone: set above PIL's own decompression-bomb limit (about 179
    million px, which refused this image with PIL's numbers) it reads the image, and a refusal names the key."""
    path = tmp_path / "big.png"
    Image.fromarray(np.full((14000, 14000), 77, np.uint8)).save(path)
    out, size = decode(path, size=16, channels=1, max_pixels=200_000_000)
    assert size == (14000, 14000) and (out == 77).all()
    with pytest.raises(ImageRejected, match=r"too large: 14000x14000 px exceeds 100000000 px \(data\.max_image_pixels; "
                                            r"-S data\.max_image_pixels=196000000 reads it\)"):
        decode(path, size=16, channels=1, max_pixels=100_000_000)
    decode(path, size=16, channels=1)  # the default reads a 200-megapixel phone photo (16320x12240)


def test_read_image_rejects_directory_like_garbage(tmp_path):
    p = tmp_path / "x.jpg"
    p.write_bytes(b"\xff\xd8\xff" + b"\x00" * 10)
    with pytest.raises(ImageRejected):
        read_image(p, size=8, channels=1)


def test_natural_class_order():
    assert sorted(["10", "2", "1"], key=natural_key) == ["1", "2", "10"]


def test_embedded_digits(tmp_path):
    manifest = prepare(PrepareConfig(dataset="digits", root="unused", source="mnist", target="optdigits",
                                     image_size=16, channels=1), tmp_path / "p")
    counts = manifest.groupby(["domain", "split"]).size().to_dict()
    assert counts == {("mnist", "test"): 1000, ("mnist", "train"): 4000, ("optdigits", "test"): 539, ("optdigits", "train"): 1258}
    assert len(choose_few(manifest, 3, seed=0)) == 30
    # target test never overlaps target train (seeded, stratified split of distinct scans)
    t = manifest[manifest.domain == "optdigits"]
    assert t.groupby("split").label.nunique().to_dict() == {"test": 10, "train": 10}


def test_prepare_reads_the_same_with_any_number_of_decoding_threads(folders, tmp_path, monkeypatch):
    """Threads decode files side by side; rows, pixels, reasons and order must not depend on how many."""
    import augment.prepare

    monkeypatch.setattr(augment.prepare, "THREADS_FROM_PIXELS", 0)  # threads even for these 20 px images
    (folders / "src/train/a/broken.png").write_bytes(b"\x89PNG broken")
    (folders / "tgt/test/b/empty.jpg").write_bytes(b"")
    one = prepare(cfg(folders, workers=1), tmp_path / "one")
    three = prepare(cfg(folders, workers=3), tmp_path / "three")
    pd.testing.assert_frame_equal(one, three)
    assert np.array_equal(np.load(tmp_path / "one/pixels.npy"), np.load(tmp_path / "three/pixels.npy"))
    for name in ("rejected.csv", "duplicates.csv", "dataset.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "three" / name).read_bytes()
    assert len(pd.read_csv(tmp_path / "three/rejected.csv")) == 2


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_with_the_same_result(tmp_path, monkeypatch):
    """JPEG's DCT scaling (PIL's draft) for a photo far larger than the output: the pixels stay within
    a grey level of a full decode, the manifest keeps the stored size, and an image too small to
    reduce is decoded whole."""
    import augment.images as images

    y, x = np.mgrid[0:960, 0:1280]
    photo = np.stack([x * 255 // 1279, y * 255 // 959, (x + y) * 255 // 2238], -1).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path, quality=92)
    from PIL import ImageFile

    seen = []  # the size each decode produced
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: (seen.append(im.size), real_load(im))[1])
    fast, stored = images.decode(path, size=32, channels=3)
    assert stored == (1280, 960) and seen[-1] == (160, 120)  # 1/8 scale: still over 3 x 32 on both sides
    monkeypatch.setattr(images, "DRAFT_MARGIN", 10**6)  # no reduction possible: a full decode
    full, _ = images.decode(path, size=32, channels=3)
    assert seen[-1] == (1280, 960)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 1.5
    small = tmp_path / "small.jpg"
    Image.fromarray(photo[:90, :90]).save(small)
    images.decode(small, size=32, channels=3)
    assert seen[-1] == (90, 90)  # under 2 x 3 x 32: not reduced


def test_small_images_are_read_without_threads_and_large_ones_with_them(folders, tmp_path):
    """Threads lose on small images (the Python work around each file holds the GIL): the median
    image of a sample decides, from headers alone."""
    from augment.prepare import THREADS_FROM_PIXELS, decoding_threads

    small, _ = discover(folders, "src", "tgt")  # 20 px PNGs
    assert decoding_threads(small, 4) == 1 and decoding_threads(small, 1) == 1
    big = tmp_path / "big"
    big.mkdir()
    side = int(THREADS_FROM_PIXELS ** 0.5) + 1
    for i in range(5):
        Image.new("RGB", (side, side), (i, 0, 0)).save(big / f"{i}.jpg")
    found = [replace(f, path=big / f"{i % 5}.jpg") for i, f in enumerate(small)]
    assert decoding_threads(found, 4) == 4
    missing = [replace(f, path=tmp_path / "nowhere.png") for f in small]  # no header to read: no threads
    assert decoding_threads(missing, 4) == 1


def test_empty_class_folders_are_named_as_such(folders):
    """A target train split of empty class folders was "an empty folder"; an empty source train class
    folder was not mentioned where its target test class was refused, as if it did not exist."""
    import shutil

    shutil.rmtree(folders / "tgt" / "train")
    for c in ("b", "a"):
        (folders / "tgt" / "train" / c).mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=rf"^{folders / 'tgt' / 'train'}: only empty class folders \(a, b\); expected image files"):
        discover(folders, "src", "tgt")
    (folders / "tgt" / "train" / "a" / "0.png").write_bytes((folders / "tgt" / "test").rglob("*.png").__next__().read_bytes())
    (folders / "src" / "train" / "zebra").mkdir()
    (folders / "tgt" / "test" / "zebra").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folders / "tgt" / "test" / "zebra" / "0.png")
    with pytest.raises(DataLayoutError, match=rf"tgt/test: classes \['zebra'\] have no images in .*src/train.* "
                                              rf"\({re.escape(str(folders / 'src' / 'train' / 'zebra'))} is there but holds no usable image\)"):
        discover(folders, "src", "tgt")


def test_class_names_in_a_list_are_quoted_where_they_would_not_read_back():
    from augment.contract import class_names

    assert class_names(["a", "b c"]) == ["a", "b c"]
    assert class_names(["a", "Vorfahrt: straße"]) == ["'a'", "'Vorfahrt: straße'"]
    assert class_names(["x,y", "z"]) == ["'x,y'", "'z'"]


def test_a_list_cut_short_never_hides_a_single_item_behind_and_1_more():
    """"'16' (3), '17' (4), '18' (4), '19' (4) and 1 more": the one class left out took as many words."""
    from augment.contract import listed, listed_classes

    assert listed(list("abcdef")) == "a, b, c, d, e, f"
    assert listed(list("abcdefg")) == "a, b, c, d, e and 2 more"
    assert listed_classes(["x, y", "b"], counts={"x, y": 3, "b": 4}) == "'x, y' (3), 'b' (4)"


def test_data_classes_keeps_those_classes_in_every_split_and_names_one_not_there(tmp_path):
    """A user asked for a subset of classes without copying folders: the other class folders are not
    read (nor listed as rejected), the kept classes are indexed among themselves, and a name that is
    no source train class stops with the folder, its classes, and the one meant where it is close."""
    root = make_folders(tmp_path / "raw", classes=("01", "02", "Stop", "zz"), flat_target_train=False, per_class=2)
    (root / "src/train/zz/broken.png").write_bytes(b"\x89PNG broken")  # in a class left out: not read, not rejected
    out = tmp_path / "prepared"
    manifest = prepare(cfg(root, classes=("Stop", "02")), out)
    assert sorted(set(manifest.label)) == ["02", "Stop"]
    assert len(manifest) == 2 * 2 * 2 * 2  # 2 classes, 2 splits, 2 domains, 2 each
    assert load_prepared(out).classes == ["02", "Stop"]
    assert sorted(set(zip(manifest.label, manifest.label_index))) == [("02", 0), ("Stop", 1)]
    assert pd.read_csv(out / "rejected.csv").empty
    with pytest.raises(DataLayoutError, match=r"data\.classes: 1, stop not among the class folders of .*src/train "
                                              r"\(01, 02, Stop, zz\); '1' is '01' there; 'stop' is 'Stop' there"):
        discover(root, "src", "tgt", classes=["1", "stop"])
    shutil.rmtree(root / "tgt/test/Stop")
    shutil.rmtree(root / "tgt/test/02")
    with pytest.raises(DataLayoutError, match=r"tgt/test: no image of the classes data\.classes keeps \(02, Stop\)"):
        discover(root, "src", "tgt", classes=["Stop", "02"])


def test_data_classes_keeps_digits_too(tmp_path):
    manifest = prepare(PrepareConfig(dataset="digits", root="unused", source="mnist", target="optdigits", image_size=8, channels=1,
                                     classes=("3", "8")), tmp_path / "p")
    assert set(manifest.label) == {"3", "8"} and set(manifest.label_index) == {0, 1}
    assert (manifest.label_index == manifest.label.map({"3": 0, "8": 1})).all()
