"""What `domain-augment run` prints when it cannot run: one `error:` line naming the key or the
stage's own message, never a traceback as its last word."""
import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.e2e import env, project_copy
from tests.services import default_sigint


def _cli(repo, *args):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(repo), *args], cwd=repo, capture_output=True, text=True,
                          env=env(), timeout=600)


def test_run_refuses_a_misspelt_key_before_any_server_or_worktree_starts(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = _cli(tmp_path, "run", "-S", "gan.cyclegan.step=5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: -S gan.cyclegan.step=5: unknown key 'gan.cyclegan.step' (params.yaml has none); did you mean gan.cyclegan.steps?"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no worktree, no .dvc/tmp/runs



def test_a_repo_or_params_file_that_is_not_there_is_named_by_its_option(tmp_path):
    """`--repo README.md` said "README.md/params.yaml: not found; run from the project root or pass the
    params file", and `--params /nonexistent.yaml` told the user to pass the file they had passed."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "notes.txt").write_text("x")
    for args, said in ((["--repo", str(tmp_path / "nope"), "check-params"], f"--repo {tmp_path / 'nope'}: no such folder"),
                       (["--repo", str(tmp_path / "notes.txt"), "run"], f"--repo {tmp_path / 'notes.txt'}: not a folder"),
                       (["check-params", "--params", str(tmp_path / "other.yaml")], f"--params {tmp_path / 'other.yaml'}: no such file"),
                       (["--repo", str(tmp_path), "check-data", "d", "--source", "a", "--target", "b", "--params", "x.yaml"],
                        f"--params x.yaml (in --repo {tmp_path}, nor in the current folder): no such file")):
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, capture_output=True, text=True, env=env(), timeout=120)
        assert (proc.returncode, proc.stderr) == (2, f"error: {said}\n"), args
    # a relative --params that is in the current folder and not in --repo is read from here, as --preset is
    (tmp_path / "here").mkdir()
    (tmp_path / "here/mine.yaml").write_text((REPO / "params.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(REPO), "check-params", "--params", "mine.yaml"],
                          cwd=tmp_path / "here", capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 0 and proc.stderr.startswith(f"{tmp_path / 'here/mine.yaml'}: valid"), proc.stderr
    # started outside the project: it said "params.yaml: not found", not where it looked nor what to do
    for args, where in ((["run", "-S", "data.root=x"], f"{tmp_path} (the current folder)"), (["--repo", ".", "demo"], f"{tmp_path} (the current folder)"),
                        (["--repo", str(tmp_path), "check-params"], f"{tmp_path} (--repo)")):
        (tmp_path / "params.yaml").unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=tmp_path, capture_output=True, text=True, env=env(), timeout=120)
        assert (proc.returncode, proc.stderr) == (2, f"error: no params.yaml in {where}: start domain-augment in the project's repository "
                                                     "(the folder with params.yaml and dvc.yaml), or give it as --repo DIR\n"), args
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", "--help"], capture_output=True, text=True, env=env(), timeout=120)
    assert "check an image folder against the data contract" in proc.stdout and "as before the command" not in proc.stdout


@pytest.mark.parametrize("args, hint", [(["check-data", "d", "--source", "summer", "--target", "-winter"], "--target=-winter"),
                                        (["sweep", "mix.synthetic_fraction=0.5", "-S", "-x=1"], "--set=-x=1")])
def test_a_value_that_starts_with_a_dash_or_holds_a_space_is_shown_how_to_write_it(capsys, args, hint):
    """argparse reads `--target -winter` as a missing value and an option -winter; it said only
    "expected one argument", with the value right there on the line."""
    from pipelines.cli import main

    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and err.endswith(f"expected one argument (a value that starts with '-' goes after '=': {hint})"), err
    with pytest.raises(SystemExit):
        main(["run", "-S", "data.source=day", "camera", "-S", "data.target=night"])  # a value the shell split at its space
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: camera (a value with a space goes in quotes: "
                                                    "-S 'data.source=day camera')")
    with pytest.raises(SystemExit):
        main(["run", "-S", "data.source=clear", "--target", "-fog"])  # an option run does not have: no word of quotes
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: --target -fog")
    with pytest.raises(SystemExit):
        main(["sweep", "mix.synthetic_fraction=0.25", "0.5"])  # a sweep's values given apart
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: 0.5 (a sweep's values are one word, separated by commas: "
                                                    "mix.synthetic_fraction=0.25,0.5)")
    assert main(["sweep", "mix.synthetic_fraction=0.25,0.5", "--arm", "cyclgan"]) == 2  # as a misspelt arm in classifier.arms
    assert capsys.readouterr().err.startswith("error: --arm cyclgan: not an arm whose benefit there is to plot (did you mean cyclegan?); one of")
    with pytest.raises(SystemExit):  # a run's -S values given to check-data, which takes the folder and --source/--target
        main(["check-data", "-S", "data.root=my data", "-S", "data.source=2019", "-S", "data.target=2023", "-S", "gan.kinds=[]",
              "-S", "data.classes=[stop, give way]"])
    assert capsys.readouterr().err.strip().endswith(
        "required: --source, --target (check-data reads the folder and its options, not -S: domain-augment check-data 'my data' "
        "--source 2019 --target 2023 --classes stop 'give way')")
    with pytest.raises(SystemExit):
        main(args[:-1])  # no value at all: argparse's own words
    assert capsys.readouterr().err.strip().endswith("expected one argument")


def test_a_refused_value_is_named_with_the_preset_it_came_with(tmp_path):
    """The preset's keys were counted as -S values ("params.yaml with 23 -S values")."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "presets/rgb32.yaml", tmp_path / "rgb32.yaml")
    proc = _cli(tmp_path, "run", "--preset", "rgb32.yaml", "-S", "data.image_size=13")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: params.yaml with --preset rgb32.yaml and -S data.image_size=13: data.image_size: must be divisible by 4")


@pytest.mark.parametrize("command", [["run"], ["demo"], ["serve", "--cron", "0 3 * * *"], ["sweep", "mix.synthetic_fraction=0.5"]])
def test_a_run_refuses_another_params_file_it_would_not_read(tmp_path, command):
    """--params was checked, then the run read the repository's params.yaml (as DVC does) all the same."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "params.yaml", tmp_path / "other.yaml")
    proc = _cli(tmp_path, "--params", "other.yaml", *command)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: --params other.yaml: {command[0]} reads the repository's params.yaml, as DVC does")
    assert ("--preset other.yaml" in proc.stderr) == (command[0] != "sweep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.yaml", "params.yaml"]  # no worktree, no server


def test_params_and_repo_may_follow_the_command(tmp_path):
    """`check-params --params FILE` was "unrecognized arguments" (the option went before the command only),
    and a folder given as the params file was "not found"."""
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["classifier"]["steps"] = -1
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(raw))
    cli = [sys.executable, "-m", "pipelines.cli"]
    checked = subprocess.run([*cli, "check-params", "--repo", str(tmp_path), "--params", "other.yaml"], capture_output=True, text=True, env=env())
    assert checked.returncode == 2 and checked.stderr.startswith("error: ") and "classifier.steps" in checked.stderr, checked.stderr
    assert "other.yaml" in checked.stderr
    folder = subprocess.run([*cli, "check-params", "--params", str(tmp_path)], capture_output=True, text=True, env=env())
    assert folder.returncode == 2 and folder.stderr.strip() == f"error: --params {tmp_path}: a folder, not a file", folder.stderr
    refused = subprocess.run([*cli, "run", "--params", "other.yaml", "--repo", str(tmp_path)], capture_output=True, text=True, env=env())
    assert refused.returncode == 2 and refused.stderr.startswith("error: --params other.yaml: run reads the repository's params.yaml")


def test_a_stage_that_dvc_yaml_does_not_define_is_named_before_anything_starts(tmp_path):
    """`run --stage nosuch` started a Prefect server and a worktree and ended 20 s later, exit 1; a stage
    the -S values add (an arm) is one."""
    import yaml

    from pipelines.config import ParamsError
    from pipelines.flows import check_stage_targets, stage_names

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")

    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    names = stage_names((tmp_path / "dvc.yaml").read_text(), params)
    assert names["prepare"] == ["prepare"] and "train_gan@cgan-1" in names["train_gan"] and "train_classifier@oracle-2" in names["train_classifier"]
    check_stage_targets(["train_gan", "dvc.yaml:prepare", "train_classifier@adabn-0"], tmp_path / "dvc.yaml", params)
    for target in ("nosuch", "train_classifier@cgan_few-0"):
        with pytest.raises(ParamsError, match=rf"--stage {target}: not a stage of dvc\.yaml with these params; its stages: code, index_raw"):
            check_stage_targets([target], tmp_path / "dvc.yaml", params)
    params["classifier"]["arms"].append("cgan_few")
    check_stage_targets(["train_classifier@cgan_few-0"], tmp_path / "dvc.yaml", params)
    # through the command line, before a Prefect server or a worktree starts
    from tests.e2e import run

    run(["git", "init", "-q"], tmp_path)
    proc = _cli(tmp_path, "run", "--in-place", "--stage", "nosuch")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --stage nosuch: not a stage of dvc.yaml"), proc.stderr[-2000:]
    assert not (tmp_path / ".dvc").exists()


@pytest.mark.parametrize("args, said", [
    (["--cron", "61 3 * * *"], "--cron '61 3 * * *': not a cron schedule; five fields"),
    (["--cron", ""], "--cron '': not a cron schedule"),
    (["--cron", "0 3 * * *", "--name", "a/b"], "--name 'a/b': Prefect refuses / in a deployment's name"),
    (["--cron", "0 3 * * *", "--name", " "], "--name ' ': empty"),
])
def test_serve_refuses_a_schedule_or_name_prefect_would_not_take(tmp_path, args, said):
    """A pydantic or ValueError traceback; an empty name served as domain-augment/domain-augment."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = _cli(tmp_path, "serve", *args)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {said}"), proc.stderr[-2000:]


def test_a_failed_stages_quoted_lines_leave_out_an_exiting_interpreters_reports():
    """Forty "Exception ignored in" reports of a `dvc` process shutting down pushed the stage's own
    RuntimeError out of the lines its error quoted."""
    from pipelines.flows import _ShutdownNoise

    own = ["Running stage 'train_gan@cyclegan-1':", "Traceback (most recent call last):", '  File "train_gan.py", line 9, in main',
           "RuntimeError: Sizes of tensors must match except in dimension 0"]
    report = ["Exception ignored in: <function Pack.__del__ at 0x7f0>", "Traceback (most recent call last):",
              '  File "dulwich/pack.py", line 1, in __del__', "ImportError: sys.meta_path is None, Python is likely shutting down"]
    noise = _ShutdownNoise()
    lines = own + report * 3 + ["ERROR: failed to reproduce 'train_gan@cyclegan-1'"]
    assert [line for line in lines if not noise.holds(line)] == own + lines[-1:]


def test_a_failed_stages_headline_is_what_the_stage_said_of_its_failure():
    from pipelines.flows import stage_cause

    dvc = "ERROR: failed to reproduce 'train_gan@cgan-0': failed to run: python -m pipelines.stages.train_gan, exited with 2"
    own = ["Running stage 'train_gan@cgan-0':", "UserWarning: TypedStorage is deprecated",
           "error: CycleGAN losses became non-finite at step 50", dvc]
    assert stage_cause(own) == "CycleGAN losses became non-finite at step 50"
    traceback = ["Traceback (most recent call last):", '  File "train_gan.py", line 9, in main',
                 "RuntimeError: Sizes of tensors must match except in dimension 0", "FutureWarning: something else", dvc]
    assert stage_cause(traceback) == "RuntimeError: Sizes of tensors must match except in dimension 0"
    killed = ["FutureWarning: `torch.cuda.amp` is deprecated", "train_gan@cgan-0 step 50/400 loss_g_adv=1.2",
              dvc.replace("exited with 2", "exited with -9")]
    assert stage_cause(killed) == dvc[len("ERROR: "):].replace("exited with 2", "exited with -9")
    assert stage_cause(["step 50/400", "step 100/400"]) is None
    # a `dvc exp run` started beside a demo: the headline ended at "blocked by:", the process on the line below
    busy = ["ERROR: '/r/artifacts/timings/code.json' is busy, it is being blocked by:",
            "  (PID 6609): /r/.venv/bin/python /r/.venv/bin/dvc exp run -S mix.synthetic_fraction=0.2", "",
            "If there are no processes with such PIDs, you can manually remove '.dvc/tmp/rwlock' and try again."]
    assert stage_cause(busy) == ("'/r/artifacts/timings/code.json' is busy, it is being blocked by: (PID 6609): /r/.venv/bin/python "
                                 "/r/.venv/bin/dvc exp run -S mix.synthetic_fraction=0.2 (another DVC command works in this repository: "
                                 "let it finish, or stop it, then run again)")


def test_a_stage_that_died_of_the_terminals_ctrl_c_waits_for_the_runs_word_before_it_counts_as_broken(monkeypatch):
    """The terminal's SIGINT reaches a stage and its `dvc repro` as it reaches the run; on a busy
    machine DVC reported the stage dead ("failed to reproduce ... exited with -2") before the run's
    handler said it was stopping, and the stopped stage was printed as a failure."""
    import threading

    from pipelines import flows
    from pipelines.interrupt import STOPPING

    died = ["Interrupt", "ERROR: failed to reproduce 'train_gan@cgan-0': failed to run: python -m pipelines.stages.train_gan "
            "--gan cgan --seed 0, exited with -2"]
    broke = ["ERROR: failed to reproduce 'train_gan@cgan-0': failed to run: python -m pipelines.stages.train_gan, exited with 1"]
    assert not STOPPING.is_set()
    try:
        threading.Timer(0.3, STOPPING.set).start()
        assert flows._stopped(died)  # the word came after DVC's line
    finally:
        STOPPING.clear()
    assert not flows._stopped(broke)  # a stage that failed by itself is not waited for
    monkeypatch.setattr(flows, "STOP_NOTICE_SECONDS", 0.1)
    assert not flows._stopped(died)  # a stage stopped by hand, the run going on: a failure to report


def test_stopping_the_stages_spares_the_watchdog_that_ends_with_the_run():
    """The watchdog of a run (pipelines.orphans) is one of its children; stopping on Ctrl-C waited
    for it through the whole grace period, then interrupted it, and it printed a traceback."""
    script = """
import signal, subprocess, sys
import psutil
from pipelines.interrupt import SPARED, stop_children
from pipelines.orphans import stop_when_killed
stage = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
with stop_when_killed("test"):
    (watchdog,) = SPARED
    stop_children(grace=0.2, stop=20)
    print(stage.wait(10), psutil.Process(watchdog).status() != psutil.STATUS_ZOMBIE)
print(psutil.Process(watchdog).wait(10), SPARED)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["-2 True", "0 set()"], out.stdout + out.stderr


@pytest.mark.e2e
def test_a_failed_stage_ends_the_run_with_its_own_message(tmp_path):
    root = tmp_path / "photos"  # laid out right, but no file in it decodes: only prepare can tell
    for rel in ("summer/train/a/0.png", "summer/train/b/0.png", "summer/test/a/0.png", "winter/train/0.png", "winter/test/a/0.png",
                "winter/test/b/0.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"not a png")
    repo = project_copy(tmp_path / "repo")
    proc = _cli(repo, "run", "--in-place", "--stage", "prepare", "-S", "data.dataset=folders", "-S", f"data.root={root}",
                "-S", "data.source=summer", "-S", "data.target=winter")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()
    # the headline is the stage's own error, not `dvc repro`'s exit status; the stage's last lines follow it
    error = next(i for i, line in enumerate(last) if line.startswith("error: prepare failed: "))
    assert last[error].startswith(f"error: prepare failed: {root / 'summer' / 'train' / 'a'}"), last[error]
    assert f"error: {root / 'summer' / 'train' / 'a'}" in "\n".join(last[error + 1:]), "\n".join(last[error:])
    # Prefect's three lines of the failure (the task's end, the flow's exception, the flow's end) give the
    # headline alone: the last lines come once, under the CLI's error
    assert [line for line in last if "its last lines" in line] == [last[error]], proc.stderr[-3000:]
    assert len([line for line in last if "StageFailed" in line and "prepare failed: " in line]) == 3, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr  # nor Prefect's (some 100 lines of its engine before this)
    # a run in place wrote its -S values into params.yaml, where they stay: said, with the way back
    assert ("note: params.yaml holds its -S values (`git diff params.yaml`; `git checkout -- params.yaml` takes them back); the same "
            "command again, once the cause is fixed, goes on from the stages that finished") in last[error:], last[error:]


def test_what_a_failed_run_in_place_left_changed_is_said_with_the_way_back(tmp_path):
    """A failed evaluate in place left `D reports/metrics.json` and a rewritten params.yaml in
    `git status`, and its last line said nothing of them."""
    import argparse

    from pipelines.cli import _left_in_place
    from tests.e2e import run

    (tmp_path / "reports/plots").mkdir(parents=True)
    for name in ("reports/metrics.json", "reports/plots/target_accuracy.csv", "params.yaml"):
        (tmp_path / name).write_text("{}")
    run(["git", "init", "-q"], tmp_path)
    run(["git", "add", "."], tmp_path)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "results"], tmp_path)
    args = argparse.Namespace(repo=str(tmp_path), set=["classifier.steps=5"], preset=None)
    assert _left_in_place(args) == ""
    (tmp_path / "reports/metrics.json").unlink()
    (tmp_path / "reports/plots/target_accuracy.csv").unlink()
    (tmp_path / "params.yaml").write_text("{classifier: {steps: 5}}")
    assert _left_in_place(args) == (
        "the failed run removed the committed reports/metrics.json, reports/plots/target_accuracy.csv (a stage's outputs go before it "
        "runs; `git checkout -- reports/metrics.json reports/plots/target_accuracy.csv` brings them back); params.yaml holds its -S "
        "values (`git diff params.yaml`; `git checkout -- params.yaml` takes them back); the same command again, once the cause is "
        "fixed, goes on from the stages that finished")
    args.set = None  # an edit of the user's own, not the run's
    assert "params.yaml" not in _left_in_place(args)


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs to the API")  # no flow run here
def test_prefect_logs_an_unexpected_exception_with_its_traceback_and_an_expected_one_without():
    import logging

    import pipelines.flows  # noqa: F401 - installs the filter
    from pipelines.config import ParamsError
    from pipelines.runtime import StageFailed

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.getMessage(), record.exc_info is not None))

    logger = logging.getLogger("prefect.task_runs")
    handler = Keep()
    logger.addHandler(handler)
    try:
        for exc in (StageFailed("prepare: `dvc repro` exited with 255"), ParamsError("params.yaml: x"), RuntimeError("a bug")):
            try:
                raise exc
            except Exception:
                logger.error(f"failed: {exc}", exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert seen == [("failed: prepare: `dvc repro` exited with 255", False), ("failed: params.yaml: x", False), ("failed: a bug", True)]


@pytest.mark.e2e
@pytest.mark.parametrize("problem", ["no folder", "no target domain"])
def test_a_data_root_that_cannot_be_read_stops_the_run_before_any_stage_and_keeps_the_prepared_data(tmp_path, problem):
    """A typo in data.root, or a domain folder not there: named before any stage runs, so that
    `dvc repro prepare` does not first remove the data/prepared of the last good run; and before a
    Prefect server starts, once (the flow's failure was printed three times, twice by Prefect)."""
    from tests.e2e import dvc

    repo = project_copy(tmp_path / "repo")
    dvc("repro", "prepare", cwd=repo)
    before = (repo / "data" / "prepared" / "manifest.csv").read_bytes()
    params = (repo / "params.yaml").read_bytes()
    root = tmp_path / "photos"
    if problem == "no target domain":
        (root / "summer" / "train" / "a").mkdir(parents=True)
    proc = _cli(repo, "run", "--in-place", "-S", "data.dataset=folders", "-S", f"data.root={root}",
                "-S", "data.source=summer", "-S", "data.target=winter")
    assert proc.returncode == 2, proc.stderr[-3000:]
    expected = f"error: data.root {root}: not a folder" if problem == "no folder" else f"error: {root / 'winter'}: missing (data.target='winter')"
    assert [line for line in proc.stderr.splitlines() if line.startswith("error: ")] == [line for line in proc.stderr.splitlines()
                                                                                        if line.startswith(expected)], proc.stderr[-3000:]
    assert expected in proc.stderr
    said = proc.stdout + proc.stderr
    assert "Running stage" not in said and "temporary server" not in said and said.count(expected.removeprefix("error: ")) == 1, said[-3000:]
    assert (repo / "data" / "prepared" / "manifest.csv").read_bytes() == before
    assert (repo / "params.yaml").read_bytes() == params  # the -S values of a refused run are not left in it


@pytest.mark.e2e
def test_an_unreadable_record_of_dvcs_stage_locks_stops_the_run_before_any_stage(tmp_path):
    """`.dvc/tmp/rwlock` left empty by a DVC command stopped mid-write: DVC failed the first stage with
    its JSON error; the run names the file and what to do (tests/test_workspace.py checks the advice)."""
    repo = project_copy(tmp_path / "repo")
    (repo / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    (repo / ".dvc" / "tmp" / "rwlock").write_text("")
    params = (repo / "params.yaml").read_bytes()
    proc = _cli(repo, "run", "--in-place", "-S", "classifier.steps=5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lock = repo / ".dvc" / "tmp" / "rwlock"
    assert f"error: {lock}: DVC's record of the stages being run is empty." in proc.stderr
    assert f"No DVC command runs in this repository now: delete it (`rm {lock}`" in proc.stderr
    said = proc.stdout + proc.stderr
    assert "Running stage" not in said and "Unable to read RWLock-file" not in said
    assert "temporary server" not in said and said.count("DVC's record of the stages being run is empty") == 1  # before Prefect, once
    assert (repo / "params.yaml").read_bytes() == params


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


@pytest.mark.e2e
def test_a_run_reads_a_dvc_tracked_data_root_from_its_worktree_even_where_the_checkout_lacks_it(tmp_path):
    """A relative data.root tracked by DVC and committed reaches a run's worktree of HEAD from the DVC
    cache (or the team's remote) where the user's checkout does not hold it (removed, never pulled):
    the check before the flow, which reads the checkout, leaves that case to the flow."""
    from tests.conftest import make_folders
    from tests.e2e import dvc, run

    repo = project_copy(tmp_path / "repo")
    make_folders(repo / "photos")
    dvc("add", "-q", "photos", cwd=repo)
    run(["git", "add", "photos.dvc", ".gitignore"], repo)
    run(["git", "commit", "-qm", "photos, tracked by DVC"], repo)
    shutil.rmtree(repo / "photos")
    proc = _cli(repo, "run", "-S", "data.dataset=folders", "-S", "data.root=photos", "-S", "data.source=src", "-S", "data.target=tgt",
                "-S", "gan.kinds=[]", "-S", "classifier.arms=[source_only,oracle]", "-S", "classifier.seeds=[0]")
    assert proc.returncode == 0 and "error:" not in proc.stderr, proc.stderr[-3000:]
    assert "source_only" in proc.stdout and not (repo / "photos").exists()
    # In place the run reads the checkout: refused before any stage, with the way to get the folder.
    proc = _cli(repo, "run", "--in-place", "-S", "data.dataset=folders", "-S", "data.root=photos", "-S", "data.source=src",
                "-S", "data.target=tgt", "-S", "gan.kinds=[]", "-S", "classifier.arms=[source_only,oracle]")
    assert proc.returncode == 2 and proc.stderr.strip() == ("error: data.root 'photos': tracked by DVC (photos.dvc) but not checked out "
                                                            "here: `dvc checkout photos.dvc` restores it from the DVC cache, "
                                                            "`dvc pull photos.dvc` from the team's DVC remote"), proc.stderr[-3000:]
    dvc("checkout", "-q", "photos.dvc", cwd=repo)
    assert sorted(p.name for p in (repo / "photos").iterdir()) == ["src", "tgt"]


def test_a_relative_data_root_is_named_with_where_it_is_read_from(tmp_path, monkeypatch):
    """A relative data.root is read from the repository: one typed from another folder, or one that
    leaves the repository (which a run's worktree of HEAD cannot reach), is named with its absolute
    path, not as the worktree's path of a folder that is not there."""
    import yaml

    from pipelines.config import ParamsError
    from pipelines.flows import check_data_root
    from tests.conftest import make_folders

    repo, worktree, here = tmp_path / "repo", tmp_path / "repo/.dvc/tmp/runs/x", tmp_path / "elsewhere"
    make_folders(here / "photos", per_class=1)
    for folder in (repo, worktree):
        folder.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())

    def refusal(root: str, workdir) -> str:
        raw["data"].update(dataset="folders", root=root, source="src", target="tgt")
        (workdir / "params.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ParamsError) as caught:
            check_data_root(repo, workdir)
        return str(caught.value)

    monkeypatch.chdir(here)
    said = refusal("photos", worktree)
    assert said.startswith(f"data.root 'photos': not a folder. A relative data.root is read from the repository ({repo})")
    assert said.endswith(f"the current folder holds one: -S data.root={(here / 'photos').resolve()}")
    said = refusal("../elsewhere/photos", worktree)
    assert said.startswith(f"data.root '../elsewhere/photos': a folder outside the repository ({(here / 'photos').resolve()})")
    assert "dvc add" not in said and "--in-place" in said
    (repo / "params.yaml").write_text((worktree / "params.yaml").read_text())
    check_data_root(repo, repo)  # in place, the same relative path reads the folder
    monkeypatch.chdir(repo)
    assert "holds one" not in refusal("photos", repo)  # no hint where the current folder has none either


def test_a_data_root_among_the_pipelines_own_outputs_is_refused_before_any_server_starts(tmp_path):
    """`-S data.root=data` typed in a folder that holds the user's `data/` read the repository's own
    `data/` (data/prepared, data/synthetic, ...) and listed them as the domains present, after a
    Prefect server had started; `data.root=.` ended in a traceback (ValueError: empty name). An
    isolated run (no --in-place) said the same after a server and a worktree had started, with the
    worktree's paths, though neither the checkout nor HEAD held the domains."""
    from tests.conftest import make_folders

    repo, here = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "data/prepared").mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, repo / name)
    make_folders(here / "data", per_class=1)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    def said(*sets, how=("--in-place",)):
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(repo), "run", *how, "-S", "data.dataset=folders",
                               *(a for s in sets for a in ("-S", s))], cwd=here, capture_output=True, text=True, env=env(), timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
        return proc.stderr.strip()

    hint = f". A relative data.root is read from the repository ({repo}), not from the current folder"
    assert said("data.root=data/prepared", "data.source=src", "data.target=tgt") == (
        f"error: data.root 'data/prepared': {repo / 'data/prepared'} is data/prepared, which the pipeline's stages write: the run "
        f"would read its own outputs as your images. Keep the images in a folder of their own{hint}")
    assert said("data.root=.", "data.source=src", "data.target=data").startswith(
        f"error: data.target 'data': {repo / 'data'} holds data/arms, which the pipeline's stages write")
    assert said(f"data.root={repo / 'data'}", "data.source=src", "data.target=prepared").startswith(
        f"error: data.target 'prepared': {repo / 'data/prepared'} is data/prepared")
    # the repository itself, with domains it lacks: said so, and neither its hidden folders (.git) nor data/, where the
    # stages write, are domains to list
    assert said("data.root=.", "data.source=src", "data.target=tgt") == (
        f"error: {repo / 'src'}: missing (data.source='src'); domains present in {repo}: none (data.root is the repository itself)")
    # the repository's own data/ as data.root, with domains it lacks: the current folder's data/ holds them, and the
    # stages' output folders there are no domains
    (repo / "data/faces").mkdir()
    wanted = (f"error: {repo / 'data/src'}: missing (data.source='src'); domains present in {repo / 'data'}: ['faces']"
              f"{hint}; the current folder holds one: -S data.root={here / 'data'}")
    assert said("data.root=data", "data.source=src", "data.target=tgt") == wanted
    # the same in an isolated run: neither the checkout, nor HEAD, nor a .dvc file has data/src
    (repo / ".dvc").mkdir()
    (repo / ".dvc/config").write_text("")
    subprocess.run(["git", "add", "params.yaml", "dvc.yaml", ".dvc/config"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "pipeline"], cwd=repo, check=True)
    assert said("data.root=data", "data.source=src", "data.target=tgt", how=()) == wanted
    # what the run's worktree may still get, the CLI leaves to the flow: a folder HEAD holds, or one a .dvc file tracks
    from pipelines.config import DataParams
    from pipelines.flows import missing_from_head

    data = DataParams(dataset="folders", root="data", source="src", target="tgt")
    assert missing_from_head(repo, data)
    (repo / "data/src.dvc").write_text("outs:\n- path: src\n")  # tracked, not checked out: `dvc pull` brings it
    (repo / "data/tgt").mkdir()
    assert not missing_from_head(repo, data)
    (repo / "data/tgt").rmdir()
    assert missing_from_head(repo, data)
    (repo / "data/tgt").mkdir()
    (repo / "data/tgt/a.txt").write_text("x")
    subprocess.run(["git", "add", "data/tgt"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "tgt"], cwd=repo, check=True)
    shutil.rmtree(repo / "data/tgt")  # deleted here, not in HEAD: the worktree holds it
    assert not missing_from_head(repo, data)


@pytest.mark.e2e
def test_a_run_in_place_in_a_repository_without_commits_keeps_its_results_and_says_why_it_saved_no_experiment(tmp_path):
    """An experiment is a commit on top of HEAD: without one the run failed after every stage had run,
    printing no result. It now finishes and says why nothing was saved."""
    from tests.e2e import run

    repo = project_copy(tmp_path / "repo")
    shutil.rmtree(repo / ".git")
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "t@example.com"], repo)
    proc = _cli(repo, "run", "--in-place", "--stage", "code")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the repository has no commit yet, so the run is not saved as an experiment" in proc.stdout + proc.stderr
    assert (repo / "data/code/train_gan.json").is_file() and "error:" not in proc.stderr
    # a --stage subset without evaluate: no "did the evaluate stage run?" as if evaluate had failed
    assert "evaluate was not among the stages of this run" in proc.stdout and "was produced" not in proc.stdout, proc.stdout



