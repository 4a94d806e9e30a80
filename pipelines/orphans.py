"""A run killed outright (SIGKILL: the OOM killer, `kill -9`, a hard stop by a scheduler) cannot stop
what it started: Prefect's temporary server ran on for good (it prints nothing, so no broken pipe
ends it), and a stage ran on until its next line of output.

`stop_when_killed` starts a watchdog process beside the run and gives every process the run starts
a token in its environment (each inherits it). The watchdog waits on a pipe from the run: a run that
ends in any way of its own (finished, failed, Ctrl-C, SIGTERM) says so first and the watchdog exits;
a run that dies says nothing, and the watchdog stops every process that holds the token, as Ctrl-C
would (SIGINT: a stage writes its outputs whole or not at all), then kills what is left.

What the run started outside its own processes is cleaned up by a command given as `then`, which the
watchdog runs first: a sweep's experiments run in DVC's queue worker, a process of DVC's own that
would go on running them without the sweep (pipelines.sweep).

    python -m pipelines.orphans TOKEN COMMAND [THEN ...]    (started by stop_when_killed; reads its stdin)
"""
from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from typing import Iterator

from pipelines.interrupt import SPARED

TOKEN_ENV = "DOMAIN_AUGMENT_RUN_TOKEN"
ENDED = b"ended\n"


@contextlib.contextmanager
def stop_when_killed(command: str, then: list[str] | None = None) -> Iterator[None]:
    """Within the block, the processes `command` starts are stopped by a watchdog if it is killed;
    `then`, a command line, is run first (in this working directory, its output to this stderr)."""
    token = secrets.token_hex(8)
    previous = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    # Its own session: the terminal's Ctrl-C is for the run (pipelines.interrupt), not for the watchdog.
    watchdog = subprocess.Popen([sys.executable, "-m", "pipelines.orphans", token, command, *(then or [])], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, start_new_session=True)
    SPARED.add(watchdog.pid)  # a Ctrl-C's os._exit closes its pipe; it then stops only what was left
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            watchdog.stdin.write(ENDED)
            watchdog.stdin.close()
        SPARED.discard(watchdog.pid)
        if previous is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous


def untracked_env() -> dict[str, str]:
    """This environment without the run's token: for a process the watchdog must leave to `then`."""
    return {key: value for key, value in os.environ.items() if key != TOKEN_ENV}


def holders(token: str) -> list:
    """The processes (psutil) whose environment holds `token`, but this one."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(TOKEN_ENV) == token:
                found.append(proc)
    return found


def stop(token: str) -> list[str]:
    """Stop the processes that hold `token` as Ctrl-C would, then kill what is left
    (pipelines.interrupt.stop_processes); returns what each was: "name (pid N)", and a DVC lock record
    that a DVC command stopped in the middle of writing left unreadable, removed."""
    import psutil

    from pipelines.interrupt import stop_processes
    from pipelines.workspace import repair_stage_locks

    said, repos = [], set()
    for proc in holders(token):
        with contextlib.suppress(psutil.Error):
            said.append(f"{_what(proc)} (pid {proc.pid})")
            if proc.cmdline()[1:3] == ["-m", "dvc"]:
                repos.add(proc.cwd())
    if said:
        stop_processes(lambda: holders(token))
    # A `dvc repro` signalled while it wrote .dvc/tmp/rwlock leaves it empty, and DVC then refuses
    # every command in that repository ("Unable to read RWLock-file") until someone deletes it.
    said += [f"the lock record {path} it cut short (removed)" for path in filter(None, map(repair_stage_locks, sorted(repos)))]
    return said


def _what(proc) -> str:
    line = " ".join(proc.cmdline())
    if "prefect.server.api.server" in line:
        return "Prefect's temporary server"
    argv = proc.cmdline()
    for word in argv:
        if word.startswith("pipelines.stages."):
            return f"stage {word.rpartition('.')[2]}"
    if argv[1:3] == ["-m", "dvc"] and "repro" in argv:  # the flow's `python -m dvc ... repro <dvc.yaml>:<stage>`
        stage = next((word.rpartition(":")[2] for word in argv if word.rpartition(":")[0].endswith("dvc.yaml")), "")
        return f"dvc repro {stage}".rstrip()
    return proc.name()


def main(token: str, command: str, *then: str) -> None:
    if sys.stdin.buffer.read() == ENDED:  # read() returns when the run closes the pipe, or dies
        return
    if then:
        subprocess.run(list(then), stdin=subprocess.DEVNULL, stdout=sys.stderr)
    said = stop(token)
    if said:
        print(f"{command}: the run was killed; stopped what it left running: {', '.join(said)}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
