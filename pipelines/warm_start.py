"""Stages forked from a process that has imported torch already.

A stage is a process of its own (DVC runs `python -m pipelines.stages.X`), and a small stage spends
most of its time importing torch, numpy, pandas and PIL (1.5-2.5 s on 2 cores) before it works. A
warm server imports them once and forks a child for each stage: the stage's own process (the
client) hands its command line, working directory, environment, umask, CPU affinity, niceness, ignored
signals and standard streams to that child, waits, and exits as the child exits. The project's own modules are not in the
server: each child imports them afresh from the stage's working directory, as a fresh process does,
so a code edit, a run worktree or another checkout runs its own code.

It is only ever a shortcut. With `WARM_STAGES_ENV` unset, its socket gone, or a stage the server
would not start exactly as a fresh process would (another interpreter or `sys.path`, interpreter
options, a different value of an environment variable that the native libraries read when they
load: OMP_*, MKL_*, TORCH_* and the like; other resource limits; a higher priority than the
server's), the stage runs in its own process as before.

The child is bound to its client: a signal the client gets (SIGINT, SIGTERM, SIGHUP) is passed on
to the child, and a client that dies outright (SIGKILL) takes the child with it (the child watches
the connection). The client exits with the child's exit status, or by the signal that ended it, so
DVC, the flow and a terminal see what they would have seen.

The flow starts a server for its stages (`warm_stages`); `DOMAIN_AUGMENT_WARM_STAGES=off` turns it
off, and a stage's timings (`artifacts/timings/<stage>.json`) say how it was `started`.

    python -m pipelines.warm_start SOCKET    (the server: it stops at SIGTERM, SIGINT, or the end of its stdin)
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from typing import Iterator

WARM_STAGES_ENV = "DOMAIN_AUGMENT_WARM_STAGES"  # the server's socket; unset: every stage starts cold; "off": the flow starts none
FORKED_ENV = "DOMAIN_AUGMENT_FORKED_FROM"  # in a stage forked by a server: the server's pid
STAGE_PACKAGE = "pipelines.stages."
PROJECT_PACKAGES = ("pipelines", "augment", "models")  # imported afresh by each child, never kept in the server
# What the server imports once: what the stages import from outside the project, the slow part of their start.
WARM_MODULES = ("numpy", "pandas", "PIL.Image", "yaml", "pydantic", "torch", "torchvision", "torch.nn.functional", "matplotlib.pyplot")
# Environment variables that native libraries (OpenMP, BLAS, torch) or Python read when they load:
# a stage whose value differs from the server's starts cold, as only a fresh process would honour it.
LOAD_TIME_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "BLIS_", "TORCH", "PYTORCH_", "CUDA_", "NVIDIA_", "PYTHON",
                      "LD_", "MALLOC_", "NUMEXPR_", "NUMPY_", "PANDAS_", "MPL", "TZ")
PASSED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
INHERITED_SIGNALS = (*PASSED_SIGNALS, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)  # ignored in the client -> ignored in the child
_HEADER = 8  # bytes: the request's length, sent with the three descriptors
RLIMITS = ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_RSS", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_CORE", "RLIMIT_STACK",
           "RLIMIT_FSIZE", "RLIMIT_MEMLOCK")


def _process_settings() -> dict:
    """What a process inherits beside its environment: resource limits, niceness, CPU affinity."""
    import resource

    return {"rlimits": {name: list(resource.getrlimit(getattr(resource, name))) for name in RLIMITS if hasattr(resource, name)},
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def _load_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(LOAD_TIME_PREFIXES)}


# ---------------------------------------------------------------- the client: a stage's own process


def hand_over() -> None:
    """Called first thing in a stage (`pipelines/stages/__init__.py`). While Python is still locating
    the module of `python -m pipelines.stages.X` (sys.argv[0] is "-m" until then), and where a warm
    server answers and takes the stage, run it there and exit as it exits; otherwise return and let
    this process run it."""
    path = os.environ.get(WARM_STAGES_ENV)
    orig = sys.orig_argv
    if not path or path == "off" or sys.argv[:1] != ["-m"] or len(orig) < 3 or orig[1] != "-m" or not orig[2].startswith(STAGE_PACKAGE):
        return  # interpreter options (`python -X importtime -m ...`) are a fresh process's to honour
    import json

    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return  # no server (yet, or any more): run here
    umask = os.umask(0)
    os.umask(umask)
    request = json.dumps({
        "executable": sys.executable, "module": orig[2], "args": sys.argv[1:], "orig_argv": orig, "cwd": os.getcwd(),
        "env": dict(os.environ), "path": sys.path, "umask": umask, **_process_settings(),
        "ignored": [int(s) for s in INHERITED_SIGNALS if signal.getsignal(s) is signal.SIG_IGN],
    }).encode()
    try:
        socket.send_fds(conn, [len(request).to_bytes(_HEADER, "big")], [0, 1, 2])
        conn.sendall(request)
        replies = conn.makefile("rb")
        first = replies.readline().split()
    except OSError:
        first = []
    if first[:1] != [b"pid"]:
        conn.close()
        return  # the server declined (or went away before it forked): run here
    child = int(first[1])
    for sig in PASSED_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, lambda signum, frame: _pass_on(child, signum))
    try:
        last = replies.readline().split()
    except OSError:
        last = []
    if last[:1] != [b"status"]:
        # The server ended while the stage ran (killed): its exit status is lost with it.
        os.write(2, f"{orig[2].rpartition('.')[2]}: the warm stage server ({path}) ended before the stage's exit "
                    "status reached this process; see the stage's own output above\n".encode())
        os._exit(1)
    code = os.waitstatus_to_exitcode(int(last[1]))
    if code < 0:  # ended by a signal: end by the same one, as the stage's own process would have
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal that does not end a process (SIGSTOP's kind): the shell's way of saying it
    os._exit(code)


def _pass_on(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass  # it has just ended: its status follows


# ---------------------------------------------------------------- the server


def _declined(request: dict) -> str | None:
    """Why this server would not start `request` exactly as a fresh process would, or None."""
    if request["executable"] != sys.executable:
        return "another interpreter"
    if request["path"][1:] != sys.path[1:]:
        return "another sys.path"
    added = _SERVER_ENV["added"]  # in the client's too where a parent of it imported torch: what a fresh import sets anyway
    env = {k: v for k, v in request["env"].items() if added.get(k) != v}
    if _load_time_env(env) != _load_time_env(_SERVER_ENV["before"]):
        return "environment variables read at load time differ"
    if not request["module"].startswith(STAGE_PACKAGE):
        return "not a stage"
    mine = _process_settings()
    if request["rlimits"] != mine["rlimits"]:
        return "other resource limits"
    if request["nice"] < mine["nice"]:
        return "a higher priority than the server's"  # which only a privileged process may raise to
    return None


# The server's environment as the warm modules found it ("before"), and what importing them added ("added":
# torch sets TORCHINDUCTOR_CACHE_DIR), which a child adds to its client's as a fresh import would.
_SERVER_ENV: dict[str, dict[str, str]] = {}


class _Stage:
    """A stage to run in this (forked) process, as `python -m` would have run it in the client's."""

    def __init__(self, conn: socket.socket, fds: list[int], request: dict):
        self.conn, self.fds, self.request = conn, fds, request

    def run(self) -> None:
        import importlib
        import io
        import runpy
        import threading

        r = self.request
        for fd, target in zip(self.fds, (0, 1, 2)):
            os.dup2(fd, target)
            os.close(fd)  # never 0-2: the server keeps its own open (main)
        os.chdir(r["cwd"])
        os.environ.clear()
        os.environ.update(r["env"])
        os.environ.update({k: v for k, v in _SERVER_ENV["added"].items() if k not in r["env"]})
        os.environ[FORKED_ENV] = str(os.getppid())
        os.umask(r["umask"])
        if r["nice"] != os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, r["nice"])  # lower (a higher nice value): any process may
        if r["affinity"] is not None:
            os.sched_setaffinity(0, r["affinity"])
        for sig in INHERITED_SIGNALS:
            signal.signal(sig, signal.SIG_IGN if int(sig) in r["ignored"] else signal.SIG_DFL)
        if int(signal.SIGINT) not in r["ignored"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, as in a fresh interpreter
        _reopen_streams(io)
        try:
            with open("/proc/self/comm", "w") as f:  # `ps` and `top` name the stage, not the server
                f.write(r["module"].rpartition(".")[2][:15])
        except OSError:
            pass
        for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]:
            del sys.modules[name]
        sys.path[:] = r["path"]
        importlib.invalidate_caches()
        sys.argv = ["-m-forked", *r["args"]]  # not "-m": this process must not hand the stage over again
        sys.orig_argv = list(r["orig_argv"])
        # The watcher starts with every signal blocked, and keeps them so: a Ctrl-C for the stage must reach
        # the main thread, or a blocking call there (time.sleep, a read) runs on to its end before the
        # KeyboardInterrupt (the kernel hands a process's signal to any thread that does not block it).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            threading.Thread(target=self._die_with_client, name="warm-start-client", daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        runpy.run_module(r["module"], run_name="__main__", alter_sys=True)

    def _die_with_client(self) -> None:
        """The client holds the other end until it exits: an end of file here means it was killed."""
        try:
            while self.conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)


