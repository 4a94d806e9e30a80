"""Folders nobody curated: every hostile file is converted correctly or rejected with a reason,
never a crash and never at the cost of a good image; the data root is only read."""
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.check_data import check_data
from augment.contract import DataLayoutError, discover
from augment.dataset import load_prepared
from augment.prepare import PrepareConfig, prepare
from tests.conftest import make_folders

SIZE = 16


def _save(path: Path, img: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _bar(width: int, height: int, mode: str = "L") -> Image.Image:
    """A white bar in the left third: where it ends up shows whether a rotation was applied."""
    a = np.zeros((height, width), np.uint8)
    a[:, : max(1, width // 3)] = 255
    return Image.fromarray(a, "L").convert(mode)


def _corrupt_spider() -> bytes:
    """A SPIDER file whose header says "image 1 of a stack" with no stack: Pillow 10-13's plugin then
    raises AttributeError ('stkoffset') in Image.open, whatever the file's name (the audit's scan.png)."""
    import io
    import struct

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(buf, format="SPIDER")
    data = bytearray(buf.getvalue())
    data[26 * 4 : 27 * 4] = struct.pack("=f", 1.0)  # header word 27, imgnumber (the plugin writes native floats)
    return bytes(data)


def _hostile(root: Path, outside: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile case: (file, expected outcome: "ok" or a piece of the rejection reason)."""
    cls = root / "src" / "train" / "a"
    cases: dict[str, tuple[Path, str]] = {}

    def add(name, path, outcome):
        cases[name] = (path, outcome)

    add("CMYK JPEG", _save(cls / "cmyk.jpg", _bar(20, 20, "CMYK"), format="JPEG"), "ok")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    add("EXIF-rotated JPEG", _save(cls / "rotated.jpg", _bar(24, 12, "RGB"), format="JPEG", exif=exif.tobytes(), quality=95), "ok")
    pal = _bar(20, 20).convert("P")
    add("palette PNG with transparency", _save(cls / "palette.png", pal, transparency=0), "ok")
    frames = [_bar(20, 20, "RGB"), Image.new("RGB", (20, 20), (255, 0, 0))]
    add("animated GIF", _save(cls / "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100), "ok")
    add("multi-frame TIFF", _save(cls / "pages.tiff", frames[0], save_all=True, append_images=frames[1:]), "ok")
    add("1x1 image", _save(cls / "dot.png", Image.new("L", (1, 1), 200)), "ok")
    add("extreme aspect 400x2", _save(cls / "wide.png", Image.new("L", (400, 2), 90)), "ok")
    add("upper-case extension", _save(cls / "SHOUT.PNG", _bar(20, 20), format="PNG"), "ok")
    add("unusual extension (.jfif)", _save(cls / "photo.jfif", _bar(20, 20, "RGB"), format="JPEG"), "ok")
    add("no extension", _save(cls / "noext", _bar(20, 20), format="PNG"), "ok")
    add("spaces and non-ASCII name", _save(cls / "été à Zürich 01.png", _bar(20, 20)), "ok")
    add("nested folder in a class", _save(cls / "2024" / "batch 1" / "deep.png", _bar(20, 20)), "ok")
    add("16-bit PNG", _save(cls / "sixteen.png", Image.fromarray(np.arange(400, dtype=np.uint16).reshape(20, 20) * 100)), "ok")
    ramp = np.linspace(0.0, 1.0, 400, dtype=np.float32).reshape(20, 20)
    add("float32 TIFF (0..1)", _save(cls / "float.tif", Image.fromarray(ramp, "F")), "ok")
    ramp_nan = ramp.copy()
    ramp_nan[3, 4] = np.nan
    add("float32 TIFF with a NaN pixel", _save(cls / "nan.tif", Image.fromarray(ramp_nan, "F")), "not finite")
    add("LAB TIFF", _save(cls / "lab.tif", _bar(20, 20, "RGB").convert("LAB")), "ok")
    add("1-bit PNG", _save(cls / "bilevel.png", _bar(20, 20).convert("1")), "ok")
    (cls / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    add(".DS_Store", cls / ".DS_Store", "hidden file")
    add("hidden image", _save(cls / "._shadow.png", _bar(20, 20)), "hidden file")
    _save(cls / ".cache" / "thumb.png", _bar(20, 20))
    add("hidden folder", cls / ".cache", "hidden folder")
    (cls / "zero.png").write_bytes(b"")
    add("zero-byte file", cls / "zero.png", "zero-byte")
    good = (cls / "0.png").read_bytes()
    (cls / "half.png").write_bytes(good[: len(good) // 2])
    add("truncated PNG (half-synced upload)", cls / "half.png", "unreadable: truncated (the file ends before its image does")
    (cls / "readme.txt").write_text("notes, not an image")
    add("text file", cls / "readme.txt", "a text file, not an image (notes, annotations or metadata beside the images are not read)")
    (cls / "IMG_0001.AAE").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict/></plist>\n')
    add("a phone's edit sidecar (.AAE)", cls / "IMG_0001.AAE", "a text file, not an image")
    (cls / "Thumbs.db").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))  # Windows' thumbnail cache (OLE)
    add("Thumbs.db", cls / "Thumbs.db", "not an image (unidentified format)")
    (cls / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))  # an iPhone photo's header
    add("HEIC photo", cls / "IMG_0001.HEIC", "a HEIC/HEIF photo (phones' default format), which this reader cannot decode; convert it to PNG or JPEG")
    (cls / "clip.mp4").write_bytes(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41" + bytes(64))
    add("video", cls / "clip.mp4", "a video (MP4, MOV), not a still image")
    os.symlink(cls / "does-not-exist.png", cls / "broken.png")
    add("broken symlink", cls / "broken.png", "broken symlink")
    os.symlink(cls / "loop_b.png", cls / "loop_a.png")
    os.symlink(cls / "loop_a.png", cls / "loop_b.png")
    add("symlink loop", cls / "loop_a.png", "symlink loop")
    _save(outside / "elsewhere.png", _bar(20, 20))
    os.symlink(outside / "elsewhere.png", cls / "outside.png")
    add("symlink out of the data root", cls / "outside.png", "out of the data root")
    os.symlink(cls / "0.png", cls / "inside_link.png")
    add("symlink inside the data root", cls / "inside_link.png", "ok")
    os.symlink(outside, cls / "linked_dir")
    add("symlinked folder", cls / "linked_dir", "symlinked folder")
    os.mkfifo(cls / "pipe.png")  # opened, it would wait for a writer forever
    add("FIFO", cls / "pipe.png", "not a regular file (FIFO)")
    (cls / "scan.png").write_bytes(_corrupt_spider())
    add("SPIDER header Pillow trips on (AttributeError)", cls / "scan.png", "AttributeError")
    # The same bytes in source train and source test: reported, kept.
    dup = root / "src" / "test" / "a" / "dup_of_train.png"
    dup.write_bytes(good)
    add("byte-identical train/test duplicate", dup, "ok")
    # The same bytes filed under another class: one image, two labels; reported, kept.
    twin = root / "src" / "train" / "b" / "twin_of_a.png"
    twin.write_bytes(good)
    add("byte-identical file under another class", twin, "ok")
    return cases


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(here) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _make_read_only(root: Path) -> None:
    for here, dirs, files in os.walk(root):
        for name in files + dirs:
            p = Path(here) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    root.chmod(root.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture()
def hostile(tmp_path):
    root = make_folders(tmp_path / "raw")
    good = {str(p) for p in root.rglob("*.png")}
    cases = _hostile(root, tmp_path / "outside")
    _make_read_only(root)
    yield root, cases, good
    for here, dirs, files in os.walk(root):  # let pytest clean up
        Path(here).chmod(0o755)


def test_hostile_files_are_converted_or_rejected_with_a_reason_and_the_root_is_only_read(hostile, tmp_path):
    root, cases, good = hostile
    before = _snapshot(root)
    cfg = PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=SIZE, channels=3)
    manifest = prepare(cfg, tmp_path / "prepared")
    assert _snapshot(root) == before  # nothing written, moved or touched in the data root

    rejected = pd.read_csv(tmp_path / "prepared" / "rejected.csv")
    reasons = dict(zip(rejected.source_path, rejected.reason))
    kept = set(manifest.source_path)
    table = []
    for name, (path, expected) in cases.items():
        if expected == "ok":
            assert str(path) in kept, f"{name}: {path} should be converted, got {reasons.get(str(path))!r}"
            outcome = "converted"
        else:
            assert str(path) in reasons, f"{name}: {path} should be rejected ({expected})"
            assert expected in reasons[str(path)], f"{name}: reason {reasons[str(path)]!r} lacks {expected!r}"
            outcome = f"rejected: {reasons[str(path)]}"
        table.append((name, outcome))
    assert good <= kept  # no hostile file cost a good image
    assert not (set(reasons) & kept)

    # Converted correctly, not only accepted.
    data = load_prepared(tmp_path / "prepared")
    px = {p: data.pixels[i] for i, p in enumerate(manifest.source_path)}
    rotated = px[str(cases["EXIF-rotated JPEG"][0])].mean(axis=2)
    # Stored 24x12 with the bar on the left; displayed (rotated 90 clockwise) the bar is on top.
    assert rotated[: SIZE // 3].mean() > 150 and rotated[-SIZE // 3 :].mean() < 60
    gif = px[str(cases["animated GIF"][0])]
    assert gif[:, : SIZE // 4, 0].mean() > 150 and gif[:, -SIZE // 4 :, :].mean() < 60  # the first frame, not the red one
    assert px[str(cases["16-bit PNG"][0])].std() > 20  # scaled by 65535, not clipped to white
    assert px[str(cases["float32 TIFF (0..1)"][0])].std() > 20  # not rounded to black
    lab = px[str(cases["LAB TIFF"][0])].mean(axis=2)
    assert lab[:, :4].mean() > 200 and lab[:, -4:].mean() < 30  # the bar survives the LAB -> RGB conversion
    dups = pd.read_csv(tmp_path / "prepared" / "duplicates.csv")
    assert str(cases["byte-identical train/test duplicate"][0]) in set(dups.source_path)
    assert set(dups.split) == {"train", "test"}
    clash = pd.read_csv(tmp_path / "prepared" / "label_conflicts.csv")
    twin = str(cases["byte-identical file under another class"][0])
    assert twin in set(clash.source_path) and set(clash.label.astype(str)) == {"a", "b"} and clash.picture.nunique() == 1

    # check-data finds the same rejections, for the same reasons, and the duplicates.
    check = check_data(root, "src", "tgt", image_size=SIZE, channels=3)
    assert check.ok and dict(check.rejected) == reasons
    assert any(str(cases["byte-identical train/test duplicate"][0]) in dict(group) for group in check.duplicates)
    assert len(check.conflicts) == 1 and dict(check.conflicts[0])[twin] == "b" and set(dict(check.conflicts[0]).values()) == {"a", "b"}
    said = "\n".join(check.lines())
    assert f"label conflicts: 1 image(s) filed under different classes ({len(check.conflicts[0])} files with identical pixels;" in said
    dup_files = sum(map(len, check.duplicates))  # the header counted files while a line per image followed
    assert f"duplicates: {len(check.duplicates)} image(s) in both a train and a test split ({dup_files} files with identical pixels;" in said
    # one line per image, its copies side by side: the two labels are read together
    assert [line for line in said.splitlines() if f"{twin} (b)" in line] == ["  " + " = ".join(f"{p} ({c})" for p, c in check.conflicts[0])]
    print("\n" + "\n".join(f"| {name} | {outcome} |" for name, outcome in table))


_AS_USER = """
import sys
from pathlib import Path
from augment.check_data import check_data
from augment.prepare import PrepareConfig, prepare
root, out = Path(sys.argv[1]), Path(sys.argv[2])
prepare(PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=16, channels=1), out)
check = check_data(root, "src", "tgt", image_size=16, channels=1)
print(f"CHECK ok={check.ok} rejected={dict(check.rejected)!r}")
"""


def test_unreadable_permissions_are_rejected_not_fatal(tmp_path):
    """A file the user may not read, and a class folder or a folder inside one the user may not list,
    are rejected with the reason; the run goes on. Root reads every file whatever its mode, so as root
    the run is made without the capabilities that let it."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    cmd = [sys.executable, "-c", _AS_USER, str(tmp_path / "raw"), str(tmp_path / "p")]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root this test needs util-linux's setpriv to drop the file-access capabilities")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    root = make_folders(tmp_path / "raw")
    _png(root / "src" / "train" / "b" / "sub" / "0.png")
    images = len(list(root.rglob("*.png")))
    locked = next((root / "src" / "train" / "a").glob("*.png"))
    folders = [root / "src" / "train" / "b" / "sub", root / "tgt" / "test" / "c"]  # 1 and 6 images
    for p in [locked, *folders]:
        p.chmod(0)
    try:
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        for p in folders:
            p.chmod(0o755)
    assert run.returncode == 0, run.stderr
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    reasons = dict(zip(rejected.source_path, rejected.reason))
    assert sorted(reasons) == sorted(map(str, [locked, *folders])) and "ermission" in reasons[str(locked)]
    assert all(reasons[str(p)] == "folder not readable: [Errno 13] Permission denied" for p in folders)
    assert "CHECK ok=True" in run.stdout and all(str(p) in run.stdout for p in [locked, *folders])
    assert len(pd.read_csv(tmp_path / "p" / "manifest.csv")) == images - 1 - 1 - 6


@pytest.mark.parametrize("channels", [1, 3])
def test_a_lab_tiff_reaches_either_channel_count(tmp_path, channels):
    """PIL turns LAB into RGB but not into grey: it passes through RGB, rather than being rejected
    for one channel count and kept for the other."""
    from augment.images import read_image

    path = _save(tmp_path / "lab.tif", _bar(24, 24, "RGB").convert("LAB"))
    grey = read_image(path, size=SIZE, channels=channels).mean(axis=2)
    assert grey[:, :4].mean() > 200 and grey[:, -4:].mean() < 30


def _png(path: Path) -> Path:
    return _save(path, _bar(8, 8))


def _prepare(root: Path, out: Path):
    return prepare(PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=SIZE, channels=1), out)


def test_file_names_that_are_not_utf8_are_written_as_escapes(tmp_path):
    """A name in Latin-1 bytes (b'caf\\xe9.png', held by Python as 'caf\\udce9.png') is read like any
    other; the manifests say it as 'caf\\xe9', so they stay valid UTF-8."""
    root = make_folders(tmp_path / "raw", per_class=2)
    _png(root / "src" / "train" / "a" / os.fsdecode(b"caf\xe9.png"))
    (root / "src" / "train" / "a" / os.fsdecode(b"notes\xe9.txt")).write_text("not an image")
    _png(root / "src" / "train" / os.fsdecode(b"\xe9t\xe9") / "0.png")  # a class folder named so
    manifest = _prepare(root, tmp_path / "p")
    for name in ("manifest.csv", "rejected.csv", "dataset.json"):
        (tmp_path / "p" / name).read_bytes().decode("utf-8")  # strict
    assert str(root / "src/train/a/caf\\xe9.png") in set(pd.read_csv(tmp_path / "p" / "manifest.csv").source_path)
    assert list(pd.read_csv(tmp_path / "p" / "rejected.csv").source_path) == [str(root / "src/train/a/notes\\xe9.txt")]
    assert "\\xe9t\\xe9" in set(manifest.label) and all((tmp_path / "p" / p).is_file() for p in manifest.path)


@pytest.mark.parametrize("junk", [".DS_Store", "notes.txt"])
def test_a_class_folder_without_a_usable_source_train_image_stops_naming_it(tmp_path, junk):
    """Classes are those with a decoded source train image; a folder holding only junk is none, and a
    target test class of that name has nothing to learn from. A folder holding only hidden files is an
    empty one, passed over: the target test class is then the one named."""
    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src" / "train" / "d").mkdir()
    (root / "src" / "train" / "d" / junk).write_bytes(b"\x00\x00\x00\x01Bud1")
    _png(root / "tgt" / "test" / "d" / "0.png")
    message = re.escape(f"{root / 'src' / 'train' / 'd'}: no usable image ({junk}: " if junk != ".DS_Store" else
                        f"{root / 'tgt' / 'test'}: classes ['d'] have no images in {root / 'src' / 'train'}")
    with pytest.raises(DataLayoutError, match=message):
        _prepare(root, tmp_path / "p")
    check = check_data(root, "src", "tgt", image_size=SIZE, channels=1)
    assert not check.ok and re.match(message, check.problems[0])


@pytest.mark.parametrize("locked, outcome", [("src/test", "stop"), ("tgt", "stop"), ("tgt/test/b", "rejected"), ("src/train/a/sub", "rejected")])
def test_folders_that_cannot_be_listed_are_rejected_or_stop_by_name(folders, tmp_path, monkeypatch, locked, outcome):
    """What os.scandir raises for a folder the user may not list (EACCES), without needing a user
    who may not: a class folder or one inside it is a rejected.csv row, a split or domain stops.
    test_unreadable_permissions_are_rejected_not_fatal makes the kernel refuse for real."""
    import errno

    from augment import contract

    _png(folders / "src" / "train" / "a" / "sub" / "0.png")
    children = contract._children

    def refusing(folder):
        if Path(folder) == folders / locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return children(folder)

    monkeypatch.setattr(contract, "_children", refusing)
    reason = "folder not readable: [Errno 13] Permission denied"
    if outcome == "stop":
        with pytest.raises(DataLayoutError, match=re.escape(f"{folders / locked}: {reason}")):
            discover(folders, "src", "tgt")
        return
    _prepare(folders, tmp_path / "p")
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    assert list(zip(rejected.source_path, rejected.reason)) == [(str(folders / locked), reason)]


def test_symlinked_and_hidden_folders_are_listed_at_every_level(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src" / "test" / "c").rename(root / "store_c")
    os.symlink("../../store_c", root / "src" / "test" / "c")  # a class folder
    _png(root / "src" / "train" / ".x" / "0.png")  # a hidden class folder
    manifest = _prepare(root, tmp_path / "p")
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    assert dict(zip(rejected.source_path, rejected.reason)) == {
        str(root / "src/test/c"): "symlinked folder, not followed", str(root / "src/train/.x"): "hidden folder, not searched"}
    assert not manifest.source_path.str.contains("store_c|/.x/").any()
    # Every class folder of a split a symlink: the message says so, not only "no class folders".
    for c in ("a", "b", "c"):
        (root / "tgt" / "test" / c).rename(root / f"tgt_{c}")
        os.symlink(f"../../tgt_{c}", root / "tgt" / "test" / c)
    with pytest.raises(DataLayoutError, match=r"tgt/test: no class folders.*not searched: a \(symlinked folder, not followed\), b "):
        discover(root, "src", "tgt")
    (root / "src" / "test").rename(root / "src_test")  # a symlinked split
    os.symlink("../src_test", root / "src" / "test")
    with pytest.raises(DataLayoutError, match=r"src/test: a symlinked folder; symlinked folders are not followed"):
        discover(root, "src", "tgt")


def test_a_nas_s_thumbnail_folders_and_an_archive_s_metadata_are_not_images_nor_classes(tmp_path):
    """A Synology NAS writes @eaDir/<image>/SYNOFILE_THUMB_*.jpg beside every image: read as the class's
    images, each test image counted six times, and @eaDir at split level became a class."""
    root = make_folders(tmp_path / "raw", per_class=2)
    for image in list(root.rglob("*.png")):
        for size in ("XL", "M"):
            thumb = image.parent / "@eaDir" / image.name / f"SYNOFILE_THUMB_{size}.jpg"
            thumb.parent.mkdir(parents=True, exist_ok=True)
            Image.open(image).convert("RGB").save(thumb)
    _png(root / "src/train/@eaDir/a.png/SYNOFILE_THUMB_S.jpg")  # at split level: no class
    _png(root / "tgt/test/__MACOSX/a/0.png")
    _png(root / "tgt/train/#recycle/old.png")
    manifest = _prepare(root, tmp_path / "p")
    assert len(manifest) == 2 * 3 * 2 * 2 and load_prepared(tmp_path / "p").classes == ["a", "b", "c"]
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    assert set(rejected.reason) == {"a NAS's, an archive's or a file system's own folder (thumbnails, metadata, a recycle bin), not searched"}
    assert str(root / "tgt/test/__MACOSX") in set(rejected.source_path) and str(root / "src/test/a/@eaDir") in set(rejected.source_path)
    checked = check_data(root, "src", "tgt")
    assert checked.ok and checked.classes == ["a", "b", "c"] and not any("empty class folder" in n for n in checked.notes), checked.notes


def test_a_link_inside_a_linked_domain_may_point_inside_that_domain(tmp_path):
    """A domain folder may be a link to elsewhere; a link inside it to an image of its own was refused
    as "out of the data root" while the image itself was read. Out of both, it still is."""
    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src").rename(tmp_path / "src_elsewhere")
    os.symlink(tmp_path / "src_elsewhere", root / "src")
    os.symlink("0.png", root / "src" / "train" / "a" / "again.png")
    os.symlink(tmp_path / "raw.png", root / "src" / "train" / "a" / "out.png")
    _png(tmp_path / "raw.png")
    manifest = _prepare(root, tmp_path / "p")
    assert str(root / "src/train/a/again.png") in set(manifest.source_path)
    rejected = pd.read_csv(tmp_path / "p" / "rejected.csv")
    assert list(rejected.source_path) == [str(root / "src/train/a/out.png")] and "out of the data root" in rejected.reason[0]


def test_source_and_target_that_are_one_folder_stop(tmp_path):
    """The two names passed the check that they differ while one linked to the other: every arm then
    measured the source against itself, without a word."""
    root = make_folders(tmp_path / "raw", per_class=2)
    shutil.rmtree(root / "tgt")
    os.symlink("src", root / "tgt")
    message = re.escape(f"{root / 'tgt'}: the same folder as {root / 'src'} (data.source='src', data.target='tgt'; one is a link")
    with pytest.raises(DataLayoutError, match=message):
        _prepare(root, tmp_path / "p")
    check = check_data(root, "src", "tgt", image_size=SIZE, channels=1)
    assert not check.ok and re.match(message, check.problems[0])


@pytest.mark.parametrize("where", ["tgt/test", "src/train"])
def test_two_class_names_that_print_the_same_stop_naming_both(tmp_path, where):
    """A folder named with the Latin-1 byte b'caf\\xe9' prints as 'caf\\xe9', and so does one named with
    those characters typed out. Across splits the target test images were filed under the source
    class without a word; in one split the message blamed Unicode composition (which
    tests/test_contract.py's composed and decomposed names still get)."""
    root = make_folders(tmp_path / "raw", per_class=2)
    _png(root / "src" / "train" / os.fsdecode(b"caf\xe9") / "0.png")
    _png(root / where / "caf\\xe9" / "0.png")
    with pytest.raises(DataLayoutError, match=r"two class folders whose names print as the same label 'caf\\\\xe9': one has bytes "
                                              r"that are not UTF-8.*Rename one of them"):
        discover(root, "src", "tgt")


def test_class_order_is_total_and_takes_any_unicode_digit_as_text():
    """Natural order with ties broken by the name: '1' and '01' (or 'a1' and 'a01') compare equal as
    numbers, and the order of a set of class names (label_index) changed with PYTHONHASHSEED.
    Digits Python's str.isdigit accepts but int() refuses ('①', '²') are text, not a crash; so are
    other scripts' decimal digits ('٣'), which int() would take."""
    from itertools import permutations

    from augment.contract import natural_key

    names = ["a01", "1", "01", "a1", "10", "2"]
    orders = {tuple(sorted(p, key=natural_key)) for p in permutations(names)}
    assert orders == {("01", "1", "2", "10", "a01", "a1")}
    assert sorted(["①", "²", "b", "٣", "3"], key=natural_key) == ["3", "b", "²", "٣", "①"]  # only ASCII digits are numbers


def test_prepare_stage_counts_rejected_rows_and_a_domain_that_is_a_file_is_named(tmp_path, capsys):
    import yaml

    from pipelines.stages.prepare import main

    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src" / "train" / "a" / "two\nlines.txt").write_text("not an image")  # one row, two lines in rejected.csv
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"dataset": "folders", "root": str(root), "source": "src", "target": "tgt"},
                                      "classifier": {"arms": ["source_only"]}}))
    main(["--params", str(params), "--out", str(tmp_path / "p"), "--timings-dir", str(tmp_path / "t")])
    assert "; 1 rejected ->" in capsys.readouterr().out
    import shutil

    shutil.rmtree(root / "tgt")
    (root / "tgt").write_text("not a folder")
    with pytest.raises(DataLayoutError, match=r"tgt: a file, not a folder \(data.target='tgt'\)"):
        discover(root, "src", "tgt")


