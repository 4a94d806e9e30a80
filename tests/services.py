"""Real services for end-to-end tests: a Prefect API server, a PostgreSQL server, each started as its
own process group and stopped by PID."""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

PREFECT = [sys.executable, "-m", "prefect"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_sigint() -> None:
    """A `preexec_fn`: SIGINT and SIGHUP back to their defaults, as a terminal, dvc or a service manager
    starts a process. A pytest-xdist worker ignores SIGINT and its children inherit that: a stage then
    cannot be interrupted, and a Prefect worker, which stops on SIGTERM by sending SIGINT to its own
    worker process, waits for the SIGKILL 30 s later. A suite started under `nohup` ignores SIGHUP, and
    a run then rightly goes on when its terminal closes."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process and its children by PID (each was started in its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
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


@contextlib.contextmanager
def prefect_server(home: Path, base_env: dict, extra: dict | None = None) -> Iterator[dict]:
    """`prefect server start` on a free loopback port; yields the environment that talks to it."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**base_env, "PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2", **(extra or {})}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_sigint)
    try:
        wait_healthy(api, proc)
        yield env
    finally:
        stop(proc)
        log.close()


def api_of(env: dict):
    """Point this process's Prefect client at the test server (settings are read once, at import)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]})


def finished_flow_runs(env: dict, ids: list[str], timeout: float = 600) -> list:
    from prefect.client.orchestration import get_client

    deadline = time.time() + timeout
    with api_of(env), get_client(sync_client=True) as client:
        while time.time() < deadline:
            runs = [client.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in runs):
                return runs
            time.sleep(2)
    raise AssertionError(f"flow runs {ids} not finished after {timeout}s: {[r.state for r in runs]}")


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries (initdb, postgres, pg_isready, createdb), or None."""
    found = shutil.which("initdb")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: -int(Path(p).parts[-3]))]
    return next((d for d in candidates if all((d / b).exists() for b in ("initdb", "postgres", "pg_isready", "createdb"))), None)


def _as_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` (else `nobody`) user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    raise RuntimeError("running as root with neither a `postgres` nor a `nobody` user to run PostgreSQL as")


@contextlib.contextmanager
def postgres(database: str = "prefect", user: str = "prefect") -> Iterator[str]:
    """A PostgreSQL server on a free loopback port with a fresh data folder and one database; yields
    its asyncpg URL. The server is stopped by PID and its folder removed."""
    import tempfile

    bin_dir = postgres_bin()
    assert bin_dir is not None, "PostgreSQL server binaries not found"
    as_user = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="domain-augment-pg-"))  # not under pytest's private tmp: the server's user must reach it
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if as_user:  # the server's user owns its folders
        uid, gid = int(as_user[1].split("=")[1]), int(as_user[2].split("=")[1])
        for d in (folder, sockets):
            os.chown(d, uid, gid)
    log_path = folder / "postgres.log"
    proc = None
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        port = free_port()
        with open(log_path, "w") as log:
            if as_user:
                os.chown(log_path, uid, gid)
            proc = subprocess.Popen([*as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode != 0:
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.3)
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database], check=True, capture_output=True)
        yield f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"
    finally:
        if proc is not None:
            stop(proc, signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(folder, ignore_errors=True)


def psql(url: str, query: str) -> str:
    """One query through `psql` against the asyncpg `url` of `postgres()`."""
    bin_dir = postgres_bin()
    rest = url.split("://", 1)[1]
    user, hostport_db = rest.split("@", 1)
    hostport, db = hostport_db.split("/", 1)
    host, port = hostport.split(":")
    proc = subprocess.run([str(bin_dir / "psql"), "-h", host, "-p", port, "-U", user, "-d", db, "-tAc", query], capture_output=True, text=True, check=True)
    return proc.stdout.strip()