def test_an_isolated_run_says_it_does_not_use_uncommitted_params_or_code(tmp_path, capsys):
    """`run` (not --in-place) warns before it starts: its worktree of HEAD holds the committed params.yaml and code."""
    from pipelines.cli import _warn_of_uncommitted_changes
    from tests.e2e import run

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "augment").mkdir()
    (tmp_path / "augment/mixing.py").write_text("X = 1\n")
    (tmp_path / "notes.txt").write_text("not read by a run\n")
    run(["git", "init", "-q"], tmp_path)
    run(["git", "add", "params.yaml", "augment/mixing.py"], tmp_path)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "p"], tmp_path)
    _warn_of_uncommitted_changes(tmp_path)
    assert capsys.readouterr().err == ""
    with open(tmp_path / "params.yaml", "a") as f:
        f.write("# an edit\n")
    _warn_of_uncommitted_changes(tmp_path)
    assert capsys.readouterr().err.startswith("warning: params.yaml has changes that are not committed; this run works in a worktree of HEAD")
    (tmp_path / "augment/mixing.py").write_text("X = 2\n")
    (tmp_path / "augment/new_part.py").write_text("Y = 1\n")
    (tmp_path / "augment/__pycache__").mkdir()
    (tmp_path / "augment/__pycache__/mixing.cpython-311.pyc").write_bytes(b"\0")
    _warn_of_uncommitted_changes(tmp_path)
    err = capsys.readouterr().err
    assert err.startswith("warning: augment/mixing.py, augment/new_part.py (not tracked), params.yaml have changes"), err
    assert "notes.txt" not in err and "pycache" not in err
    # a sweep runs the other way (DVC queues the working tree): the same edits are in every experiment, said as such
    from pipelines.cli import _note_what_a_sweep_runs_with

    _note_what_a_sweep_runs_with(tmp_path)
    assert capsys.readouterr().err == ("note: augment/mixing.py, params.yaml have changes that are not committed: every experiment "
                                       "of this sweep runs with them (DVC queues the working tree as it is), and reports/sweep/ does "
                                       "not record them; `git diff` shows them (commit them first to keep the sweep's base on record)\n")


