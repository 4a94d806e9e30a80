"""A real `prefect server start`, a process work pool, a worker, and deployment runs of the flow."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e import env as base_env
from tests.e2e import project_copy

pytestmark = pytest.mark.e2e

PREFECT = [sys.executable, "-m", "prefect"]
POOL = "domain-augment-local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"prefect server at {url} not healthy after {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process and its children by PID (each was started in its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**base_env(), "PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(api, proc)
        yield env
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    repo = project_copy(tmp_path_factory.mktemp("deployed"))
    env = {**server, "PWD": str(repo)}

    def prefect(*args: str) -> str:
        proc = subprocess.run([*PREFECT, *args], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    prefect("work-pool", "create", POOL, "--type", "process")
    prefect("--no-prompt", "deploy", "--name", "nightly")
    worker_log = open(repo.parent / "worker.log", "w")
    worker = subprocess.Popen([*PREFECT, "worker", "start", "--pool", POOL, "--type", "process"], cwd=repo, env=env,
                              stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield repo, env, prefect
    finally:
        _stop(worker)
        worker_log.close()


def _api(env: dict):
    """Point this process's Prefect client at the test server (settings are read once, at import)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]})


def _flow_runs(env: dict, ids: list[str], timeout: float = 600) -> list:
    from prefect.client.orchestration import get_client

    deadline = time.time() + timeout
    with _api(env), get_client(sync_client=True) as client:
        while time.time() < deadline:
            runs = [client.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in runs):
                return runs
            time.sleep(2)
    raise AssertionError(f"flow runs {ids} not finished after {timeout}s: {[r.state for r in runs]}")


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
    (run,) = _flow_runs(env, [_trigger(prefect)])
    assert run.state.name == "Completed", run.state.message
    workdir = repo / ".dvc/tmp/runs" / run.name
    metrics = json.loads((workdir / "reports/metrics.json").read_text())
    assert set(metrics) == {"target_test", "source_test", "benefit", "gan", "run", "target_val"}
    from tests.prefect_api import artifacts

    with _api(env):
        assert [a.key for a in artifacts(run.id, "transfer-benefit")] == ["transfer-benefit"]
    listed = prefect("artifact", "ls")
    assert "transfer-benefit" in listed


def test_prefect_two_runs_at_once_both_finish_correctly(deployed):
    repo, env, prefect = deployed
    ids = [_trigger(prefect, {"overrides": [f"classifier.steps={steps}"], "keep_runs": 10}) for steps in (11, 13)]
    runs = _flow_runs(env, ids)
    assert [r.state.name for r in runs] == ["Completed", "Completed"], [r.state.message for r in runs]
    for run, steps in zip(runs, (11, 13)):
        workdir = repo / ".dvc/tmp/runs" / run.name
        assert f"steps: {steps}" in (workdir / "params.yaml").read_text()
        metrics = json.loads((workdir / "reports/metrics.json").read_text())
        assert metrics["run"]["seeds"] == [0, 1] and set(metrics["target_test"]) == {"source_only", "cyclegan", "cgan", "oracle"}
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
                             cwd=repo, env=env, stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True)
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
        (run,) = _flow_runs(env, [run_id])
        assert run.state.name == "Completed", run.state.message
        assert (repo / ".dvc/tmp/runs" / run.name / "data/prepared/manifest.csv").is_file()
    finally:
        _stop(serve)
        serve_log.close()
