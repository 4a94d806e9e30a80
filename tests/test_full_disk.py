"""A write that finds no room (a full disk, a quota, a file size limit) ends a stage with one line that
names the output, and the output from before stays whole."""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from augment.io import NoSpace, atomic_dir, atomic_path, save_torch
from tests.conftest import REPO

DEV_FULL = Path("/dev/full")  # Linux: every write to it fails with ENOSPC, as on a full disk
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")


def _write_to_a_full_disk() -> None:
    with open(DEV_FULL, "wb") as full:
        full.write(b"x" * (1 << 16))


def _left_beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@needs_dev_full
def test_a_full_disk_while_a_folder_is_written_names_it_and_keeps_the_previous_one(tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "pixels.npy").write_text("the last good output")
    with pytest.raises(NoSpace) as err:
        with atomic_dir(out) as tmp:
            (tmp / "manifest.csv").write_text("path,label\n")
            _write_to_a_full_disk()
    message = str(err.value)
    assert message.startswith(f"{out}: no space left on device after ")
    assert "free some space and run again" in message
    assert (out / "pixels.npy").read_text() == "the last good output"
    assert sorted(p.name for p in out.iterdir()) == ["pixels.npy"]
    assert _left_beside(out) == []  # no temporary folder left behind


@needs_dev_full
def test_a_full_disk_inside_a_folder_copy_is_recognised_in_shutils_list_of_failures(tmp_path):
    """shutil.copytree gathers its files' failures into one shutil.Error whose errno is None."""
    source = tmp_path / "live"
    (source / "plots").mkdir(parents=True)
    (source / "plots" / "loss.tsv").write_text("step\tloss\n" * 1000)
    out = tmp_path / "gan"
    with pytest.raises(NoSpace, match=f"^{out}: no space left on device"):
        with atomic_dir(out) as tmp:
            shutil.copytree(source, tmp / "live", copy_function=lambda src, dst: shutil.copyfile(src, DEV_FULL))
    assert not out.exists() and _left_beside(out) == ["live"]


@needs_dev_full
def test_a_full_disk_while_a_file_is_written_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{}\n")
    with pytest.raises(NoSpace, match=f"^{path}: no space left on device"):
        with atomic_path(path):
            _write_to_a_full_disk()
    assert path.read_text() == "{}\n" and _left_beside(path) == []


def _cap_file_size(limit: int):
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python itself ignores SIGXFSZ: writes fail with EFBIG

    return cap


def test_a_checkpoint_over_a_file_size_limit_is_named_not_torchs_opaque_error(tmp_path):
    """torch.save straight to a path name reports a short write as "unexpected pos"; save_torch names the file."""
    path = tmp_path / "checkpoint.pt"
    code = ("import sys, torch; from augment.io import save_torch; from pipelines.runtime import run_stage\n"
            f"run_stage(lambda argv: save_torch({{'w': torch.zeros(1 << 18)}}, {str(path)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, preexec_fn=_cap_file_size(1 << 16))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: {path}: file too large after "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not path.exists() and _left_beside(path) == []
    save_torch({"w": torch.zeros(4)}, path)  # without the limit it writes, and loads back
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(4))


def test_the_prepare_stage_over_a_file_size_limit_exits_2_naming_its_output_and_keeps_the_last_one(tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "manifest.csv").write_text("the last good output")
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.stages.prepare", "--params", str(REPO / "params.yaml"), "--out", str(out),
         "--timings-dir", str(tmp_path / "timings")],
        cwd=REPO, capture_output=True, text=True, preexec_fn=_cap_file_size(1 << 20))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: {out}: file too large after "), proc.stderr[-2000:]
    assert "ulimit -f" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv"]
    assert (out / "manifest.csv").read_text() == "the last good output"
    assert not (tmp_path / "timings").exists() or list((tmp_path / "timings").iterdir()) == []