def test_an_isolated_run_says_it_does_not_use_changes_to_a_dvc_tracked_data_root(tmp_path, capsys):
    """A data.root tracked with `dvc add` (as a run advises for a folder of the checkout), then edited:
    the run's worktree of HEAD restored the committed data, counted the old files, and said nothing."""
    from pipelines.cli import _warn_of_uncommitted_changes
    from pipelines.config import parse_params
    from tests.e2e import dvc, run

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    for split in ("src/train/a", "tgt/test/a"):
        (tmp_path / "mydata" / split).mkdir(parents=True)
        (tmp_path / "mydata" / split / "1.png").write_bytes(b"one")
    run(["git", "init", "-q"], tmp_path)
    dvc("init", "-q", cwd=tmp_path)
    dvc("add", "-q", "mydata", cwd=tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "p"], tmp_path)
    data = parse_params({"data": {"dataset": "folders", "root": "mydata", "source": "src", "target": "tgt"}}, build_transforms=False).data
    _warn_of_uncommitted_changes(tmp_path, data)
    assert capsys.readouterr().err == ""
    (tmp_path / "mydata/src/train/a/2.png").write_bytes(b"two")
    _warn_of_uncommitted_changes(tmp_path, data)
    assert capsys.readouterr().err == ("warning: data.root mydata has changed since `dvc add` recorded it in mydata.dvc; this run works "
                                       "in a worktree of HEAD and reads the data as last committed (dvc add mydata and commit mydata.dvc, "
                                       "or run with --in-place)\n")
    dvc("add", "-q", "mydata", cwd=tmp_path)  # recorded, not committed: git's own warning names the .dvc file
    _warn_of_uncommitted_changes(tmp_path, data)
    assert capsys.readouterr().err.startswith("warning: mydata.dvc has changes that are not committed")


