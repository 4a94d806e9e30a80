"""What `domain-augment run` prints when it cannot run: one `error:` line naming the key or the
stage's own message, never a traceback as its last word."""
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.e2e import env, project_copy


def _cli(repo, *args):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(repo), *args], cwd=repo, capture_output=True, text=True,
                          env=env(), timeout=600)


def test_run_refuses_a_misspelt_key_before_any_server_or_worktree_starts(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = _cli(tmp_path, "run", "-S", "gan.cyclegan.step=5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: -S gan.cyclegan.step=5: unknown key 'gan.cyclegan.step' (params.yaml has none); did you mean gan.cyclegan.steps?"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no worktree, no .dvc/tmp/runs


@pytest.mark.e2e
def test_a_failed_stage_ends_the_run_with_its_own_message(tmp_path):
    repo = project_copy(tmp_path / "repo")
    proc = _cli(repo, "run", "--in-place", "--stage", "prepare", "-S", "data.dataset=folders", "-S", f"data.root={tmp_path / 'nowhere'}",
                "-S", "data.source=summer", "-S", "data.target=winter")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()
    error = next(i for i, line in enumerate(last) if line.startswith("error: prepare: `dvc repro` exited"))
    assert f"error: data.root {tmp_path / 'nowhere'}: not a folder" in "\n".join(last[error:])
    assert not [line for line in last[error:] if line.startswith("Traceback")]


@pytest.mark.e2e
def test_an_uncommitted_relative_data_root_is_named_before_any_stage(tmp_path):
    """`run` works in a worktree of the committed HEAD: a relative data.root that only the user's
    checkout holds would reach prepare as a missing folder. The flow names it and the ways out."""
    from tests.conftest import make_folders

    repo = project_copy(tmp_path / "repo")
    make_folders(repo / "photos")  # beside the code, neither committed nor tracked by DVC
    proc = _cli(repo, "run", "-S", "data.dataset=folders", "-S", "data.root=photos", "-S", "data.source=src", "-S", "data.target=tgt")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = [line for line in proc.stderr.splitlines() if line.startswith("error: ")][-1]  # Prefect logs its server's stop after it
    assert last.startswith("error: data.root 'photos': a folder of your checkout") and "dvc add photos" in last
    assert f"-S data.root={(repo / 'photos').resolve()}" in last and "--in-place" in last
    assert "Running stage" not in proc.stdout + proc.stderr
