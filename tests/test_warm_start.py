"""Stages forked from a warm server (pipelines/warm_start.py): what a stage's process does and says is
what a fresh process would, with the code of its own copy of the project, and the stage goes when its
process goes. Every test here uses a real server: the session's (tests/conftest.py) or its own."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipelines.warm_start import FORKED_ENV, WARM_STAGES_ENV, warm_stages
from tests.conftest import REPO
from tests.e2e import env

# Stages of the test's own copy of the project (only modules of pipelines.stages are handed over).
SLEEPY = '''"""A stage that says who runs it, then works until it is stopped."""
import json, os, sys, time
from pipelines.runtime import run_stage

def main(argv):
    print(json.dumps({"pid": os.getpid(), "forked_from": os.environ.get("%s")}), flush=True)
    time.sleep(float(sys.argv[1]))
    print("slept")

if __name__ == "__main__":
    run_stage(main)
''' % FORKED_ENV
GOODBYE = '''"""A stage whose last words come from an atexit handler and an unflushed print."""
import atexit, sys
from pathlib import Path
from pipelines.runtime import run_stage

def main(argv):
    atexit.register(lambda: Path("atexit.txt").write_text("ran"))
    sys.stdout.write("no newline, not flushed")
    sys.stderr.write("to stderr\\n")

if __name__ == "__main__":
    run_stage(main)
'''


@pytest.fixture
def project(tmp_path) -> Path:
    """The project's packages in a folder of their own, with two test stages added."""
    for package in ("augment", "models", "pipelines"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pipelines/stages/sleepy.py").write_text(SLEEPY)
    (tmp_path / "pipelines/stages/goodbye.py").write_text(GOODBYE)
    return tmp_path


def stage(project: Path, *args: str, warm: str | None = None, extra: dict | None = None) -> subprocess.CompletedProcess:
    e = {**env(), **(extra or {})}
    if warm is not None:
        e[WARM_STAGES_ENV] = warm
    return subprocess.run([sys.executable, "-m", *args], cwd=project, env=e, capture_output=True, text=True, timeout=120)


def started(project: Path, name: str = "code") -> str:
    return json.loads((project / "timings" / f"{name}.json").read_text())["started"]


def test_a_warm_stage_writes_and_says_what_a_fresh_process_does(project):
    assert os.environ.get(WARM_STAGES_ENV), "the session's server (tests/conftest.py)"
    cold = stage(project, "pipelines.stages.code", "--out", "cold", "--timings-dir", "timings", warm="off")
    assert cold.returncode == 0, cold.stderr
    assert started(project) == "cold"
    warm = stage(project, "pipelines.stages.code", "--out", "warm", "--timings-dir", "timings")
    assert warm.returncode == 0, warm.stderr
    assert started(project) == "warm"
    assert warm.stdout == cold.stdout.replace("-> cold", "-> warm") and warm.stderr == cold.stderr == ""
    pins = sorted(p.name for p in (project / "cold").iterdir())
    assert pins and pins == sorted(p.name for p in (project / "warm").iterdir())
    for name in pins:
        assert (project / "warm" / name).read_bytes() == (project / "cold" / name).read_bytes(), name


def test_a_warm_stage_runs_its_own_copys_code_not_the_servers(project):
    """The server imported no module of the project: a code edit (or another checkout, a run's
    worktree) is what the stage runs."""
    code = project / "pipelines/stages/code.py"
    code.write_text(code.read_text().replace('print(f"code: pinned', 'print(f"edited code: pinned'))
    warm = stage(project, "pipelines.stages.code", "--out", "out", "--timings-dir", "timings")
    assert warm.returncode == 0, warm.stderr
    assert started(project) == "warm" and warm.stdout.startswith("edited code: pinned"), warm.stdout


def test_exit_codes_messages_and_atexit_reach_the_stages_process(project):
    for warm in ("off", None):
        refused = stage(project, "pipelines.stages.code", "--no-such-option", warm=warm)
        assert refused.returncode == 2 and "unrecognized arguments: --no-such-option" in refused.stderr, refused.stderr
        bye = stage(project, "pipelines.stages.goodbye", warm=warm)
        assert (bye.returncode, bye.stdout, bye.stderr) == (0, "no newline, not flushed", "to stderr\n")
        assert (project / "atexit.txt").read_text() == "ran"
        (project / "atexit.txt").unlink()


def _start_sleepy(project: Path, seconds: float = 60, extra: dict | None = None, sigint=signal.SIG_DFL) -> tuple[subprocess.Popen, dict]:
    """The sleepy stage's process, with SIGINT as `sigint` (a test worker of pytest-xdist ignores it,
    and a process inherits that: a terminal's shell starts it with the default)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.stages.sleepy", str(seconds)], cwd=project, env={**env(), **(extra or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    who = json.loads(proc.stdout.readline())
    return proc, who


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_reaches_the_stage_and_its_process_ends_as_the_stage_did(project):
    proc, who = _start_sleepy(project)
    assert who["pid"] != proc.pid and who["forked_from"], who  # forked by the server, not this process
    # The kernel hands a process's signal to any of its threads that does not block it; only the main
    # thread's sleep is cut short by it (else the KeyboardInterrupt waited out the 60 s here).
    for task in Path(f"/proc/{who['pid']}/task").iterdir():
        if int(task.name) != who["pid"]:
            blocked = int(next(line for line in (task / "status").read_text().splitlines() if line.startswith("SigBlk:")).split()[1], 16)
            assert blocked >> (signal.SIGINT - 1) & 1, f"thread {task.name} of the stage takes SIGINT"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip() == "sleepy: interrupted; no output was left half-written" and "slept" not in out
    assert _gone(who["pid"])


def test_a_ctrl_c_its_process_ignores_the_stage_ignores(project):
    """`nohup`, a job started in the background by a shell without job control: SIGINT ignored."""
    proc, who = _start_sleepy(project, 3, sigint=signal.SIG_IGN)
    assert who["forked_from"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (0, "slept\n", "")


def test_a_stage_ended_by_a_signal_ends_its_process_by_the_same_signal(project):
    proc, who = _start_sleepy(project)
    os.kill(who["pid"], signal.SIGTERM)  # the stage itself, not its process
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM


def test_a_stages_process_killed_outright_takes_the_stage_with_it(project):
    """SIGKILL (the OOM killer, `kill -9`, a test's kill at a random point) cannot be passed on: the
    stage sees its process's end of the connection close."""
    proc, who = _start_sleepy(project)
    proc.kill()
    proc.wait()
    assert _gone(who["pid"], within=5), "the forked stage ran on without its process"


@pytest.mark.parametrize("why", ["an OpenMP setting", "no server"])
def test_a_stage_the_server_cannot_start_as_a_fresh_process_would_starts_cold(project, why):
    other = str(int(os.environ.get("OMP_NUM_THREADS", "1")) + 1)  # not the server's
    extra = {"OMP_NUM_THREADS": other} if why == "an OpenMP setting" else {WARM_STAGES_ENV: str(project / "no-server.sock")}
    proc, who = _start_sleepy(project, 0, extra)
    assert who["pid"] == proc.pid and who["forked_from"] is None
    assert proc.wait(timeout=60) == 0
    done = stage(project, "pipelines.stages.code", "--out", "out", "--timings-dir", "timings", extra=extra)
    assert done.returncode == 0 and started(project) == "cold", done.stderr


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:  # ended (a zombie an earlier test left unreaped)
        return []


def test_a_server_of_ones_own_waits_for_its_stages_then_ends(project, monkeypatch):
    """What a flow run does: `warm_stages` starts a server where none is given, and at the end of the
    block the server ends once the stages it runs have."""
    monkeypatch.delenv(WARM_STAGES_ENV)
    with warm_stages(wait=120) as path:
        assert path and os.environ[WARM_STAGES_ENV] == path
        server, = [p for p in psutil.Process(os.getpid()).children() if path in _cmdline(p)]
        proc, who = _start_sleepy(project, 2)
        assert who["forked_from"] == str(server.pid)
    assert WARM_STAGES_ENV not in os.environ
    assert proc.wait(timeout=60) == 0 and proc.stdout.read() == "slept\n"
    assert _gone(server.pid, within=1) and not Path(path).exists()