def _hold_workspace(repo, purpose):
    """Another process holding the repo's workspace lock, as a run in place does; returns once it holds it."""
    code = ("import sys, time; from pathlib import Path; from pipelines.workspace import workspace_lock\n"
            f"with workspace_lock(Path({str(repo)!r}), purpose={purpose!r}):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, env=env())
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_in_place_stops_at_once_naming_the_first_and_a_killed_one_leaves_no_lock(tmp_path):
    """DVC would fail the second run's stages one by one on outputs the first has locked."""
    from pipelines.workspace import in_use

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    holder = _hold_workspace(tmp_path, "domain-augment demo")
    try:
        assert in_use(tmp_path)
        for args in (["demo"], ["run", "--in-place"]):
            proc = _cli(tmp_path, *args)
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
            assert proc.stderr.startswith(f"error: {tmp_path}: another domain-augment run (pid {holder.pid}, domain-augment demo, since "), proc.stderr
            assert "is working in this repository; wait for it to finish, or use `domain-augment run`" in proc.stderr
            assert "prefect" not in (proc.stdout + proc.stderr).lower()  # stopped before a Prefect server started
    finally:
        holder.kill()
        holder.wait()
    assert not in_use(tmp_path)  # the kernel dropped the killed holder's lock


def _processes_under(root) -> list[int]:
    """Pids of the processes working under `root` (their cwd)."""
    import os
    from pathlib import Path

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(Path(root).resolve()):
                found.append(int(pid))
        except OSError:
            continue
    return found


def _ctrl_c_at(cmd: list[str], cwd, marker, *, watch: str = "stdout") -> tuple[subprocess.Popen, list[str]]:
    """Start a stage as a terminal would, send it SIGINT at the first line that `marker` accepts, and
    return it ended, with every line of the watched stream: "stdout" (stderr merged in) or "stderr"."""
    import signal

    merged = watch == "stdout"
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                            text=True, preexec_fn=default_sigint)
    stream = proc.stdout if merged else proc.stderr
    try:
        lines = []
        for line in stream:
            lines.append(line)
            if marker(line):
                proc.send_signal(signal.SIGINT)
                break
        lines.extend(stream)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, lines


