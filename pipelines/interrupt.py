"""Ctrl-C (or SIGTERM) during a flow run started from the terminal: stop the stages, say what is
kept, exit 130 (143).

The terminal sends SIGINT to its whole process group: the `dvc repro` of each running stage (DVC
stops it; a stage writes its outputs whole or not at all) and the temporary Prefect server the flow
reports to. Left to Prefect, the flow then retried its reports to the stopped server for minutes,
printing tracebacks. Here the first Ctrl-C lets the stages stop (and interrupts those a signal sent
to this process alone did not reach), then exits at once: what finished is recorded in dvc.lock and
the DVC cache, and the same command again continues from there. SIGTERM (`kill`, a service
manager) reaches this process alone: its stages and the server are sent SIGINT at once, where they
were left running without their parent.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

# Seconds the stages get to stop on the terminal's own SIGINT before they are sent one, and then to
# stop before they are killed.
GRACE_SECONDS = 10.0
STOP_SECONDS = 30.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_signals() -> tuple[int, ...]:
    """SIGNALS, and SIGHUP (the terminal closed: the run ended with 129, no word, and DVC's lock record
    kept its dead processes) unless it is ignored (`nohup`: the user asked the run to outlive the terminal)."""
    return SIGNALS + (() if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else (signal.SIGHUP,))


def signal_word(signum: int) -> str:
    return {signal.SIGINT: "interrupted", signal.SIGHUP: "hung up (its terminal closed)"}.get(signum, "terminated")
# Set once a signal is being handled: a stage that fails meanwhile was stopped, and the flow says so
# in one line instead of reporting it as a failure with its last lines.
STOPPING = threading.Event()
# Descendants that end by themselves once this process exits, left alone by `stop_children` with their
# own descendants: the watchdog of pipelines.orphans (waited for, it held every Ctrl-C for the whole
# grace period) and the warm stage server of pipelines.warm_start (its stages are stopped through
# their own processes, which pass a signal on: signalled directly as well, a stage got two).
SPARED: set[int] = set()


def _running(procs: list) -> list:
    import psutil

    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _wait_gone(procs: list, timeout: float) -> None:
    """Wait until `procs` have exited, without reaping them: each stage's `dvc repro` is the child of a
    flow thread that waits for its exit status, and a process reaped here would read there as exit 0,
    a stage that ran (psutil.wait_procs reaps)."""
    deadline = time.monotonic() + timeout
    while _running(procs) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_processes(find: Callable[[], list], stop: float = STOP_SECONDS) -> None:
    """Stop the processes (psutil) that `find()` lists: SIGINT first to those with no child among them
    (the stages' commands, Prefect's server), wait `stop` s for all to end, then SIGINT to the rest,
    and SIGKILL to whatever is still listed 5 s later. Each step looks again: the flow's threads may
    start a stage meanwhile.

    A `dvc repro` waits for its stage's command and, once it has ended, records the result and
    releases the repo's locks by itself. Interrupted in the middle of that instead, it left
    .dvc/tmp/rwlock empty, and every later DVC command refused the repo ("Unable to read
    RWLock-file"): it is signalled only if it is still there after its stage is gone."""
    import psutil

    alive = _running(find())
    for proc in _leaves(alive):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGINT)
    _wait_gone(alive, stop)
    for then, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
        alive = _running(find())
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(then)
        _wait_gone(alive, wait)


