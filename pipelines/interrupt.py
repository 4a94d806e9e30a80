"""Ctrl-C during a flow run started from the terminal: stop the stages, say what is kept, exit 130.

The terminal sends SIGINT to its whole process group: the `dvc repro` of each running stage (DVC
stops it; a stage writes its outputs whole or not at all) and the temporary Prefect server the flow
reports to. Left to Prefect, the flow then retried its reports to the stopped server for minutes,
printing tracebacks. Here the first Ctrl-C lets the stages stop (and interrupts those a signal sent
to this process alone did not reach), then exits at once: what finished is recorded in dvc.lock and
the DVC cache, and the same command again continues from there.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Iterator

# Seconds the stages get to stop on the terminal's own SIGINT before they are sent one, and then to
# stop before they are killed.
GRACE_SECONDS = 10.0
STOP_SECONDS = 30.0


def stop_children(grace: float = GRACE_SECONDS, stop: float = STOP_SECONDS) -> None:
    """Wait `grace` s for this process's descendants to exit, send SIGINT to those left, wait `stop` s,
    then SIGKILL the rest."""
    import psutil

    alive = psutil.Process().children(recursive=True)
    for wait, then in ((grace, signal.SIGINT), (stop, signal.SIGKILL)):
        _, alive = psutil.wait_procs(alive, timeout=wait)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(then)
    psutil.wait_procs(alive, timeout=5)


def _say(line: str) -> None:
    os.write(2, f"{line}\n".encode())  # past Prefect's capture of print() in a flow run


@contextlib.contextmanager
def stop_on_interrupt(command: str) -> Iterator[None]:
    """Within the block, SIGINT stops `command`'s stages and exits with 130 and a note of what is kept."""
    def stop(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stopping short
        _say(f"\n{command}: interrupted; stopping the running stages")
        stop_children()
        _say(f"{command}: stopped. Stages that finished are kept (recorded in dvc.lock and the DVC cache); "
             f"`{command}` again continues from there, and `dvc status` lists what is left")
        sys.stdout.flush()
        os._exit(130)  # not an exception: Prefect would report the crash to the stopped server, retrying

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