def _reopen_streams(io) -> None:
    """sys.stdin/out/err afresh on descriptors 0-2, buffered as a fresh interpreter buffers them."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for fd, name, mode in ((0, "stdin", "rb"), (1, "stdout", "wb"), (2, "stderr", "wb")):
        try:
            interactive = os.isatty(fd)
            raw = io.FileIO(fd, mode, closefd=False)
        except OSError:
            setattr(sys, name, None)
            continue
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        old = getattr(sys, name)
        stream = io.TextIOWrapper(buffered, encoding=getattr(old, "encoding", None), errors=getattr(old, "errors", None),
                                  line_buffering=fd == 2 or (fd == 1 and interactive), write_through=unbuffered and fd != 0)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def serve(path: str) -> _Stage:
    """Take stages on the socket at `path` until SIGTERM, SIGINT, SIGHUP or the end of stdin (where stdin
    is a pipe); then wait for the running ones and exit. Returns only in a forked child, with the stage
    it is to run."""
    import selectors

    server = os.getpid()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as pipelines/stages/__init__.py sets it before torch loads
    before = dict(os.environ)
    for name in WARM_MODULES:
        __import__(name)
    _SERVER_ENV.update(before=before, added={k: v for k, v in os.environ.items() if k not in before})
    import gc

    gc.collect()
    gc.freeze()  # the children's collections skip what is here (and leave its pages shared): prepare ran 1.5 s slower without
    for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES and m != __name__]:
        del sys.modules[name]  # this module's package is imported afresh by each child with the rest
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    with contextlib.suppress(OSError, ValueError):  # whoever started it ends (even killed): its end of the pipe closes
        if not os.isatty(0) and not os.path.samefile(os.devnull, "/proc/self/fd/0"):
            selector.register(0, selectors.EVENT_READ)
    running: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)

    def stop_listening() -> None:
        selector.unregister(listener)
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    try:
        while not stopping or running:
            if stopping and listener.fileno() >= 0:
                stop_listening()
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj == 0:
                    if not os.read(0, 4096):
                        selector.unregister(0)
                        stopping.append("end of stdin")
                elif key.fileobj is listener:
                    stage = _accept(listener, selector, running)
                    if stage is not None:
                        return stage  # the child
                else:
                    pid, conn = running.pop(key.fd)
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    _, status = os.waitpid(pid, 0)
                    with contextlib.suppress(OSError):
                        conn.sendall(f"status {status}\n".encode())
                    conn.close()
    finally:
        if os.getpid() == server and listener.fileno() >= 0:  # not in a child, which returns through here
            stop_listening()
    sys.exit(0)


def _accept(listener, selector, running: dict) -> _Stage | None:
    """Take one stage from `listener`: fork its child (returned in the child) or tell the client to run it itself."""
    import json
    import selectors

    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        conn.settimeout(10)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER, 3)
        size = int.from_bytes(header, "big")
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("the stage's process went away")
            data += chunk
        request = json.loads(data)
        conn.settimeout(None)
        why = _declined(request) if len(fds) == 3 else "no standard streams"
        if why:
            conn.sendall(f"cold {why}\n".encode())
            raise OSError(why)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    pid = os.fork()
    if pid == 0:
        selector.close()
        listener.close()
        for pidfd, (_, other) in running.items():
            os.close(pidfd)
            other.close()
        return _Stage(conn, fds, request)
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(f"pid {pid}\n".encode())
    except OSError:
        pass  # the client is gone: the child sees it too and ends
    pidfd = os.pidfd_open(pid)
    selector.register(pidfd, selectors.EVENT_READ)
    running[pidfd] = (pid, conn)
    return None


def started() -> str:
    """How this stage's process started: "warm" (forked by a server) or "cold"."""
    return "warm" if os.environ.get(FORKED_ENV) else "cold"


