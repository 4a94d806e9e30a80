"""index_raw's list of a data folder (augment/folder_index.py), which `prepare` depends on in place of the folder."""
import json
import os
import shutil
import subprocess
import sys

import yaml

from augment.folder_index import index_domains
from tests.conftest import REPO, add_files_dvc_cannot_hash, make_folders


def _by_path(entries):
    return {e["path"]: e for e in entries}


def _index_stage(tmp_path, root):
    """The real stage process, with a limit: a FIFO opened or /dev/zero read would hang it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(dataset="folders", root=str(root), source="src", target="tgt")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "raw_index.json"
    proc = subprocess.run([sys.executable, "-m", "pipelines.stages.index_raw", "--params", str(tmp_path / "params.yaml"), "--out", str(out), "--cache", str(tmp_path / "cache.json"),
                           "--external", str(tmp_path / "external_files.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_files_that_stop_dvcs_hashing_are_listed_without_being_read(tmp_path):
    root = make_folders(tmp_path / "raw")
    add_files_dvc_cannot_hash(root / "src/train/a")
    index = _index_stage(tmp_path, root)
    got = _by_path(index["entries"])
    assert got["src/train/a/fifo.png"] == {"path": "src/train/a/fifo.png", "kind": "fifo"}
    assert got["src/train/a/zero.png"]["target"] == "outside the data root" and "sha256" not in got["src/train/a/zero.png"]
    assert got["src/train/a/broken.png"]["error"] == "No such file or directory"
    assert "symbolic links" in got["src/train/a/loop1.png"]["error"]
    assert got["src/train/a/caf\udce9.png"]["sha256"] == got["src/train/a/0.png"]["sha256"]
    assert index == _index_stage(tmp_path, root)  # the same list again, from the stat cache or not


def test_the_index_follows_content_not_place_or_clock(tmp_path):
    """Two copies of the same images give the same index (paths are relative, no mtimes), so a
    team's machines share prepare through the run-cache; a touched file changes nothing, a changed
    one its entry."""
    root = make_folders(tmp_path / "a")
    copy = tmp_path / "b"
    shutil.copytree(root, copy)  # new inodes and mtimes
    first = index_domains(root, ["src", "tgt"])
    assert first == index_domains(copy, ["src", "tgt"])
    os.utime(copy / "src/train/a/0.png", (1, 1))
    assert index_domains(copy, ["src", "tgt"]) == first
    shutil.copy(copy / "src/train/a/1.png", copy / "src/train/a/0.png")
    changed = _by_path(index_domains(copy, ["src", "tgt"]))
    assert changed["src/train/a/0.png"]["sha256"] == changed["src/train/a/1.png"]["sha256"] != _by_path(first)["src/train/a/0.png"]["sha256"]


def test_the_stat_cache_never_hides_a_changed_file(tmp_path):
    root = make_folders(tmp_path / "raw")
    cache = tmp_path / "cache.json"
    first = index_domains(root, ["src", "tgt"], cache)
    assert cache.is_file() and index_domains(root, ["src", "tgt"], cache) == first
    img = root / "tgt/test/b/0.png"
    data = bytearray(img.read_bytes())
    data[-1] ^= 0xFF  # same size; the write gives it a new mtime
    img.write_bytes(bytes(data))
    assert _by_path(index_domains(root, ["src", "tgt"], cache))["tgt/test/b/0.png"]["sha256"] != _by_path(first)["tgt/test/b/0.png"]["sha256"]
    # rewritten in place with its mtime put back (`exiftool -P`, `touch -r`): same size, mtime, inode and device
    img = root / "tgt/test/a/1.png"
    before = img.stat()
    data = bytearray(img.read_bytes())
    data[-1] ^= 0xFF
    with open(img, "r+b") as f:
        f.write(bytes(data))
    os.utime(img, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (img.stat().st_size, img.stat().st_mtime_ns, img.stat().st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    again = _by_path(index_domains(root, ["src", "tgt"], cache))["tgt/test/a/1.png"]["sha256"]
    assert again != _by_path(first)["tgt/test/a/1.png"]["sha256"]
    cache.write_text("not json")  # a damaged cache is ignored, not fatal
    assert len(index_domains(root, ["src", "tgt"], cache)) == len(first)


def test_links_are_followed_where_prepare_reads_through_them(tmp_path):
    """A linked file inside the root carries its target's hash; a linked domain folder is walked
    wherever it points (prepare reads through it); a link below it that leaves the root is not."""
    store = make_folders(tmp_path / "store")
    root = tmp_path / "raw"
    root.mkdir()
    (root / "src").symlink_to(store / "src")
    shutil.copytree(store / "tgt", root / "tgt")
    (root / "tgt/test/a/alias.png").symlink_to("0.png")
    (root / "tgt/test/elsewhere").symlink_to(tmp_path)  # a class folder out of the root: never walked
    got = _by_path(index_domains(root, ["src", "tgt"]))
    assert got["src"]["target"] == "folder" and "src/train/a/0.png" in got
    assert got["tgt/test/a/alias.png"]["sha256"] == got["tgt/test/a/0.png"]["sha256"]
    assert got["tgt/test/elsewhere"]["target"] == "outside the data root"
    assert not [p for p in got if p.startswith("tgt/test/elsewhere/")]
    shutil.copy(root / "tgt/test/a/1.png", root / "tgt/test/a/0.png")
    assert _by_path(index_domains(root, ["src", "tgt"]))["tgt/test/a/alias.png"]["sha256"] != got["tgt/test/a/alias.png"]["sha256"]


def test_a_missing_domain_is_an_entry_for_prepare_to_name(tmp_path):
    root = make_folders(tmp_path / "raw")
    assert _by_path(index_domains(root, ["src", "winter"]))["winter"] == {"path": "winter", "kind": "missing"}
    assert index_domains(tmp_path / "nowhere", ["src"]) == [{"path": "src", "kind": "missing"}]


def test_prepare_stops_on_a_file_added_or_rewritten_after_index_raw_listed_the_folder(tmp_path):
    """A file that landed between index_raw and prepare (a nightly upload still copying) was prepared,
    while dvc.lock pinned the listing without it; once it went again, prepare did not re-run and the
    prepared set kept an image that no longer existed."""
    root = make_folders(tmp_path / "raw", per_class=2)
    _index_stage(tmp_path, root)
    shutil.copy(root / "src/train/a/0.png", root / "src/train/a/late_upload.png")
    (root / "tgt/test/b/1.png").write_bytes((root / "tgt/test/c/0.png").read_bytes())
    out = tmp_path / "prepared"

    def prepare_stage():
        return subprocess.run([sys.executable, "-m", "pipelines.stages.prepare", "--params", str(tmp_path / "params.yaml"), "--out", str(out),
                               "--index", str(tmp_path / "raw_index.json"), "--timings-dir", str(tmp_path / "timings")], cwd=REPO, capture_output=True, text=True, timeout=120)

    proc = prepare_stage()
    assert proc.returncode == 2 and not out.exists(), proc.stderr
    assert (f"error: {root}: 2 file(s) changed while the run read the folder, after index_raw listed it moments before "
            "(src/train/a/late_upload.png (added since); tgt/test/b/1.png (changed since)); nothing was prepared.") in proc.stderr
    _index_stage(tmp_path, root)  # the next run lists them first
    assert prepare_stage().returncode == 0 and "late_upload.png" in (out / "manifest.csv").read_text()
