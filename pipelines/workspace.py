"""Where a flow run works: an isolated git worktree of HEAD that shares the repo's DVC cache.

Scheduled runs must never change the user's working tree, and two runs started at once must
not trample each other. Each run therefore gets its own worktree under
`<repo>/.dvc/tmp/runs/<run name>` (ignored by git and DVC), checked out at the committed HEAD,
with `cache.dir` pointing at the main repo's cache: outputs computed once are reused by every run
and by the user's own `dvc repro`, and nothing a run writes lands in the user's files. Git steps
that touch shared state (adding or removing worktrees, saving experiments) take a file lock; a
run that has to wait says so, naming the holder.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from pipelines.interrupt import working_in

RUNS_DIR = Path(".dvc/tmp/runs")


class WorkspaceError(RuntimeError):
    """The repo cannot host a run (not a git repo, no commit, git failed); the message says why."""


def _git(args: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def repo_root(path: str | Path) -> Path:
    path = Path(path).resolve()
    if not path.is_dir():
        raise WorkspaceError(f"{path}: {'not a folder' if path.exists() else 'not there'}; give the project's repository (--repo; "
                             "a deployment's run: its repo_path parameter)")
    try:
        return Path(_git(["rev-parse", "--show-toplevel"], path))
    except WorkspaceError:
        raise WorkspaceError(f"{path}: not inside a git repository; the pipeline's runs are recorded as git/DVC experiments") from None


@contextlib.contextmanager
def _file_lock(lock_path: Path, holder: str, busy: Callable[[str, float], None]) -> Iterator[None]:
    """Exclusive flock on `lock_path`, which names its `holder` while held (the kernel drops the lock
    of a killed process: nothing stale is left). While another holds it, `busy(their holder text,
    seconds waited)` is called every half second: it logs, or raises to give up."""
    with open(lock_path, "a+") as fh:
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                busy(fh.read().strip() or "another run", time.monotonic() - start)
                time.sleep(0.5)
        fh.seek(0)
        fh.truncate()
        fh.write(holder)
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def git_lock(root: Path, *, purpose: str, log: Callable[[str], None] = print, timeout: float = 1800) -> Iterator[None]:
    """Exclusive lock on the repo's shared git state, waiting (and saying so) while another run holds it."""
    common = Path(_git(["rev-parse", "--git-common-dir"], root))
    common = common if common.is_absolute() else (root / common)
    lock_path = common / "domain-augment.lock"
    announced = []

    def busy(holder: str, waited: float) -> None:
        if not announced:
            log(f"waiting for {holder} to finish its git step ({lock_path}) before: {purpose}")
            announced.append(True)
        if waited > timeout:
            raise WorkspaceError(f"gave up after {timeout:.0f}s waiting for {lock_path} ({purpose})")

    with _file_lock(lock_path, f"pid {os.getpid()} ({purpose})", busy):
        yield


_HELD: set[Path] = set()  # the workspace locks this process holds


def _workspace_lock_path(workdir: Path) -> Path:
    return Path(workdir).resolve() / ".dvc" / "tmp" / "domain-augment-run.lock"


def in_use(workdir: Path) -> bool:
    """Whether a run holds `workdir`'s workspace lock now."""
    lock_path = _workspace_lock_path(workdir)
    if lock_path in _HELD:
        return True
    try:
        with open(lock_path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


@contextlib.contextmanager
def workspace_lock(workdir: Path, *, purpose: str) -> Iterator[None]:
    """One run at a time in a workspace: a second run there stops at once, naming the first, where
    DVC would fail its stages one by one on their locked outputs. Worktree runs each have their own
    workspace. Taken again by the process that holds it (the CLI, then its flow), it is a no-op."""
    lock_path = _workspace_lock_path(workdir)
    if lock_path in _HELD:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)

    def busy(holder: str, waited: float) -> None:
        raise WorkspaceError(f"{workdir}: {holder} is working in this repository; wait for it to finish, or use "
                             "`domain-augment run`, which works in its own worktree of HEAD")

    with _file_lock(lock_path, f"another domain-augment run (pid {os.getpid()}, {purpose}, since {time.strftime('%H:%M:%S')})", busy):
        _HELD.add(lock_path)
        try:
            yield
        finally:
            _HELD.discard(lock_path)