def _answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(path)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def warm_stages(wait: float = 0) -> Iterator[str | None]:
    """Within the block, the stages this process starts (through DVC, in the environment) are forked
    from a warm server: the one `WARM_STAGES_ENV` names already if it answers, else one started here
    and stopped at the end (it also stops by itself when this process ends, killed or not: its stdin
    is a pipe from here). It is ready a few seconds after the start; stages started before that start
    cold, unless `wait` > 0: then up to that many seconds are spent waiting for it. Yields the socket's
    path, or None where it is off (`WARM_STAGES_ENV=off`, or no os.fork, os.pidfd_open or AF_UNIX here)."""
    import subprocess
    import tempfile
    import time

    given = os.environ.get(WARM_STAGES_ENV)
    if given == "off" or not all(hasattr(m, a) for m, a in ((os, "fork"), (os, "pidfd_open"), (socket, "AF_UNIX"))):
        yield None
        return
    if given and _answers(given):
        yield given
        return
    from pipelines.interrupt import SPARED

    with tempfile.TemporaryDirectory(prefix="domain-augment-warm-") as folder:
        path = os.path.join(folder, "stages.sock")
        # Its own session: a terminal's Ctrl-C reaches each stage once, through the stage's own process.
        server = subprocess.Popen([sys.executable, "-m", "pipelines.warm_start", path], stdin=subprocess.PIPE, start_new_session=True)
        SPARED.add(server.pid)  # it ends by itself with this process; its stages end with theirs
        os.environ[WARM_STAGES_ENV] = path
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and server.poll() is None and not _answers(path):
            time.sleep(0.1)
        try:
            yield path
        finally:
            if given is None:
                os.environ.pop(WARM_STAGES_ENV, None)
            else:
                os.environ[WARM_STAGES_ENV] = given
            server.stdin.close()  # it stops once the stages it runs have ended
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            SPARED.discard(server.pid)


def main(argv: list[str] | None = None) -> None:
    import warnings

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m pipelines.warm_start SOCKET")
    # Forking beside BLAS's idle worker thread is what this server is for; the children run no thread of its.
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    for fd in (0, 1, 2):  # a stage's streams arrive as new descriptors: none of them may land on 0-2
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    stage = serve(argv[0])
    stage.run()


if __name__ == "__main__":
    main()