def test_a_stage_interrupted_while_it_imports_says_so_in_one_line():
    """Ctrl-C can reach a stage in its first seconds, while torch loads and before `run_stage` takes
    over: one line naming the stage, no traceback through the import machinery, and the exit of a
    process stopped by SIGINT (what dvc and the flow read as interrupted)."""
    import signal

    # -X importtime: one line on stderr as each import finishes; at this one the hook is in place, pandas and torch are still to come
    proc, lines = _ctrl_c_at([sys.executable, "-X", "importtime", "-m", "pipelines.stages.train_gan", "--help"], REPO,
                             lambda line: line.rstrip().endswith("| pipelines.stages"), watch="stderr")
    err = "".join(line for line in lines if not line.startswith("import time:"))
    assert proc.returncode == -signal.SIGINT, err
    assert err.strip() == "train_gan: interrupted while starting; nothing was written"


def test_stopping_the_stages_leaves_each_exit_status_to_the_thread_that_waits_for_it():
    """The flow's threads each wait for their stage's `dvc repro`. Stopping on Ctrl-C must not reap
    those processes itself: the thread then reads exit status 0 and logs a stopped stage as one that
    ran. Run in its own process, which stops only its own children."""
    script = """
import signal, subprocess, sys, threading
from pipelines.interrupt import stop_children
child = ("import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(7)); "
         "print('ready', flush=True); time.sleep(60)")
procs = [subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) for _ in range(3)]
for p in procs:
    p.stdout.readline()  # its handler is in place
codes = []
waiters = [threading.Thread(target=lambda p=p: codes.append(p.wait())) for p in procs]
for w in waiters:
    w.start()
stop_children(grace=0.2, stop=20)
for w in waiters:
    w.join(10)
print(sorted(codes))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[7, 7, 7]", out.stdout + out.stderr


def test_a_stage_interrupted_while_it_runs_names_itself_in_one_line(tmp_path):
    """Ctrl-C in the middle of a stage: one line naming the stage, the exit status of an interrupted
    command (130: what dvc reports and the flow reads as stopped), and no output written."""
    from tests.e2e import dvc

    repo = project_copy(tmp_path / "repo", {"gan": {"cyclegan": {"steps": 5000, "log_every": 1}}})
    dvc("repro", "few_labels", cwd=repo)
    proc, lines = _ctrl_c_at([sys.executable, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", "--seed", "0"], repo,
                             lambda line: " step " in line)  # training: past the imports and the data
    assert proc.returncode == 130, "".join(lines)
    assert lines[-1].strip() == "train_gan@cyclegan-0: interrupted; no output was left half-written", "".join(lines)
    assert not (repo / "artifacts" / "gan" / "cyclegan" / "0").exists()


def test_a_flow_run_outside_the_cli_notes_a_ctrl_c_as_stopping_and_still_ends_as_it_would():
    """Ctrl-C on `serve`: the stages it ended read as failures with their last lines ("exited with 130"),
    as no handler of the CLI's had said the run was stopping."""
    script = """
import os, signal
from pipelines.interrupt import STOPPING, note_stopping_on_signals
note_stopping_on_signals(); note_stopping_on_signals()  # a second flow run in the process: noted once
assert not STOPPING.is_set()
try:
    os.kill(os.getpid(), signal.SIGINT)
    signal.pause()
except KeyboardInterrupt:
    print("KeyboardInterrupt", STOPPING.is_set())
os.kill(os.getpid(), signal.SIGHUP)
signal.pause()
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=default_sigint)  # as a terminal starts it (not under the suite's own nohup or xdist)
    assert proc.stdout.strip() == "KeyboardInterrupt True" and proc.returncode == -1, (proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["ctrl_c", "sigterm", "sighup"])
def test_ctrl_c_or_sigterm_in_demo_stops_its_stages_at_once_and_keeps_what_finished(tmp_path, how):
    """Ctrl-C: the terminal's SIGINT reaches the whole group, Prefect's temporary server too, and the run
    must not then retry its reports to the stopped server for minutes. SIGTERM (`kill`, a service
    manager) reaches the main process alone, and its stages and server must not run on without it.
    SIGHUP (the terminal closed) reaches the whole group: the run ended with 129 and no word, and DVC's
    record of the stages' locks kept the dead processes."""
    import os
    import signal

    from tests.e2e import pending, stage_process

    # GANs that would train for hours: a SIGTERM that waits for the running stages to end by themselves
    # (Prefect's own handler, in force inside the flow) never ends the run within the minute
    repo = project_copy(tmp_path / "repo", {"gan": {"cyclegan": {"steps": 100_000}, "cgan": {"steps": 100_000}}})
    demo = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "demo"], cwd=repo, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_sigint)  # as a terminal starts it
    try:
        assert stage_process("pipelines.stages.train_gan", repo, timeout=300), "no GAN stage started"
        sent = {"ctrl_c": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}[how]
        if how == "sigterm":
            demo.terminate()
        else:
            os.killpg(demo.pid, sent)
        out, err = demo.communicate(timeout=120)  # "within the minute" on an idle machine; a loaded one stops its server slower
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 128 + sent, err[-3000:]
    word = {"ctrl_c": "interrupted", "sigterm": "terminated", "sighup": "hung up (its terminal closed)"}[how]
    assert f"domain-augment demo: {word}; stopping the running stages" in err
    assert "domain-augment demo: stopped. Stages that finished are kept" in err, err[-3000:]
    assert "the same `domain-augment demo` command again (its --preset and -S values too) continues" in err, err[-3000:]
    assert "Connection refused" not in out + err  # no report retried to the stopped server
    assert "its last lines" not in out + err  # a stage stopped by the signal is not reported as broken
    assert "ERROR: failed to reproduce" not in out + err  # nor by DVC
    assert "pipelines/orphans.py" not in err  # the watchdog is not interrupted: it ends with the run
    assert _processes_under(repo) == []  # no stage left running, nor the server (started here too)
    rwlock = repo / ".dvc/tmp/rwlock"  # DVC's record of the stages' locks holds no dead process (SIGHUP reaches the stages'
    # `dvc repro` too and ends them at once: DVC drops their record itself at its next command, with a warning)
    assert how == "sighup" or not rwlock.is_file() or not any(json.loads(rwlock.read_text() or "{}").values()), rwlock.read_text()
    left = pending(repo)
    assert "prepare" not in left and any(stage.startswith("train_gan@") for stage in left)
    assert not [stage for stage in left if f"{stage}: ran in" in out + err]  # a stopped stage never reads as one that ran


