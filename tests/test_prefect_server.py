"""A real `prefect server start`, a process work pool, a worker, and deployment runs of the flow."""
import json
import subprocess
import sys
import time

import pytest

from tests.e2e import env as base_env
from tests.e2e import ONE_SEED, project_copy
from tests.services import PREFECT, api_of, default_sigint, finished_flow_runs, prefect_server, stop

pytestmark = pytest.mark.e2e

POOL = "domain-augment-local"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with prefect_server(tmp_path_factory.mktemp("prefect-home"), base_env()) as env:
        yield env


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    repo = project_copy(tmp_path_factory.mktemp("deployed"), ONE_SEED)
    env = {**server, "PWD": str(repo)}

    def prefect(*args: str) -> str:
        proc = subprocess.run([*PREFECT, *args], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    prefect("work-pool", "create", POOL, "--type", "process")
    prefect("--no-prompt", "deploy", "--name", "nightly")
    worker_log = open(repo.parent / "worker.log", "w")
    worker = subprocess.Popen([*PREFECT, "worker", "start", "--pool", POOL, "--type", "process"], cwd=repo, env=env,
                              stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_sigint)
    try:
        yield repo, env, prefect
    finally:
        stop(worker)
        worker_log.close()


def _trigger(prefect, params: dict | None = None) -> str:
    args = ["deployment", "run", "domain-augment/nightly"]
    if params:
        args += ["--params", json.dumps(params)]
    out = prefect(*args)
    return next(line.split()[-1] for line in out.splitlines() if "UUID" in line)


def test_prefect_deployment_run_on_a_real_server(deployed):
    repo, env, prefect = deployed
    schedules = prefect("deployment", "inspect", "domain-augment/nightly")
    assert "0 3 * * *" in schedules
    (run,) = finished_flow_runs(env, [_trigger(prefect)])
    assert run.state.name == "Completed", run.state.message
    workdir = repo / ".dvc/tmp/runs" / run.name
    metrics = json.loads((workdir / "reports/metrics.json").read_text())
    assert set(metrics) == {"target_test", "source_test", "benefit", "gan", "run", "target_val", "answer", "gan_reference"}
    from tests.prefect_api import artifacts

    with api_of(env):
        assert [a.key for a in artifacts(run.id, "transfer-benefit")] == ["transfer-benefit"]
    listed = prefect("artifact", "ls")
    assert "transfer-benefit" in listed


def test_prefect_two_runs_at_once_both_finish_correctly(deployed):
    repo, env, prefect = deployed
    ids = [_trigger(prefect, {"overrides": [f"classifier.steps={steps}"], "keep_runs": 10}) for steps in (11, 13)]
    runs = finished_flow_runs(env, ids)
    assert [r.state.name for r in runs] == ["Completed", "Completed"], [r.state.message for r in runs]
    for run, steps in zip(runs, (11, 13)):
        workdir = repo / ".dvc/tmp/runs" / run.name
        assert f"steps: {steps}" in (workdir / "params.yaml").read_text()
        metrics = json.loads((workdir / "reports/metrics.json").read_text())
        assert metrics["run"]["seeds"] == [0] and set(metrics["target_test"]) == {"source_only", "cyclegan", "cgan", "oracle"}
        lock = (workdir / "dvc.lock").read_text()
        assert f"steps: {steps}" in lock  # each run's results were computed with its own params
    names = subprocess.run([sys.executable, "-m", "dvc", "exp", "list", "--name-only"], cwd=repo, env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert {r.name for r in runs} <= set(names)
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""


def test_prefect_serve_command_registers_a_schedule_and_runs(deployed):
    repo, env, prefect = deployed
    serve_log = open(repo.parent / "serve.log", "w")
    serve = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--repo", str(repo), "serve", "--cron", "0 4 * * *",
                              "--name", "served", "--stage", "prepare"],
                             cwd=repo, env=env, stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_sigint)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            proc = subprocess.run([*PREFECT, "deployment", "inspect", "domain-augment/served"], cwd=repo, env=env,
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                break
            assert serve.poll() is None, (repo.parent / "serve.log").read_text()[-3000:]
            time.sleep(1)
        assert "0 4 * * *" in proc.stdout
        out = prefect("deployment", "run", "domain-augment/served")
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        (run,) = finished_flow_runs(env, [run_id])
        assert run.state.name == "Completed", run.state.message
        assert (repo / ".dvc/tmp/runs" / run.name / "data/prepared/manifest.csv").is_file()
    finally:
        stop(serve)
        serve_log.close()


def test_a_worker_that_is_not_in_a_checkout_says_so_in_the_flow_runs_log(server, tmp_path):
    """The deployment's pull step runs before the flow: a worker started outside a checkout made the
    run read "Crashed: Process exited with status code: 1" in the UI, the reason in the worker's terminal alone."""
    from prefect import flow
    from prefect.client.orchestration import get_client

    from tests.conftest import REPO
    from tests.prefect_api import log_messages

    @flow(name="pull-step-check")
    def nothing() -> None:
        pass

    with api_of(server), get_client(sync_client=True) as client:
        run = client.create_flow_run(nothing)
    proc = subprocess.run([sys.executable, "-c", "from pipelines.deploy_steps import worker_checkout; worker_checkout()"], cwd=REPO,
                          env={**server, "PREFECT__FLOW_RUN_ID": str(run.id), "DOMAIN_AUGMENT_CHECKOUT": str(tmp_path / "nowhere")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "is not a checkout of the project" in proc.stderr, proc.stderr[-2000:]
    with api_of(server):
        said = log_messages(run.id, until="is not a checkout of the project")
    assert any(f"$DOMAIN_AUGMENT_CHECKOUT={tmp_path / 'nowhere'} on this worker is not a checkout" in line for line in said), said
