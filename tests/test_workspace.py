"""Saving a run as a DVC experiment, in a real git + DVC repo, leaves the user's checkout alone."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pipelines.workspace import WorkspaceError, commit_experiment
from tests.e2e import dvc, run

SCRIPT = """import json, pathlib, yaml
n = yaml.safe_load(open("params.yaml"))["n"]
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/data.txt").write_text("x" * n)
json.dump({"n": n}, open("metrics.json", "w"))
"""
STAGE = """stages:
  count:
    cmd: python count.py
    deps: [count.py]
    params: [n]
    outs: [out]
    metrics: [{metrics.json: {cache: false}}]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run(["git", "config", "user.email", "t@example.com"], tmp_path)
    run(["git", "config", "user.name", "t"], tmp_path)
    dvc("init", "-q", cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text(STAGE.replace("python", sys.executable))
    (tmp_path / "params.yaml").write_text("n: 3\n")
    (tmp_path / "count.py").write_text(SCRIPT)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-qm", "pipeline"], tmp_path)
    return tmp_path


def test_experiment_commit_leaves_head_index_and_files_alone(repo: Path):
    (repo / "params.yaml").write_text("n: 5\n")
    dvc("repro", cwd=repo)
    (repo / "notes.txt").write_text("a user's file, staged")
    run(["git", "add", "notes.txt"], repo)
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    status = run(["git", "status", "--porcelain"], repo).stdout

    commit_experiment(repo, "run-a", ["dvc.lock", "metrics.json"])

    assert run(["git", "symbolic-ref", "HEAD"], repo).stdout.strip() == "refs/heads/main"
    assert run(["git", "rev-parse", "HEAD"], repo).stdout.strip() == head
    assert run(["git", "status", "--porcelain"], repo).stdout == status  # the user's staged file is still staged, nothing else moved
    # DVC sees the experiment with its params and metrics, and can bring it back.
    assert "run-a" in dvc("exp", "list", "--name-only", cwd=repo).stdout.split()
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    exps = [e for row in shown for e in (row.get("experiments") or [])]
    saved = [e for e in exps if e.get("name") == "run-a"]
    assert saved and saved[0]["revs"][0]["data"]["metrics"]["metrics.json"]["data"] == {"n": 5}
    run(["git", "commit", "-qm", "the user's commit while nothing is running"], repo)
    (repo / "out" / "data.txt").unlink()
    dvc("exp", "apply", "run-a", cwd=repo)
    assert (repo / "out" / "data.txt").read_text() == "x" * 5  # outputs come back from the cache


def test_experiment_of_the_same_name_is_replaced(repo: Path):
    dvc("repro", cwd=repo)
    first = commit_experiment(repo, "nightly", ["dvc.lock", "metrics.json"])
    (repo / "params.yaml").write_text("n: 7\n")
    dvc("repro", cwd=repo)
    second = commit_experiment(repo, "nightly", ["dvc.lock", "metrics.json"])
    assert first != second
    assert dvc("exp", "list", "--name-only", cwd=repo).stdout.split().count("nightly") == 1


def test_a_name_git_refuses_is_reported(repo: Path):
    with pytest.raises(WorkspaceError, match="cannot name an experiment"):
        commit_experiment(repo, "bad..name", [])


def test_pruning_old_run_worktrees_spares_one_a_run_still_works_in(repo: Path):
    import os
    import subprocess

    from pipelines.workspace import create_run_worktree, in_use, prune_runs
    from tests.conftest import REPO
    from tests.e2e import env

    runs = [create_run_worktree(repo, name) for name in ("oldest", "older", "newest")]
    for age, path in zip((300, 200, 100), runs):
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age))
    code = ("import time; from pathlib import Path; from pipelines.workspace import workspace_lock\n"
            f"with workspace_lock(Path({str(runs[0])!r}), purpose='a long run'):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "held" and in_use(runs[0])
        assert prune_runs(repo, keep=1, log=lambda _: None) == ["older"]
        assert runs[0].is_dir() and not runs[1].exists() and runs[2].is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert prune_runs(repo, keep=1, log=lambda _: None) == ["oldest"]


def test_failed_runs_never_push_a_finished_runs_worktree_out(repo: Path):
    """Four failed or killed tries after a finished run removed the worktree holding its report: the
    newest `keep` finished and the newest `keep` unfinished worktrees are kept apart."""
    import os

    from pipelines.workspace import create_run_worktree, mark_finished, prune_runs

    runs = [create_run_worktree(repo, name) for name in ("done-old", "done", "failed-1", "failed-2", "failed-3")]
    for path in runs[:2]:
        mark_finished(path)
    for age, path in zip((500, 400, 300, 200, 100), runs):
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age))
    assert prune_runs(repo, keep=1, log=lambda _: None) == ["done-old", "failed-2", "failed-1"]
    assert sorted(p.name for p in runs if p.is_dir()) == ["done", "failed-3"]