@pytest.mark.e2e
def test_a_demo_killed_outright_leaves_neither_its_server_nor_its_stages_running(tmp_path):
    """SIGKILL (the OOM killer, `kill -9`) gives the run no chance to stop what it started: Prefect's
    temporary server ran on for good. The run's watchdog stops the server and the stages; the stages
    that finished are kept."""
    import os
    import signal
    import time

    from pipelines.orphans import holders
    from tests.e2e import pending, stage_process

    repo = project_copy(tmp_path / "repo")
    demo = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "demo"], cwd=repo, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert stage_process("pipelines.stages.train_gan", repo, timeout=300), "no GAN stage started"
        server = [pid for pid in _processes_under(repo) if "prefect.server.api.server" in _cmdline(pid)]
        assert server, "no temporary Prefect server under the repo"
        os.kill(demo.pid, signal.SIGKILL)  # the run alone, as the OOM killer picks one process
        out, err = demo.communicate(timeout=120)  # stderr stays open until the watchdog is done
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _processes_under(repo) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_under(repo) == [], [_cmdline(pid) for pid in _processes_under(repo)]
    stopped = next(line for line in err.splitlines() if "the run was killed; stopped what it left running: " in line)
    assert stopped.startswith("domain-augment demo: ") and f"Prefect's temporary server (pid {server[0]})" in stopped, stopped
    assert "stage train_gan (pid " in stopped and "dvc repro train_gan@" in stopped, stopped  # the stage's dvc process by name, not "python"
    left = pending(repo)
    assert "prepare" not in left and any(stage.startswith("train_gan@") for stage in left)
    assert not holders("no-such-token")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("damage", ["missing", "broken"])
