"""Two machines of a team, on one host: what machine A computed, machine B restores instead of recomputing.

Stands for: one Prefect server on a PostgreSQL database, one work pool with a process worker per
machine, one git remote (`origin`) and one DVC remote shared by both, and on each machine its own
clone of the project with its own DVC cache. One deployment, made once from A, runs first on A's
worker, then on B's; B must restore every stage from the remote and report the same metrics.
"""
import json
import subprocess
import sys

import pytest

from pipelines.flows import stage_order

from tests.e2e import env as base_env
from tests.e2e import ALWAYS_RUN, ONE_SEED, project_copy, run
from tests.prefect_api import log_messages, task_states
from tests.services import PREFECT, api_of, default_sigint, finished_flow_runs, postgres, postgres_bin, prefect_server, psql, stop

pytestmark = pytest.mark.e2e

POOL = "domain-augment-local"  # prefect.yaml's nightly deployment


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    root = tmp_path_factory.mktemp("team")
    seed = project_copy(root / "seed", ONE_SEED)
    remote = root / "dvc-remote"
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "team", str(remote)], seed)
    run(["git", "commit", "-qam", "the team's DVC remote"], seed)
    run(["git", "clone", "-q", "--bare", str(seed), str(root / "origin.git")], root)
    machines = {}
    for name in ("a", "b"):
        clone = root / f"machine-{name}"
        run(["git", "clone", "-q", str(root / "origin.git"), str(clone)], root)
        run(["git", "config", "user.email", f"{name}@example.com"], clone)
        run(["git", "config", "user.name", name], clone)
        machines[name] = clone
    with postgres() as db_url:
        home = root / "prefect-home"
        home.mkdir()
        extra = {"PREFECT_API_DATABASE_CONNECTION_URL": db_url, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
        with prefect_server(home, base_env(), extra) as server_env:
            client_env = {k: v for k, v in server_env.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}

            def prefect(*args: str, cwd) -> str:
                proc = subprocess.run([*PREFECT, *args], cwd=cwd, env=client_env, capture_output=True, text=True)
                assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                return proc.stdout

            prefect("work-pool", "create", POOL, "--type", "process", cwd=root)
            for name in machines:
                prefect("work-queue", "create", f"machine-{name}", "--pool", POOL, cwd=root)
            prefect("--no-prompt", "deploy", "--name", "nightly", cwd=machines["a"])
            workers, logs = [], []
            try:
                for name, clone in machines.items():
                    logs.append(open(root / f"worker-{name}.log", "w"))
                    # Each worker knows only its own checkout; nothing of it is in the deployment.
                    worker_env = {**client_env, "DOMAIN_AUGMENT_CHECKOUT": str(clone)}
                    worker_env.pop("PWD", None)
                    workers.append(subprocess.Popen([*PREFECT, "worker", "start", "--pool", POOL, "--work-queue", f"machine-{name}",
                                                     "--type", "process", "--name", f"worker-{name}"],
                                                    cwd=root, env=worker_env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                                    start_new_session=True, preexec_fn=default_sigint))
                yield {"machines": machines, "env": client_env, "db": db_url, "remote": remote, "root": root}
            finally:
                for worker in workers:
                    stop(worker)
                for log in logs:
                    log.close()


def _run_on(team: dict, machine: str):
    from prefect.deployments import run_deployment

    with api_of(team["env"]):
        flow_run = run_deployment("domain-augment/nightly", work_queue_name=f"machine-{machine}", timeout=0)
    (finished,) = finished_flow_runs(team["env"], [str(flow_run.id)], timeout=1500)
    worker_log = (team["root"] / f"worker-{machine}.log").read_text()
    assert finished.state.name == "Completed", f"{finished.state.message}\n{worker_log[-4000:]}"
    return finished


def _metrics(workdir) -> dict:
    return json.loads((workdir / "reports/metrics.json").read_text())


def test_team_machine_b_restores_what_machine_a_computed(team):
    a, b = team["machines"]["a"], team["machines"]["b"]

    run_a = _run_on(team, "a")
    work_a = a / ".dvc/tmp/runs" / run_a.name
    assert work_a.is_dir() and not (b / ".dvc/tmp/runs" / run_a.name).exists()  # A's worker ran it, in A's checkout
    with api_of(team["env"]):
        states_a = task_states(run_a.id, expect=stage_order(work_a))
        messages_a = "\n".join(log_messages(run_a.id, until="skipped of "))  # the flow's last line: its summary
    stages = sorted(n for n in states_a if not n.startswith(("apply-overrides", "publish-report", "record-experiment")))
    assert stages == sorted(stage_order(work_a))  # one task per DVC stage
    assert f"{len(stages)} ran, 0 restored, 0 skipped" in messages_a  # an empty remote: A computes everything
    assert "pushed experiment -> git remote origin" in messages_a
    assert any(team["remote"].rglob("*")), "nothing reached the DVC remote"

    run_b = _run_on(team, "b")
    work_b = b / ".dvc/tmp/runs" / run_b.name
    assert work_b.is_dir() and not (a / ".dvc/tmp/runs" / run_b.name).exists()
    with api_of(team["env"]):
        messages_b = "\n".join(log_messages(run_b.id, until="skipped of "))
    restored = [line for line in messages_b.splitlines() if ": restored in " in line]
    # Every stage came from the remote but index_raw, which lists B's own data folder on every run.
    assert f"{len(ALWAYS_RUN)} ran, {len(restored)} restored" in messages_b, messages_b[-3000:]
    assert {line.split(":")[0] for line in restored} == set(stages) - set(ALWAYS_RUN)
    assert _metrics(work_b) == _metrics(work_a)  # A's results, wall times included: nothing recomputed

    # B lists A's experiment (fetched from origin) beside its own.
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--no-pager", "--json"], b).stdout
    assert run_a.name in shown and run_b.name in shown
    # The runs and their stages live in the team's PostgreSQL database.
    assert int(psql(team["db"], f"select count(*) from flow_run where name in ('{run_a.name}', '{run_b.name}')")) == 2
    assert int(psql(team["db"], f"select count(*) from task_run where flow_run_id = '{run_b.id}'")) >= len(stages)
