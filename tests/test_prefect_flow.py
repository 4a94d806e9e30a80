"""The Prefect flow around the DVC pipeline, under prefect_test_harness, on tiny params."""
import json
import re
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from pipelines.config import ParamsError
from pipelines.flows import is_transient, pipeline, run_stage, stage_graph, stage_order
from pipelines.warm_start import WARM_STAGES_ENV
from tests.e2e import ALWAYS_RUN, env, project_copy, stage_process
from tests.prefect_api import artifacts, log_messages, task_run_counts, task_states, task_times

pytestmark = pytest.mark.e2e

DAG_ORDER = ["code", "index_raw", "prepare", "few_labels", "train_gan@cyclegan-0", "synthesize@cyclegan-0"]
ARMS = {"source_only", "cyclegan", "cgan", "oracle"}


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return project_copy(tmp_path_factory.mktemp("flow"))


def _run(**kwargs):
    state = pipeline(**kwargs, return_state=True)
    assert state.is_completed(), state.message
    return state.state_details.flow_run_id, state.result()


def _git_status(repo) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_prefect_stage_order_comes_from_the_dvc_graph(repo):
    order = stage_order(repo)
    assert order[:3] == ["code", "index_raw", "prepare"] and order[-1] == "evaluate"
    classifiers = [i for i, s in enumerate(order) if s.startswith("train_classifier@")]
    for gan in ("cyclegan", "cgan"):
        assert order.index(f"train_gan@{gan}-1") < order.index(f"synthesize@{gan}-1") < min(classifiers)
    assert {order[i] for i in classifiers} == {
        f"train_classifier@{a}-{s}" for a in ARMS for s in (0, 1)
    }
    assert stage_order(repo, ["synthesize@cyclegan-0"]) == DAG_ORDER


def test_prefect_isolated_run_records_everything_and_leaves_the_tree_alone(repo, monkeypatch):
    before = _git_status(repo)
    monkeypatch.delenv(WARM_STAGES_ENV)  # the tests' own server: the flow starts one of its own instead
    run_id, summary = _run(repo_path=str(repo), stage_retries=0, jobs=2)
    assert WARM_STAGES_ENV not in os.environ  # and stopped it
    workdir = repo / ".dvc/tmp/runs" / summary["run"]
    started = {json.loads(p.read_text())["started"] for p in (workdir / "artifacts/timings").glob("*.json")}
    assert "warm" in started, started  # those that began before it was ready (a few seconds) began cold
    assert [r["stage"] for r in summary["stages"]] == stage_order(repo)
    assert {r["status"] for r in summary["stages"]} == {"ran"}
    # Two at a time, and never before what a stage depends on has finished.
    times = task_times(run_id, expect=stage_order(repo))
    for stage, upstream in stage_graph(repo).items():
        assert all(times[u][1] <= times[stage][0] for u in upstream), f"{stage} started before {upstream} ended"
    spans = sorted(times[s] for s in stage_order(repo))
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two stages ran side by side"
    assert max(sum(1 for s in spans if s[0] <= t[0] < s[1]) for t in spans) <= 2
    assert summary["workdir"] == str(workdir)
    metrics = json.loads((workdir / "reports/metrics.json").read_text())
    assert set(metrics["target_test"]) == ARMS
    # the user's working tree: untouched
    assert _git_status(repo) == before  # tracked files (params, dvc.lock, metrics.json) unchanged, nothing new
    assert not (repo / "data/prepared").exists() and not (repo / "artifacts/gan/cyclegan/0").exists()  # git-ignored outs
    # the experiment, named after the flow run, visible from the user's repo
    names = subprocess.run([sys.executable, "-m", "dvc", "exp", "list", "--name-only"], cwd=repo, env=env(),
                           capture_output=True, text=True, check=True).stdout.split()
    assert summary["run"] in names
    # Prefect artifacts: the benefit table, the report, links to the files
    table = artifacts(run_id, "transfer-benefit")
    assert len(table) == 1 and table[0].type == "table"
    rows = json.loads(table[0].data) if isinstance(table[0].data, str) else table[0].data
    assert {r["arm"] for r in rows} == ARMS
    assert {a.key for a in artifacts(run_id)} >= {"transfer-benefit", "transfer-report", "transfer-metrics-file", "transfer-report-file"}
    link = artifacts(run_id, "transfer-report-file")[0]  # into a worktree that pruning removes later: said, with the way back
    assert link.description.endswith(f"after that `dvc exp apply {summary['run']}` in the repository brings this run's reports back")
    # the stage commands' own output reached the run log
    messages = "\n".join(log_messages(run_id))
    assert "prepare: " in messages and "images -> data/prepared/manifest.csv" in messages
    assert "train_gan@cyclegan-0 step 12/12" in messages
    # HEAD holds no dvc.lock: one line says so, not DVC's warning for each of about 40 outputs
    assert "output(s) of dvc.yaml have no record in HEAD's commit (no dvc.lock committed)" in messages
    assert "No file hash info" not in messages
    # nor DVC's advice after each stage to `git add dvc.lock` in a worktree whose results the flow records itself
    assert "Updating lock file 'dvc.lock'" in messages and "To track the changes with git" not in messages
    assert "core.autostage" not in messages and "dvc push" not in messages