def _tiff(path: Path, pixels: np.ndarray, sample_format: int) -> Path:
    """An uncompressed little-endian TIFF of `pixels` (height x width [x channels]) with the given
    SampleFormat (1 unsigned, 3 float): PIL writes neither unsigned 32-bit nor float colour ones."""
    import struct

    pixels = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<"))
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    tags = {256: [width], 257: [height], 258: [pixels.itemsize * 8] * channels, 259: [1], 262: [1 if channels == 1 else 2],
            273: [0], 277: [channels], 278: [height], 279: [pixels.nbytes], 339: [sample_format] * channels}
    packed = {tag: struct.pack(f"<{len(v)}{'I' if tag in (256, 257, 273, 278, 279) else 'H'}", *v) for tag, v in tags.items()}
    ifd_end = 8 + 2 + 12 * len(tags) + 4
    packed[273] = struct.pack("<I", ifd_end + sum(len(raw) for raw in packed.values() if len(raw) > 4))  # the pixels, last
    extra, entries = b"", b""
    for tag, raw in sorted(packed.items()):
        head = struct.pack("<HHI", tag, 4 if tag in (256, 257, 273, 278, 279) else 3, len(tags[tag]))
        if len(raw) > 4:  # a value longer than 4 bytes lies after the directory, which holds its offset
            entries += head + struct.pack("<I", ifd_end + len(extra))
            extra += raw
        else:
            entries += head + raw.ljust(4, b"\0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"II*\0" + struct.pack("<IH", 8, len(tags)) + entries + b"\0\0\0\0" + extra + pixels.tobytes())
    return path


def test_unsigned_32bit_tiffs_read_unsigned_and_undecodable_tiffs_say_what_they_hold(tmp_path):
    """PIL holds an unsigned 32-bit TIFF in its signed mode: a ramp over 0..4e9 wrapped to negative
    halfway and came out as two ramps. A float colour or 64-bit TIFF, which PIL does not decode, was
    "not an image (unidentified format)": now the reason says what it holds and how to save it."""
    from augment.images import ImageRejected, read_image

    ramp = np.tile(np.linspace(0, 4_000_000_000, 16).astype(np.uint32), (16, 1))
    row = read_image(_tiff(tmp_path / "u32.tif", ramp, 1), size=SIZE, channels=1)[0, :, 0].astype(int)
    assert (np.diff(row) > 0).all() and row[0] == 0 and row[-1] == 255, row
    for name, pixels, says in [("rgb.tif", np.ones((8, 8, 3), np.float32), "3 channels of 32-bit float values"),
                               ("f64.tif", np.ones((8, 8), np.float64), "1 channel of 64-bit float values")]:
        with pytest.raises(ImageRejected, match=f"^a TIFF this reader cannot decode \\({says}\\); save it with 8- or 16-bit"):
            read_image(_tiff(tmp_path / name, pixels, 3), size=SIZE, channels=3)


def test_files_of_formats_people_export_but_no_decoder_reads_say_what_they_are_and_how_to_save_them(tmp_path):
    """A phone's HEIC photo, a JPEG XL, an SVG, a PDF, a video or a zipped folder were all "not an
    image (unidentified format)": the user could not tell a format to convert from a broken file."""
    import zipfile

    from augment.images import ImageRejected, read_image

    with zipfile.ZipFile(tmp_path / "batch.zip", "w") as z:
        z.writestr("a/0.png", b"...")
    (tmp_path / "scan.jxl").write_bytes(b"\xff\x0a\xfa\x7f" + bytes(32))
    (tmp_path / "box.jxl").write_bytes(b"\0\0\0\x0cJXL \r\n\x87\n" + bytes(32))  # the container form
    (tmp_path / "sign.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')
    (tmp_path / "page.pdf").write_bytes(b"%PDF-1.7\n" + bytes(32))
    (tmp_path / "frame.heic").write_bytes(b"\0\0\0\x1cftypheix\0\0\0\0mif1heixmiaf" + bytes(32))
    (tmp_path / "ride.mov").write_bytes(b"\0\0\0\x14ftypqt  \0\0\x02\0qt  " + bytes(32))
    (tmp_path / "notes.txt").write_text("<b>a note</b> mentioning <svg> in passing")
    (tmp_path / "labels.json").write_text('{"sign": "stop, yield", "note": "\u00dcberholverbot"}')
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 3)
    (tmp_path / "logo.eps").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")  # Pillow would run Ghostscript on it
    said = {}
    for path in sorted(tmp_path.iterdir()):
        with pytest.raises(ImageRejected) as refused:
            read_image(path, size=SIZE, channels=3)
        said[path.name] = str(refused.value)
    convert = ", which this reader cannot decode; convert it to PNG or JPEG"
    TEXT = "a text file, not an image (notes, annotations or metadata beside the images are not read)"
    assert said == {"batch.zip": "a ZIP archive, not an image: unpack it into the class folders",
                    "box.jxl": "a JPEG XL image" + convert, "scan.jxl": "a JPEG XL image" + convert,
                    "sign.svg": "an SVG drawing (vector graphics)" + convert, "page.pdf": "a PDF document" + convert,
                    "frame.heic": "a HEIC/HEIF photo (phones' default format)" + convert,
                    "ride.mov": "a video (MP4, MOV), not a still image: save frames of it as PNG or JPEG",
                    "notes.txt": TEXT, "labels.json": TEXT, "blob.bin": "not an image (unidentified format)",
                    "logo.eps": "a PostScript/EPS drawing, which this reader does not run; export it as PNG"}


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "I;16"])
def test_a_pngs_transparency_key_is_composited_over_black_as_alpha_is(tmp_path, mode):
    """A PNG may mark one grey level or colour transparent (its tRNS key) instead of storing alpha:
    those pixels were read as stored (white here), while the same image with alpha came out black."""
    from augment.images import read_image

    white = {"1": 1, "L": 255, "RGB": (255, 255, 255), "I;16": 65535}[mode]
    img = _bar(12, 12, "RGB" if mode == "RGB" else "L")  # white bar on black; the white is keyed transparent
    if mode == "1":
        img = img.convert("1")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img, np.uint16) * 257)
    path = _save(tmp_path / "keyed.png", img, transparency=white)
    with Image.open(path) as stored:
        assert stored.mode == mode and "transparency" in stored.info
    with_alpha = _save(tmp_path / "alpha.png", Image.new("LA", (12, 12), (255, 0)))
    for channels in (1, 3):
        assert read_image(path, size=SIZE, channels=channels).max() == 0
        assert read_image(with_alpha, size=SIZE, channels=channels).max() == 0
    unkeyed = _save(tmp_path / "plain.png", img)
    assert read_image(unkeyed, size=SIZE, channels=1).max() == 255


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB"])
def test_every_exif_orientation_reads_upright_for_grey_deep_and_colour_tiffs_and_pngs(tmp_path, mode):
    """A grey TIFF turned 90 degrees (orientation 5-8) read as stripes of the wrong width (Pillow maps a
    raw grey TIFF opened by name at its turned size), and a 16-bit PNG's orientation was lost with its
    EXIF when it became 8-bit; both were accepted without a word."""
    from augment.images import read_image

    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (12, 24), dtype=np.uint8)
    turn = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud, 5: np.transpose, 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(a, 2).T, 8: lambda a: np.rot90(a, 1)}

    def image(a: np.ndarray) -> Image.Image:
        a = np.ascontiguousarray(a)
        return {"L": lambda: Image.fromarray(a), "I;16": lambda: Image.fromarray(a.astype(np.uint16) * 257),
                "RGB": lambda: Image.fromarray(np.stack([a, 255 - a, a // 2], -1))}[mode]()

    for orientation, upright in turn.items():
        image(upright(stored)).save(tmp_path / "upright.png")  # as it is shown: no tag to apply
        want = read_image(tmp_path / "upright.png", size=16, channels=3)
        exif = Image.Exif()
        exif[0x0112] = orientation
        image(stored).save(tmp_path / "tagged.tif", tiffinfo={274: orientation})
        image(stored).save(tmp_path / "tagged.png", exif=exif.tobytes())
        for name in ("tagged.tif", "tagged.png"):
            assert np.array_equal(read_image(tmp_path / name, size=16, channels=3), want), (name, orientation)


def test_a_domain_folder_whose_accents_are_stored_decomposed_is_named_as_the_one_meant(tmp_path):
    """'été' missing, with 'été' among the domains present: the folder's name was stored decomposed (NFD)."""
    import unicodedata

    root = make_folders(tmp_path / "raw", per_class=1)
    (root / "src").rename(root / unicodedata.normalize("NFD", "été"))
    with pytest.raises(DataLayoutError, match=r"missing \(data\.source='été'\).*'e\\u0301te\\u0301' against '\\xe9t\\xe9'.*rename"):
        discover(root, unicodedata.normalize("NFC", "été"), "tgt")


def test_a_picture_a_test_split_holds_twice_is_found_and_named(tmp_path):
    """A copy, a hard link and a link to a file beside it in one target test class: 7 images counted, 4
    pictures, and nothing said (only copies across train and test were looked for)."""
    from augment.prepare import test_repeats

    root = make_folders(tmp_path / "raw", per_class=4)
    b = root / "tgt/test/b"
    shutil.copy(b / "0.png", b / "copy.png")
    os.link(b / "1.png", b / "hard.png")
    os.symlink("2.png", b / "link.png")
    out = tmp_path / "p"
    manifest = _prepare(root, out)
    repeats = pd.read_csv(out / "repeats.csv")
    assert sorted(Path(p).name for p in repeats.source_path) == ["0.png", "1.png", "2.png", "copy.png", "hard.png", "link.png"]
    assert int(repeats[["domain", "picture"]].duplicated().sum()) == 3 and test_repeats(manifest[manifest.split == "train"]).empty
    said = check_data(root, "src", "tgt")
    assert said.ok and any(n.startswith("3 test image(s) repeated within their split, identical pixels (e.g. ") for n in said.notes), said.notes
    from augment.report import data_files_warnings

    assert data_files_warnings({"target_test_repeats": 3})[0].startswith("Target test images counted twice: 3 target test image(s)")


def test_a_picture_saved_again_as_another_file_is_the_same_picture(tmp_path):
    """Not only byte-identical copies: a train picture saved again as a BMP in a test split, a source picture
    saved with a text chunk of metadata as a target test image, and a test picture re-saved as a grey PNG
    under another class are each one picture (their files' sha256 all differ), found by prepare, check-data
    and evaluate's counts; the other images, all different pictures, are none of these."""
    from augment.prepare import domain_copies, label_conflicts, test_repeats, train_test_duplicates
    from PIL import PngImagePlugin

    root = make_folders(tmp_path / "raw", per_class=3)
    Image.open(root / "src/train/a/1.png").save(root / "src/test/a/resaved.bmp")  # train and test
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Software", "an editor")
    Image.open(root / "src/test/b/1.png").save(root / "tgt/test/b/tagged.png", pnginfo=meta)  # both domains
    Image.open(root / "tgt/test/c/2.png").convert("L").save(root / "tgt/test/a/grey.png")  # two labels, and twice in one test split
    out = tmp_path / "p"
    manifest = _prepare(root, out)
    assert manifest.sha256.is_unique and manifest.picture.nunique() == len(manifest) - 3
    named = {Path(p).name for p in pd.read_csv(out / "duplicates.csv").source_path}
    assert named == {"1.png", "resaved.bmp"}
    copies = pd.read_csv(out / "domain_copies.csv")
    assert sorted(copies.source_path.map(lambda p: Path(p).parent.parent.parent.name + "/" + Path(p).name)) == ["src/1.png", "tgt/tagged.png"]
    clash = pd.read_csv(out / "label_conflicts.csv", dtype=str)
    assert sorted(zip(clash.label, clash.source_path.map(lambda p: Path(p).name))) == [("a", "grey.png"), ("c", "2.png")]
    assert len(pd.read_csv(out / "repeats.csv")) == 2
    for rows in (train_test_duplicates(manifest), domain_copies(manifest), label_conflicts(manifest), test_repeats(manifest)):
        assert rows.picture.nunique() == 1 and rows.sha256.nunique() == 2
    check = check_data(root, "src", "tgt", image_size=SIZE, channels=1)
    assert [sorted(Path(f).name for f, _ in g) for g in check.duplicates] == [["1.png", "resaved.bmp"]]
    assert check.copied == 1 and len(check.conflicts) == 1


def test_colour_profiles_srgb_converts_what_a_file_embeds_and_as_stored_reads_its_values(tmp_path):
    """data.colour_profiles: a file tagged with a wide-gamut profile (Adobe RGB's primaries) is read as its
    stored values by default, and converted to sRGB under srgb, by prepare too; an untagged file and one
    whose profile cannot be read are read as stored either way."""
    from augment.images import read_image
    from tests.conftest import rgb_profile

    olive = (100, 150, 50)
    files = {"wide.png": rgb_profile("Adobe-like RGB"), "wide.jpg": rgb_profile("Adobe-like RGB"), "plain.png": None,
             "broken.png": b"not a colour profile"}
    for name, icc in files.items():
        options = {"icc_profile": icc} if icc else {}
        Image.new("RGB", (16, 16), olive).save(tmp_path / name, **options, **({"quality": 100} if name.endswith("jpg") else {}))
    for name in files:
        stored = read_image(tmp_path / name, size=8, channels=3)[0, 0].astype(int)
        converted = read_image(tmp_path / name, size=8, channels=3, colour_profiles="srgb")[0, 0].astype(int)
        assert np.abs(stored - olive).max() <= 2, (name, stored)
        if name.startswith("wide"):  # LittleCMS: (100, 150, 50) in Adobe RGB is (66, 151, 34) in sRGB
            assert np.abs(converted - (66, 151, 34)).max() <= 3, (name, converted)
        else:
            assert (converted == stored).all(), name
    with pytest.raises(ValueError, match="colour_profiles must be one of as_stored, srgb"):
        read_image(tmp_path / "plain.png", size=8, channels=3, colour_profiles="p3")
    root = make_folders(tmp_path / "raw", per_class=2)
    Image.new("RGB", (16, 16), olive).save(root / "tgt/test/a/0.png", icc_profile=rgb_profile("Adobe-like RGB"))
    for how, want in (("as_stored", olive), ("srgb", (66, 151, 34))):
        manifest = prepare(PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=8, channels=3,
                                         colour_profiles=how), tmp_path / how)
        row = manifest.index[manifest.source_path == str(root / "tgt/test/a/0.png")][0]
        got = load_prepared(tmp_path / how).pixels[row][0, 0].astype(int)
        assert np.abs(got - want).max() <= 3, (how, got)