def dvc_commands_in(workdir: Path) -> list[str]:
    """The DVC commands running in `workdir` (`dvc ...`, `python -m dvc ...`, DVC's queue worker), as
    `pid N: <command line>`; not those in its own worktrees and experiment folders under `.dvc/`."""
    import psutil

    running, inner = [], (Path(workdir) / ".dvc").resolve()
    for proc in working_in(Path(workdir)):
        with contextlib.suppress(psutil.Error):  # it ended, or it is another user's
            command = proc.cmdline()
            if any(Path(arg).name == "dvc" for arg in command) and not Path(proc.cwd()).resolve().is_relative_to(inner):
                running.append(f"pid {proc.pid}: {' '.join(command)[:120]}")
    return running


def check_stage_locks(workdir: Path) -> None:
    """DVC records the stages being run in `.dvc/tmp/rwlock`. A DVC command stopped while it wrote
    that file (killed, or interrupted at the wrong moment) leaves it empty or cut short, and every
    stage then fails on "Unable to read RWLock-file". Stop before the first stage instead, naming
    the file, whether a DVC command still runs here, and what to do."""
    path = Path(workdir) / ".dvc" / "tmp" / "rwlock"
    what = _broken_stage_locks(path)
    if what is None:
        return
    running = dvc_commands_in(Path(workdir))
    advice = (f"DVC commands still run in this repository ({'; '.join(running)}): let them finish or stop them, then delete it"
              if running else "No DVC command runs in this repository now: delete it")
    raise WorkspaceError(f"{path}: DVC's record of the stages being run is {what}. A DVC command was stopped while it wrote it, "
                         f"and DVC refuses every stage of this repository until it is gone. {advice} (`rm {path}`; DVC writes it "
                         "anew: it holds only the locks of commands running now) and run again.")


def _broken_stage_locks(path: Path) -> str | None:
    """What is wrong with DVC's lock record at `path` ("empty", "cut short or garbled (...)", ...); None
    when it is readable or absent."""
    try:
        held = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(held.decode())
        if isinstance(record, dict) and all(isinstance(record.get(k, {}), dict) for k in ("read", "write")):
            return None
        return f"not DVC's record (JSON of another shape: {held[:60].decode(errors='replace')!r})"
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both
        return "empty" if not held.strip() else f"cut short or garbled ({exc})"


def repair_stage_locks(workdir: Path) -> Path | None:
    """After stopping a run's DVC commands: the lock record one of them was cut off writing, removed
    when no DVC command runs in `workdir` any more (it holds only the locks of running commands, and
    DVC writes it anew). Returns the file removed, if any."""
    path = Path(workdir) / ".dvc" / "tmp" / "rwlock"
    if _broken_stage_locks(path) is None or dvc_commands_in(Path(workdir)):
        return None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return path


# What a worktree of HEAD needs to run the pipeline, with how to get it there.
HEAD_NEEDS = {"dvc.yaml": "git add dvc.yaml", "params.yaml": "git add params.yaml", ".dvc/config": "dvc init, then git add .dvc"}


def check_head(root: Path) -> None:
    """WorkspaceError unless HEAD holds what a run in a worktree of it needs: without DVC's own folder
    committed, the run ended in a FileNotFoundError traceback inside the flow."""
    try:
        _git(["rev-parse", "--verify", "HEAD"], root)
    except WorkspaceError:
        raise WorkspaceError(f"{root}: the repository has no commit yet; commit the project before scheduling runs") from None
    held = set(_git(["ls-tree", "-r", "--name-only", "HEAD", "--", *HEAD_NEEDS], root).splitlines())
    lacking = [f for f in HEAD_NEEDS if f not in held]
    if lacking:
        fix = "; ".join(HEAD_NEEDS[f] for f in lacking)
        raise WorkspaceError(f"{root}: HEAD has no {', '.join(lacking)}; a run works in a worktree of HEAD, so commit "
                             f"{'them' if len(lacking) > 1 else 'it'} ({fix}; git commit), or run with --in-place")


def run_name(name: str) -> str:
    """A flow run's name as a worktree folder and an experiment name. Prefect takes any name
    (`prefect deployment run ... --flow-run-name ../..`), and the folder of that name was removed
    before the worktree was made: here it is one path component that git also takes in a ref
    (letters, digits, `.`, `_`, `-`; no leading `.` or `-`, no `..`, no `.lock` at the end)."""
    safe = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", name))[:100].strip(".-")
    return safe.removesuffix(".lock").rstrip(".-") or "run"