def test_prefect_second_run_is_quick_and_in_place_runs_skip(repo):
    _, summary = _run(repo_path=str(repo))
    statuses = {r["stage"]: r["status"] for r in summary["stages"]}
    # DVC run-cache, shared cache: nothing recomputed; index_raw lists data.root again, as on every run
    assert {st for s, st in statuses.items() if s not in ALWAYS_RUN} == {"restored"}
    assert [s for s, st in statuses.items() if st == "ran"] == ALWAYS_RUN
    _run(repo_path=str(repo), isolate=False, experiment=False)
    run_id, summary = _run(repo_path=str(repo), isolate=False, experiment=False)
    assert {r["stage"]: r["status"] for r in summary["stages"]} == {s: "ran" if s in ALWAYS_RUN else "skipped" for s in stage_order(repo)}
    states = task_states(run_id, expect=stage_order(repo))
    assert {states[s] for s in stage_order(repo) if s not in ALWAYS_RUN} == {"Skipped"}


def test_prefect_overrides_and_stage_subset(repo):
    params_before = (repo / "params.yaml").read_text()
    _, summary = _run(repo_path=str(repo), overrides=["classifier.steps=7"], stages=["train_classifier@source_only-0"],
                      experiment=False)
    statuses = {r["stage"]: r["status"] for r in summary["stages"]}
    upstream = ["code", "prepare", "few_labels", "arm_inputs"] + [f"{stage}@{gan}-{seed}" for gan in ("cyclegan", "cgan") for seed in (0, 1) for stage in ("train_gan", "synthesize")]
    assert set(statuses) == set(upstream) | set(ALWAYS_RUN) | {"train_classifier@source_only-0"}
    assert list(statuses)[0] == "code" and list(statuses)[-1] == "train_classifier@source_only-0"
    assert statuses["train_classifier@source_only-0"] == "ran"
    assert all(statuses[s] in ("restored", "skipped") for s in upstream)
    run_params = yaml.safe_load((repo / ".dvc/tmp/runs" / summary["run"] / "params.yaml").read_text())
    assert run_params["classifier"]["steps"] == 7
    assert (repo / "params.yaml").read_text() == params_before


def test_prefect_bad_override_is_named_before_any_stage(repo):
    with pytest.raises(ParamsError, match=r"gan\.cyclegan\.steps: Input should be greater than 0"):
        pipeline(repo_path=str(repo), overrides=["gan.cyclegan.steps=-1"], experiment=False)
    # a deployment's parameters out of range: jobs -1 ran no stage and ended Completed
    with pytest.raises(ParamsError, match=r"flow parameter keep_runs -2, jobs -1: must be 0 or more"):
        pipeline(repo_path=str(repo), keep_runs=-2, jobs=-1)
    # a stage dvc.yaml does not define with these params (a deployment's `stages`): DVC's StageNotFound traceback
    with pytest.raises(ParamsError, match=r"--stage train_gan@cgan-0: not a stage of dvc\.yaml with these params; its stages: code, "):
        pipeline(repo_path=str(repo), overrides=["gan.kinds=[cyclegan]", "classifier.arms=[source_only,cyclegan]"],
                 stages=["train_gan@cgan-0"], experiment=False)
    # In place (as `domain-augment demo -S` runs): the refused value never reaches params.yaml.
    before = (repo / "params.yaml").read_bytes()
    with pytest.raises(ParamsError, match=r"classifier\.seeds"):
        pipeline(repo_path=str(repo), overrides=["classifier.steps=9", "classifier.seeds=[]"], isolate=False, experiment=False)
    assert (repo / "params.yaml").read_bytes() == before