def test_a_run_in_place_without_a_readable_dvc_yaml_stops_naming_it(tmp_path, damage):
    """Without dvc.yaml a run in place ended "Completed" with no stage run; a broken one ended in
    DVC's and ruamel's tracebacks after a Prefect server had started."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    if damage == "broken":
        (tmp_path / "dvc.yaml").write_text("stages:\n  code:\n    cmd: [\n")
    proc = _cli(tmp_path, "run", "--in-place")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    said = {"missing": "not found; it defines the pipeline's stages", "broken": "not valid YAML"}[damage]
    assert proc.stderr.startswith(f"error: {tmp_path / 'dvc.yaml'}: {said}"), proc.stderr[-2000:]


def test_a_preset_with_a_key_params_yaml_lacks_is_named(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "mine.yaml").write_text("data:\n  sourse: summer\n")
    for command in (["run", "--preset", "mine.yaml"], ["preset", "mine.yaml"]):
        proc = _cli(tmp_path, *command)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip() == "error: mine.yaml: data.sourse=summer: unknown key 'data.sourse' (params.yaml has none); did you mean data.source?"


def test_an_isolated_run_stops_naming_what_head_lacks(tmp_path):
    """A repository whose HEAD has no DVC folder (dvc init never committed) ended the run in a
    FileNotFoundError traceback inside the flow, after a Prefect server had started."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    subprocess.run(["git", "add", "params.yaml"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "params"], cwd=tmp_path, check=True, env=env())
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # there, but not committed
    proc = _cli(tmp_path, "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (f"error: {tmp_path}: HEAD has no dvc.yaml, .dvc/config; a run works in a worktree of HEAD, so commit "
                                   "them (git add dvc.yaml; dvc init, then git add .dvc; git commit), or run with --in-place")
    assert "prefect" not in (proc.stdout + proc.stderr).lower() and not (tmp_path / ".dvc").exists()


