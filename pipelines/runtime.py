"""What every stage entry point shares: offline environment, device choice, timing, clean errors."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, NoReturn

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


class StageFailed(RuntimeError):
    """A stage's `dvc repro` failed (raised by the flow). The message is one line, what the stage said
    of its failure; `tail` holds what it printed last, which the CLI prints under it. Prefect logs a
    failure's message three times (the task's end, the flow's exception, the flow's end), and the
    flow's log already has every line the stage printed."""

    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.tail = tail

    def report(self) -> str:
        """The message with the stage's last lines under it."""
        return f"{self}; its last lines:\n{self.tail}" if self.tail else str(self)


def set_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def use_this_python() -> None:
    """Put this interpreter's bin folder first on PATH, so `python` in dvc.yaml commands is this venv's."""
    bindir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def select_device(requested: str, threads: int = 0):
    """'auto' -> cuda when available, else cpu. Asking for cuda without one is an error, not a fallback.
    Also sets torch's CPU threads: `threads`, or with 0 the idle cores (pipelines/cpu_threads.py)."""
    import torch

    from pipelines import cpu_threads

    cpu_threads.start(threads)  # 0: the cores other processes leave idle
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        from pipelines.config import ParamsError

        raise ParamsError("runtime.device is 'cuda' but this machine has no CUDA device torch can use; set it to 'auto' or 'cpu'")
    return torch.device(requested)


def launched_rank() -> int:
    """This process's rank as torchrun gave it (0 without torchrun), before any process group is up."""
    return int(os.environ.get("RANK", "0"))


def init_distributed(requested: str, threads: int = 0):
    """Under torchrun (WORLD_SIZE > 1): join the process group and return (device, rank, world).

    NCCL with one GPU per process (cuda:LOCAL_RANK) when CUDA is used, gloo on CPU. Without
    torchrun this is `select_device` with rank 0 of 1.
    """
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return select_device(requested, threads), 0, 1
    device = select_device(requested, threads)
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, torch.distributed.get_rank(), world


TIMINGS_DIR = Path("artifacts/timings")


@contextlib.contextmanager
def stage_timer(name: str, timings_dir: Path = TIMINGS_DIR, *, write: bool = True) -> Iterator[dict]:
    """Times the block; on success writes {stage, wall_seconds, started, **what the block added} to
    <timings_dir>/<name>.json. Timings live apart from the stage's data outputs so that those stay
    byte-identical across identical runs (and downstream stages are not re-run for a new clock).
    Microseconds are kept: a stage that trains nothing (test_time) finishes its block in well under
    a millisecond, and milliseconds recorded it as taking no time at all. `started`: "warm" for a stage
    forked by a warm server (pipelines/warm_start.py), else "cold".
    """
    from augment.io import write_json

    t0 = time.perf_counter()
    info: dict = {}
    yield info
    if write:
        from pipelines.warm_start import started

        write_json({"stage": name, "wall_seconds": round(time.perf_counter() - t0, 6), "started": started(), **info},
                   Path(timings_dir) / f"{name}.json")


class TimeLeft:
    """`eta=...` for a progress line: the steps left at the pace since this process's first progress
    line (set-up, compilation and a resumed run's earlier steps do not count); "" until it has two."""

    def __init__(self, total_steps: int, clock: Callable[[], float] = time.monotonic):
        self.total, self.clock = total_steps, clock
        self.start: tuple[int, float] | None = None

    def __call__(self, step: int) -> str:
        now = self.clock()
        if self.start is None:
            self.start = (step, now)
        if step <= self.start[0]:
            return ""
        seconds = round((now - self.start[1]) / (step - self.start[0]) * max(0, self.total - step))
        hours, rest = divmod(seconds, 3600)
        return f" eta={hours}h{rest // 60:02d}m" if hours else f" eta={rest // 60}m{rest % 60:02d}s"


def gan_stage_parser(description: str | None, gans) -> argparse.ArgumentParser:
    """The arguments every per-GAN stage (train_gan, synthesize) takes: which GAN and GAN seed, the
    params file and the prepared set."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--gan", required=True, choices=gans)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--seed", type=int, default=0, help="the GAN's seed (one of gan.seeds)")
    return ap


def add_timings_arg(ap) -> None:
    ap.add_argument("--timings-dir", type=Path, default=TIMINGS_DIR, help=f"where <stage>.json timings go (default: {TIMINGS_DIR})")


def run_stage(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> NoReturn:
    """Run a stage's main and end the process (`end_process`); expected failures print one clear line
    and exit 2, without a traceback. Anything else propagates: a traceback, exit 1."""
    from augment.contract import DataLayoutError
    from augment.io import BadInputFile, NoSpace, StaleInput
    from pipelines.config import ParamsError

    set_offline_env()
    try:
        main(argv)
        code = 0
    except (ParamsError, DataLayoutError, BadInputFile, FileNotFoundError, StaleInput, NoSpace, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # Ctrl-C: outputs are written whole or not at all
        from pipelines.stages import stage_name

        print(f"{stage_name()}: interrupted; no output was left half-written", file=sys.stderr)
        code = 130
    end_process(code)


def end_process(code: int) -> NoReturn:
    """Exit with `code` as the interpreter exits (non-daemon threads joined, atexit handlers run, the
    standard streams flushed), without its teardown of every loaded module: with torch, pandas and
    matplotlib loaded that teardown took 1-1.4 s, a third of a small stage's time. A stage leaves
    nothing else to write at exit: its outputs are written whole (and closed) before its main returns."""
    import atexit
    import threading

    getattr(threading, "_shutdown", lambda: None)()  # what a normal exit does first: join the threads that are not daemons
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