def test_prefect_a_run_named_like_a_path_works_in_a_folder_of_its_own(repo):
    """A flow run named `../..` (Prefect takes any name) made its worktree path leave the runs folder,
    and whatever was there was removed first: with a runs folder present, the whole checkout."""
    state = pipeline.with_options(flow_run_name="../..")(repo_path=str(repo), stages=["code"], return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["run"].startswith("run") and Path(summary["workdir"]).parent == repo / ".dvc/tmp/runs"
    assert (repo / ".git").is_dir() and (repo / "dvc.yaml").is_file()
    assert summary["experiment"]["experiment"] == summary["run"]


def _kill_once(needle: str, within, killed: list[int], timeout: float = 180) -> None:
    """SIGKILL the stage's Python process under `within` whose command line contains `needle`, half a second after it starts."""
    pid = stage_process(needle, within, timeout)
    if pid is not None:
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)


def test_prefect_a_stage_killed_once_is_retried_and_completes(repo):
    killed: list[int] = []
    killer = threading.Thread(target=_kill_once, args=("pipelines.stages.train_gan --gan cyclegan --seed 0", repo, killed))
    killer.start()
    run_id, summary = _run(repo_path=str(repo), stages=["train_gan@cyclegan-0"], force=True, retry_delay_seconds=0, experiment=False)
    killer.join()
    assert killed, "the stage process was never seen"
    ran = {r["stage"]: r for r in summary["stages"]}["train_gan@cyclegan-0"]
    assert ran["status"] == "ran" and ran["tries"] == 2  # the summary says it took a second try
    assert task_run_counts(run_id, expect=["train_gan@cyclegan-0"])["train_gan@cyclegan-0"] == 2  # killed once (SIGKILL: transient), run again
    assert re.search(r"exited with (-9|137)\b", "\n".join(log_messages(run_id)))  # -9 itself, 137 through a shell


def test_prefect_a_stage_whose_dvc_process_is_killed_does_not_train_on_unsupervised(repo):
    """SIGKILL of a stage's `dvc repro` (not of the stage's command) left the command running as an orphan,
    holding the pipe the flow reads: the flow waited for it to end by itself (minutes of training), and then
    threw its work away. Now the command is stopped within seconds and the stage fails as killed."""
    import psutil

    seen: dict = {}

    def kill_dvc() -> None:
        seen["stage"] = stage_process("pipelines.stages.train_gan --gan cyclegan --seed 0", repo, 240)
        seen["dvc"] = stage_process("dvc.yaml:train_gan@cyclegan-0", repo, 10)
        if seen["stage"] and seen["dvc"]:
            time.sleep(1)
            os.kill(seen["dvc"], signal.SIGKILL)
            seen["at"] = time.monotonic()
            stage = psutil.Process(seen["stage"])
            while stage.is_running() and stage.status() != psutil.STATUS_ZOMBIE and time.monotonic() - seen["at"] < 120:
                time.sleep(0.1)
            seen["gone_after"] = time.monotonic() - seen["at"]

    killer = threading.Thread(target=kill_dvc)
    killer.start()
    state = pipeline(repo_path=str(repo), stages=["train_gan@cyclegan-0"], force=True, stage_retries=0, experiment=False,
                     overrides=["gan.cyclegan.steps=20000"], return_state=True)  # hours of training if left alone
    killer.join()
    assert seen.get("at"), f"the stage's processes were never seen: {seen}"
    assert seen["gone_after"] < 60, seen  # stopped within seconds (more on a loaded machine), not left training for 10 minutes
    assert state.is_failed(), state.message  # killed, with no retry left here (a run's default retries it, resuming the GAN)


def test_prefect_retries_only_transient_failures():
    assert is_transient("failed to run: python -m pipelines.stages.train_gan, exited with -9")
    assert is_transient("failed to run: python -m pipelines.stages.train_gan, exited with 137")  # SIGKILL, reported by sh
    assert not is_transient("failed to run: python -m pipelines.stages.train_gan, exited with 1")
    assert not is_transient("failed to run: python -m pipelines.stages.train_gan, exited with 1370")
    for stopped in ("-15", "143", "-2", "130", "-1", "129"):  # SIGTERM, SIGINT, SIGHUP: someone stopped the run
        assert not is_transient(f"failed to run: python -m pipelines.stages.train_gan, exited with {stopped}")
    assert is_transient("Unable to acquire lock. Most likely another DVC process is running")
    assert not is_transient("failed to run: python -m pipelines.stages.prepare, exited with 2")
    assert run_stage.retry_condition_fn is not None