@pytest.mark.e2e
def test_a_dvc_remote_that_refuses_the_push_is_a_warning_and_the_run_keeps_its_results(tmp_path):
    """Every stage had run, then the push to an unwritable remote failed the run: 561 lines ending in
    a traceback, exit 1, no error line. The results are kept and saved; the warning says how to push them."""
    from tests.e2e import dvc, run

    repo = project_copy(tmp_path / "repo")
    dvc("remote", "add", "-q", "-d", "team", "/proc/no-such-remote", cwd=repo)
    run(["git", "add", ".dvc/config"], repo)
    run(["git", "commit", "-qm", "remote"], repo)
    proc = _cli(repo, "run", "--stage", "code")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: the run's results were not pushed to the DVC remote (FileNotFoundError" in proc.stderr
    assert "pushing to the DVC remote 'team' failed" in proc.stdout + proc.stderr and "`dvc push --run-cache`" in proc.stdout + proc.stderr
    assert "Experiment: " in proc.stdout or "saved as experiment" in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", [["run", "--in-place"], ["demo"], ["serve", "--cron", "0 3 * * *"]])
def test_a_prefect_api_url_where_no_server_answers_is_one_line(tmp_path, command):
    """About 110 lines of Prefect's traceback (RuntimeError: Failed to reach API), exit 1."""
    from tests.services import free_port

    repo = project_copy(tmp_path / "repo")
    url = f"http://127.0.0.1:{free_port()}/api"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *command, "--stage", "code"], cwd=repo, capture_output=True, text=True,
                          env={**env(), "PREFECT_API_URL": url}, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: PREFECT_API_URL {url}: no Prefect server answers there"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (repo / "data/code").exists()
    assert ("unset PREFECT_API_URL" in proc.stderr) == (command[0] != "serve")  # a temporary server cannot schedule


def test_serve_without_a_prefect_server_is_refused_as_a_schedule_that_would_never_run(tmp_path):
    """`serve` with PREFECT_API_URL unset served on a temporary server: Prefect warned once, among its
    log lines, that it "cannot schedule flows on an ephemeral server", and no run ever started."""
    repo = project_copy(tmp_path / "repo")
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "serve", "--cron", "0 3 * * *"], cwd=repo, capture_output=True,
                          text=True, env={k: v for k, v in env().items() if k != "PREFECT_API_URL"}, timeout=300)
    assert (proc.returncode, proc.stderr) == (2, "error: serve needs a Prefect server that stays up to schedule its runs, and "
                                                 "PREFECT_API_URL is not set (a temporary server cannot schedule: no run would ever "
                                                 "start). Start one: prefect server start --host 127.0.0.1 --port 4200, then export "
                                                 "PREFECT_API_URL=http://127.0.0.1:4200/api\n"), proc.stderr[-2000:]
    assert "serving deployment" not in proc.stdout


def test_a_dvc_lock_that_does_not_parse_is_named_with_the_way_out_before_anything_starts(tmp_path):
    """DVC's traceback came through Prefect's log of the failed run, advising `git checkout dvc.lock`
    where git held no copy of it."""
    from tests.e2e import run

    repo = project_copy(tmp_path / "repo")
    (repo / "dvc.lock").write_text("stages: [cut short\n")
    proc = _cli(repo, "run", "--in-place", "--stage", "code")
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {repo / 'dvc.lock'}: not valid YAML"), proc.stderr[-2000:]
    assert "git holds no copy of it: remove it (`rm dvc.lock`)" in proc.stderr and "Traceback" not in proc.stderr
    run(["git", "add", "-f", "dvc.lock"], repo)
    run(["git", "commit", "-qm", "lock"], repo)
    proc = _cli(repo, "demo", "--stage", "code")
    assert proc.returncode == 2 and "`git checkout dvc.lock` restores the committed one" in proc.stderr, proc.stderr[-2000:]


def test_a_preset_path_is_read_from_the_repository_too_and_a_missing_one_lists_the_presets_there(tmp_path):
    """`--repo REPO --preset presets/rgb32.yaml` typed from elsewhere said only "preset not found",
    while check-data with --repo found the same path, and a relative data.root is read from the repository."""
    repo, here = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "presets").mkdir(parents=True)
    here.mkdir()
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    shutil.copy(REPO / "presets/rgb32.yaml", repo / "presets/rgb32.yaml")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(repo), *args], cwd=here, capture_output=True, text=True,
                              env=env(), timeout=120)

    found = cli("preset", "presets/rgb32.yaml")
    assert found.returncode == 0 and "-S data.image_size=32" in found.stdout, found.stderr
    missing = cli("preset", "presets/rgb64.yaml")
    assert missing.returncode == 2 and missing.stderr == (f"error: presets/rgb64.yaml: preset not found (looked in {here} and {repo}); "
                                                          "the repository's presets: presets/rgb32.yaml\n")
    assert cli("run", "--preset", "presets/rgb64.yaml").stderr == missing.stderr  # before any server starts