@contextlib.contextmanager
def stop_what_it_leaves(proc, every: float = 1.0) -> Iterator[None]:
    """Within the block, keep a record of `proc`'s descendants; once `proc` has ended, stop those it
    left running (`stop_processes`). A `dvc repro` killed outright (SIGKILL, the OOM killer) left its
    stage's command training on unsupervised, holding the output pipe the flow reads, and what it
    finished was thrown away when the flow retried the stage."""
    import psutil

    done = threading.Event()

    def watch() -> None:
        known: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(proc.pid)
            while proc.poll() is None and not done.is_set():
                known.update((child.pid, child) for child in parent.children(recursive=True))
                done.wait(every)
        if done.is_set():
            return
        left = [child for child in known.values() if child.is_running()]  # is_running: the same process, not a reused pid
        if left:  # nothing waits for them: a short grace (the flow's retry resumes a GAN from its checkpoint)
            stop_processes(lambda: [child for child in left if child.is_running()], stop=5)

    watcher = threading.Thread(target=watch, name=f"stop-what-{proc.pid}-leaves", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


def working_in(folder: Path) -> list:
    """The processes (psutil) whose working directory is `folder` or under it, but this one."""
    import psutil

    root, found = Path(folder).resolve(), []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != os.getpid() and Path(proc.cwd()).is_relative_to(root):
                found.append(proc)
    return found


def _leaves(procs: list) -> list:
    """Those of `procs` none of whose children is among `procs`."""
    import psutil

    pids = {proc.pid for proc in procs}
    leaves = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if not any(child.pid in pids for child in proc.children()):
                leaves.append(proc)
    return leaves


def stop_children(grace: float = GRACE_SECONDS, stop: float = STOP_SECONDS) -> None:
    """Wait `grace` s for this process's descendants (but SPARED) to exit, then `stop_processes` those left."""
    import psutil

    me = psutil.Process()

    def children() -> list:
        spared = set(SPARED)
        for pid in SPARED:
            with contextlib.suppress(psutil.Error):
                spared.update(proc.pid for proc in psutil.Process(pid).children(recursive=True))
        return [proc for proc in me.children(recursive=True) if proc.pid not in spared]

    _wait_gone(children(), grace)
    stop_processes(children, stop)


def _say(line: str) -> None:
    os.write(2, f"{line}\n".encode())  # past Prefect's capture of print() in a flow run


@contextlib.contextmanager
def stop_on_interrupt(command: str) -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM or SIGHUP (`stop_signals`) stops `command`'s stages and exits
    with 128 + the signal's number and a note of what is kept."""
    def stop(signum, frame) -> None:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C does not cut the stopping short
        STOPPING.set()
        _say(f"\n{command}: {signal_word(signum)}; stopping the running stages")
        stop_children(grace=GRACE_SECONDS if signum == signal.SIGINT else 0)
        if command == "domain-augment run":  # isolated: the checkout's `dvc status` says nothing of its worktree
            _say(f"{command}: stopped. Stages that finished are kept (in the DVC cache and its run-cache, and the run's "
                 f"worktree under .dvc/tmp/runs/); the same `{command}` command again (its --preset and -S values too) restores "
                 "them and continues a GAN from its checkpoint")
        else:
            _say(f"{command}: stopped. Stages that finished are kept (recorded in dvc.lock and the DVC cache); "
                 f"the same `{command}` command again (its --preset and -S values too) continues from there, and `dvc status` "
                 "lists what is left")
        sys.stdout.flush()
        os._exit(128 + signum)  # not an exception: Prefect would report the crash to the stopped server, retrying

    handled = stop_signals()
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    _HANDLERS.append(stop)
    try:
        yield
    finally:
        _HANDLERS.remove(stop)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_HANDLERS: list[Callable] = []  # stop_on_interrupt's handlers in force, innermost last


def note_stopping_on_signals() -> None:
    """Where no stop_on_interrupt runs the flow (`serve`, a worker's deployment run), still mark the run
    as stopping when SIGINT or SIGHUP reaches it, then let the signal do what it did: the stages the
    same Ctrl-C ended read as stopped, not as failures with their last lines. Main thread only."""
    if _HANDLERS or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGHUP):
        previous = signal.getsignal(sig)
        if previous in (signal.SIG_IGN, None) or getattr(previous, "notes_stopping", False):  # ignored, or noted already
            continue

        def noted(signum, frame, previous=previous) -> None:
            STOPPING.set()
            if callable(previous):
                previous(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt
            else:  # SIG_DFL: end as the signal would have
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        noted.notes_stopping = True
        signal.signal(sig, noted)


def keep_stopping_on_sigterm() -> None:
    """Put back stop_on_interrupt's SIGTERM handler where Prefect's flow engine replaced it (called at
    the start of the flow). Prefect's raises in the main thread, which then waits for every running
    stage to end by itself before anything stops: `kill` of a `demo` did nothing for minutes. Outside
    stop_on_interrupt (a worker, a deployment) Prefect's stays: it turns the runner's SIGTERM into a
    cancellation."""
    if _HANDLERS and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _HANDLERS[-1])