def create_run_worktree(root: Path, name: str, *, log: Callable[[str], None] = print) -> Path:
    """A detached worktree of HEAD at <root>/.dvc/tmp/runs/<name>, using root's DVC cache. Where that
    folder is there already (a second run of the same name, perhaps still working in it), the new
    one is <name>-2, -3, ...: nothing there is removed (`prune_runs` removes old worktrees)."""
    check_head(root)
    if run_name(name) != name:
        raise WorkspaceError(f"run name {name!r} cannot name a folder and an experiment; pipelines.workspace.run_name gives {run_name(name)!r}")
    with git_lock(root, purpose=f"create worktree {name}", log=log):
        path, n = root / RUNS_DIR / name, 1
        while path.exists():
            n += 1
            path = root / RUNS_DIR / f"{name}-{n}"
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(["worktree", "add", "--detach", "--force", str(path), "HEAD"], root)
    cache_dir = _main_cache_dir(root)
    (path / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache_dir}\n")
    return path


def sibling_copies(relative: Path, here: Path) -> list[Path]:
    """`relative` (a path under a checkout) in the main checkout and in every run worktree, `here`'s
    own first, whether `here` is the main checkout or a run worktree: where an interrupted run left
    what a later one, in place or in another worktree, may pick up (a GAN's checkpoint)."""
    here = here.resolve()
    depth = len(RUNS_DIR.parts)
    root = here.parents[depth] if len(here.parents) > depth and here.parent.parts[-depth:] == RUNS_DIR.parts else here
    found = [here / relative, root / relative, *sorted((root / RUNS_DIR).glob(f"*/{relative.as_posix()}"))]
    return list(dict.fromkeys(p.resolve() for p in found))  # each once, here's first


def commit_experiment(workdir: Path, name: str, untracked: list[str]) -> str:
    """Record workdir's changes on top of HEAD as DVC experiment `name`; returns the commit.

    The commit is built in a private index and written straight to the experiment's ref
    (`refs/exps/<baseline[:2]>/<baseline[2:]>/<name>`, where `dvc exp` looks), so HEAD, the
    branch, git's index and the working tree are never touched: a user may commit in the same
    checkout while a run is being saved. Tracked files that changed (dvc.lock, params.yaml,
    metrics) and the listed untracked ones go in; the DVC outputs themselves are already in the
    cache, since every stage ran through `dvc repro`. An experiment of the same name on the same
    baseline is replaced.
    """
    baseline = _git(["rev-parse", "HEAD"], workdir)
    ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
    if subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode != 0:
        raise WorkspaceError(f"{name!r} cannot name an experiment (git refuses the ref {ref})")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(["read-tree", "HEAD"], workdir, env)
        _git(["add", "--update", "--", "."], workdir, env)
        if untracked:
            _git(["add", "--force", "--", *untracked], workdir, env)
        tree = _git(["write-tree"], workdir, env)
    commit = _git(["commit-tree", tree, "-p", baseline, "-m", f"domain-augment: experiment {name}"], workdir)
    _git(["update-ref", ref, commit], workdir)
    return commit


def git_remotes(root: Path) -> list[str]:
    return _git(["remote"], root).split()


def _main_cache_dir(root: Path) -> Path:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return Path(repo.cache.local_cache_dir)


def _remove_worktree(root: Path, path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


FINISHED = Path(".dvc/tmp/run_finished")  # in a run's worktree (DVC's git-ignored tmp): the flow run finished there


def mark_finished(workdir: Path) -> None:
    """Record in a run's worktree that its flow run finished (`prune_runs` keeps those apart)."""
    (Path(workdir) / FINISHED).parent.mkdir(parents=True, exist_ok=True)
    (Path(workdir) / FINISHED).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")


def prune_runs(root: Path, keep: int, *, log: Callable[[str], None] = print) -> list[str]:
    """Remove all but the `keep` newest finished run worktrees and the `keep` newest unfinished ones
    (a failed, stopped or killed run's: its GAN checkpoints are what the next run resumes from), never
    one a run still works in. Counted apart, failed tries never push a finished run's report out.
    The results of the removed ones live on as experiments."""
    runs_dir = root / RUNS_DIR
    if not runs_dir.is_dir():
        return []
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    finished = [p for p in runs if (p / FINISHED).is_file()]
    unfinished = [p for p in runs if p not in finished]
    removed = []
    with git_lock(root, purpose="prune old run worktrees", log=log):
        for old in finished[keep:] + unfinished[keep:]:
            if in_use(old):
                continue
            _remove_worktree(root, old)
            removed.append(old.name)
    return removed