def test_the_watchdog_of_a_killed_run_removes_a_lock_record_its_stopping_cut_short(repo: Path):
    """The watchdog of a run killed outright stops its `dvc repro` processes; one stopped while it wrote
    .dvc/tmp/rwlock left it empty, and every later DVC command in the repository failed on it until
    the user deleted it. Once no DVC command runs there the broken record is removed; a readable one,
    or one a DVC command still running may be writing, is left."""
    import subprocess

    from pipelines.workspace import repair_stage_locks

    dvc("repro", cwd=repo)
    lock = repo / ".dvc" / "tmp" / "rwlock"
    assert repair_stage_locks(repo) is None and lock.is_file()  # as DVC left it
    lock.write_text("")
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dvc", "repro"], cwd=repo)
    try:
        assert repair_stage_locks(repo) is None and lock.read_text() == ""
    finally:
        busy.kill()
        busy.wait()
    assert repair_stage_locks(repo) == lock and not lock.exists()
    assert repair_stage_locks(repo) is None
    (repo / "params.yaml").write_text("n: 5\n")
    dvc("repro", cwd=repo)  # DVC works in the repository again
    assert (repo / "out" / "data.txt").read_text() == "xxxxx"


def test_an_unreadable_record_of_dvcs_stage_locks_is_named_with_what_to_do(repo: Path):
    """A DVC command stopped while it wrote .dvc/tmp/rwlock leaves it empty or cut short, and DVC then
    fails every stage on a JSON error; the flow stops before the first one, naming the file, whether
    a DVC command still runs in the repository, and the way out, which works."""
    import subprocess

    from pipelines.workspace import check_stage_locks

    dvc("repro", cwd=repo)
    lock = repo / ".dvc" / "tmp" / "rwlock"
    check_stage_locks(repo)  # as DVC left it
    lock.unlink()
    check_stage_locks(repo)  # none yet
    lock.write_text("")
    (repo / "params.yaml").write_text("n: 4\n")
    refused = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, capture_output=True, text=True)
    assert refused.returncode != 0 and "Unable to read RWLock-file" in refused.stderr  # what the check spares the user
    with pytest.raises(WorkspaceError) as err:
        check_stage_locks(repo)
    assert str(err.value).startswith(f"{lock}: DVC's record of the stages being run is empty.")
    assert f"No DVC command runs in this repository now: delete it (`rm {lock}`" in str(err.value)
    lock.write_text('{"read": {"count": {"pid": 4')
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dvc", "repro"], cwd=repo)
    try:
        with pytest.raises(WorkspaceError) as err:
            check_stage_locks(repo)
    finally:
        busy.kill()
        busy.wait()
    assert "is cut short or garbled (" in str(err.value)
    assert f"DVC commands still run in this repository (pid {busy.pid}: " in str(err.value) and "let them finish or stop them" in str(err.value)
    lock.write_text("[]")  # JSON, but not DVC's record: DVC's "format error" gave no way out
    with pytest.raises(WorkspaceError, match=r"rwlock: DVC's record of the stages being run is not DVC's record \(JSON of another shape"):
        check_stage_locks(repo)
    lock.unlink()  # the way out the message gives
    dvc("repro", cwd=repo)
    assert (repo / "out" / "data.txt").read_text() == "xxxx"
    # a DVC command of the user's own in the repository (not in a run's worktree under .dvc/) is found too
    from pipelines.workspace import dvc_commands_in

    (repo / ".dvc/tmp/runs/other").mkdir(parents=True)
    inside_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dvc", "repro"], cwd=repo / ".dvc/tmp/runs/other")
    try:
        assert dvc_commands_in(repo) == []
        busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dvc", "repro"], cwd=repo)
        try:
            assert [line.split(":")[0] for line in dvc_commands_in(repo)] == [f"pid {busy.pid}"]
        finally:
            busy.kill()
            busy.wait()
    finally:
        inside_run.kill()
        inside_run.wait()


@pytest.mark.parametrize("given, folder", [("mysterious-bustard", "mysterious-bustard"), (".", "run"), ("../../..", "run"),
                                           ("a/b", "a-b"), ("nightly.lock", "nightly"), ("-x-", "x"), ("a..b", "a.b")])
def test_a_flow_runs_name_becomes_one_safe_folder_and_experiment_name(given, folder):
    """Prefect takes any flow run name: `--flow-run-name ../../..` named a folder above the checkout,
    which was removed before the worktree was made there (the whole checkout, .git included)."""
    from pipelines.workspace import run_name

    assert run_name(given) == folder
    run(["git", "check-ref-format", f"refs/exps/{run_name(given)}"], Path("."))  # git takes it in a ref


def test_a_second_run_of_one_name_gets_a_worktree_of_its_own(repo: Path):
    """A second run named like one still working (`--flow-run-name dup` twice) removed the first's
    worktree mid-run; a name that leaves the runs folder is refused outright."""
    from pipelines.workspace import create_run_worktree

    first = create_run_worktree(repo, "dup")
    (first / "mid-run.txt").write_text("the first run's work")
    second = create_run_worktree(repo, "dup")
    assert second == first.with_name("dup-2") and (first / "mid-run.txt").read_text() == "the first run's work"
    with pytest.raises(WorkspaceError, match=r"run name '\.\./\.\.' cannot name a folder"):
        create_run_worktree(repo, "../..")
    assert (repo / ".git").is_dir()
