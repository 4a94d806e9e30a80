"""Forward what DVC and the stage commands print to a callback (the Prefect run log).

DVC runs each stage's command as a child process that writes straight to file descriptors 1
and 2, so capturing `sys.stdout` is not enough: the descriptors themselves are redirected into a
pipe for the duration, and a thread hands each line to `emit` and echoes it to the original
stdout. `emit` must not write to stdout or stderr itself (that would loop back into the pipe):
give it a logger whose only handler sends records to the API. Descriptors are process-wide, so
captures in one process are serialised by a lock (Prefect workers run each flow run in its own
process).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Callable, Iterator

_LOCK = threading.Lock()


@contextlib.contextmanager
def forward_output(emit: Callable[[str], None], *, echo: bool = True) -> Iterator[list[str]]:
    """Within the block, every line written to fd 1 or 2 (by us or by children) goes to `emit`.

    Yields the list of captured lines, complete once the block exits.
    """
    lines: list[str] = []
    with _LOCK:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        read_fd, write_fd = os.pipe()

        def pump() -> None:
            with os.fdopen(read_fd, "rb") as reader:
                for raw in reader:
                    if echo:
                        os.write(saved_out, raw)
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    lines.append(line)
                    if line.strip():
                        try:
                            emit(line)
                        except Exception:  # noqa: BLE001 - a failing log sink must not block the pipe
                            pass

        thread = threading.Thread(target=pump, name="forward-output", daemon=True)
        thread.start()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        try:
            yield lines
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)  # the last write end is gone: the pump reads EOF
            thread.join(timeout=30)
            os.close(saved_out)
            os.close(saved_err)
