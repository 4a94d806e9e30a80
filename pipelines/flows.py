"""Prefect flow: the DVC pipeline, one Prefect task per DVC stage, in DVC's own graph order.

    domain-augment run                     run once (isolated worktree of HEAD; see pipelines.workspace)
    domain-augment serve --cron "0 3 * * *"  serve it on a schedule
    prefect deploy --name nightly           the same, through a work pool (prefect.yaml)

The flow only orchestrates: each stage runs as `dvc repro --single-item <stage>`, so caching, the
run-cache and `dvc.lock` behave exactly as with `dvc repro`. Independent stages run side by side
(`jobs`, default one more than the cores, up to 4, on CPU), each as soon as the stages it depends on are done,
each with its share of the cores. Stages DVC finds up to date are skipped and end in a Completed
state named "Skipped". Each run is saved as a DVC experiment named
after the flow run (and pushed when remotes are configured), and publishes the `transfer-benefit`
table, the report as markdown, and links to the report files as Prefect artifacts.
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Completed

from pipelines.cpu_threads import STAGE_CORES_ENV, usable_cores
from pipelines.interrupt import STOPPING, keep_stopping_on_sigterm, note_stopping_on_signals, stop_what_it_leaves
from pipelines.logcapture import forward_output
from pipelines.runtime import StageFailed, set_offline_env, use_this_python
from pipelines.remote import dvc_remote, git_remotes, pull_before, push_after
from pipelines.warm_start import warm_stages
from pipelines.workspace import (check_stage_locks, commit_experiment, create_run_worktree, git_lock, mark_finished, prune_runs, repo_root,
                                 run_name, workspace_lock)

if TYPE_CHECKING:
    from pipelines.config import DataParams

set_offline_env()
# DVC's logger has its own console handlers; propagating too would print each line twice.
logging.getLogger("dvc").propagate = False

TRANSIENT_PATTERNS = (
    # The stage's process was killed by SIGKILL (the OOM killer, a node reclaiming memory): train_gan
    # resumes. DVC reports -9 when the stage's command is the process that died, 137 when a shell ran
    # it (dash, the /bin/sh DVC uses where SHELL is unset, stays the command's parent). SIGTERM, SIGINT
    # and SIGHUP mean someone stopped the run (Ctrl-C, `timeout`, a scheduler): never retried.
    r"exited with (?:-9|137)\b",
    r"Unable to acquire lock",  # another DVC process holds the repo lock for a moment
    r"CUDA error|NCCL error|out of memory",
)


# What DVC and a stage print when the stage died of SIGINT, SIGTERM or SIGHUP, and how long such a stage waits
# for the run's own handler to say it is stopping before it counts as a failure.
INTERRUPTED = re.compile(r"exited with (?:-2|130|-15|143|-1|129)\b|^ERROR: interrupted by the user|: interrupted; no output was left")
STOP_NOTICE_SECONDS = 3.0


def is_transient(message: str) -> bool:
    return any(re.search(p, message) for p in TRANSIENT_PATTERNS)


def _retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry only failures a second attempt can fix (see TRANSIENT_PATTERNS)."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the failed task's exception, re-raised by result()
        said = exc.report() if isinstance(exc, StageFailed) else str(exc)  # a killed stage: in DVC's last line
        return is_transient(f"{said} {exc.__cause__ or ''}")
    return False


class _NoTracebackForExpectedFailures(logging.Filter):
    """Prefect logs a failed task's and flow's exception with its traceback. For the failures raised
    here on purpose (a stage whose `dvc repro` failed, a refused params file or data folder) the
    message says it all, and the traceback is Prefect's own machinery: some 100 lines before the
    one-line `error:` on a failed stage. Other exceptions keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from augment.contract import DataLayoutError
        from pipelines.config import ParamsError
        from pipelines.workspace import WorkspaceError

        if record.exc_info and isinstance(record.exc_info[1], (StageFailed, ParamsError, DataLayoutError, WorkspaceError)):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):  # the loggers of Prefect's run engines (and of get_run_logger)
    if not any(isinstance(f, _NoTracebackForExpectedFailures) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_NoTracebackForExpectedFailures())


def api_logger(run_logger: logging.LoggerAdapter) -> logging.LoggerAdapter:
    """A logger that sends records to the Prefect API only (no console handler), for captured output."""
    from prefect.logging.handlers import APILogHandler

    base = logging.getLogger("domain_augment.output")
    base.propagate = False
    base.setLevel(logging.INFO)
    if not any(isinstance(h, APILogHandler) for h in base.handlers):
        base.addHandler(APILogHandler())
    return logging.LoggerAdapter(base, extra=dict(run_logger.extra))


NO_HASH_INFO = re.compile(r"No file hash info found for '(.+)'\. It won't be created\.")


@contextlib.contextmanager
def unrecorded_outputs() -> Iterator[list[str]]:
    """Within the block, DVC's checkout warnings of outputs that dvc.lock does not record ("No file
    hash info found for '<path>'. It won't be created.", one per output: about 50 in a worktree of a
    commit without dvc.lock) are left out and their paths collected in the list it yields, for one line."""
    paths: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        found = NO_HASH_INFO.match(record.getMessage())
        if found:
            paths.append(os.path.relpath(found[1]))
        return not found

    logger = logging.getLogger("dvc_data.index.checkout")
    logger.addFilter(keep)
    try:
        yield paths
    finally:
        logger.removeFilter(keep)


@contextlib.contextmanager
def inside(path: str | Path) -> Iterator[None]:
    """DVC's Python API resolves some paths against the current directory: work from the repo's root."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _address(stage, repo_dir: Path) -> str:
    """`name` for stages of the root dvc.yaml, `sub/dvc.yaml:name` otherwise (cwd-independent)."""
    rel = Path(stage.path).resolve().relative_to(repo_dir.resolve())
    return stage.name if str(rel) == "dvc.yaml" else f"{rel}:{stage.name}"


def _target(repo_dir: Path, address: str) -> str:
    file, _, name = address.rpartition(":")
    return f"{repo_dir / (file or 'dvc.yaml')}:{name}"


def stage_graph(repo_dir: Path, targets: list[str] | None = None) -> dict[str, list[str]]:
    """The stages to run (`targets` plus their upstream, default all) in the order `dvc repro` would
    run them, each with the stages among them that it depends on. Only the stages of dvc.yaml files:
    a `.dvc` file of `dvc add` (data tracked by DVC, e.g. a data.root) or of `dvc import` has no
    command to run; the run's worktree gets its data by `dvc checkout` (or a pull) before any stage."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro
    from dvc.stage import PipelineStage

    with inside(repo_dir), Repo(str(repo_dir)) as repo:
        graph = get_active_graph(repo.index.graph)  # edges point from a stage to the stages it depends on
        chosen = collect_stages(repo, [_target(repo_dir, t) for t in targets]) if targets else None
        plan = [s for s in plan_repro(graph, chosen) if isinstance(s, PipelineStage)]
        names = {s: _address(s, repo_dir) for s in plan}
        return {names[s]: [names[u] for u in graph.successors(s) if u in names] for s in plan}


def stage_names(dvc_yaml_text: str, params: dict) -> dict[str, list[str]]:
    """Each stage dvc.yaml defines, with the names DVC gives it under these params (a matrix stage's
    one per combination, `train_gan@cyclegan-0`; another's its own name), without opening a DVC repo:
    so a run's `--stage` can be checked with its -S values applied, before anything starts."""
    import itertools

    import yaml

    from pipelines.config import matrix_axes

    stages = (yaml.safe_load(dvc_yaml_text) or {}).get("stages") or {}
    names: dict[str, list[str]] = {}
    for name, spec in stages.items():
        axes = matrix_axes(spec, params)
        names[name] = [f"{name}@{'-'.join(map(str, combo))}" for combo in itertools.product(*axes.values())] if axes else [name]
    return names


def check_stage_targets(targets: list[str], dvc_yaml: Path, params: dict) -> None:
    """ParamsError naming a `--stage` (or a flow's `stages` entry) that dvc.yaml does not define
    under these params, with the stages it does; a matrix stage's own name (`train_gan`) is all of it."""
    from pipelines.config import ParamsError

    names = stage_names(dvc_yaml.read_text(), params)
    known = {n for group in names.values() for n in group} | set(names)
    for target in targets:
        file, _, name = target.rpartition(":")
        if file in ("", "dvc.yaml") and name not in known:
            listed = ", ".join(group[0] if group == [stage] else f"{stage} ({', '.join(group[:4])}{', ...' if len(group) > 4 else ''})"
                               for stage, group in names.items())
            raise ParamsError(f"--stage {target}: not a stage of {dvc_yaml.name} with these params; its stages: {listed}")


def stage_order(repo_dir: Path, targets: list[str] | None = None) -> list[str]:
    """Stages in the order `dvc repro` would evaluate them: `targets` plus their upstream, default all."""
    return list(stage_graph(repo_dir, targets))


def default_jobs(device: str) -> int:
    """Stages run at once when not told: one more than the cores, up to 4, on CPU (each stage then
    gets a share of the cores, one thread where there are more stages than cores); one on a GPU
    (the stages would share the device).

    The extra stage is for busy machines. Linux shares a core's time among the threads that want
    it, so next to one other CPU-bound process on 2 cores, 2 one-thread stages get 2/3 of a core
    each (1.5x their idle time at best) and 3 get 3/4 of the two cores together. Measured with the
    default demo on 2 cores: idle 377 s with 2 jobs, 384 s with 3; next to `python3 -c "while True:
    pass"` 523 s with 2 jobs, 478 s with 3 (benchmarks/RESULTS.md). `--jobs` sets it, e.g. to the
    cores, to leave a neighbour more of the machine."""
    from pipelines.cuda_probe import cuda_available

    if device == "cuda" or (device == "auto" and cuda_available()):
        return 1
    return max(1, min(4, len(usable_cores()) + 1))


@task(name="apply-overrides")
def apply_overrides(workdir: str, overrides: list[str]) -> str:
    """`key=value` overrides applied to params.yaml, exactly as `dvc exp run -S` applies them.

    They are applied to a copy and validated first: a refused value names its key and leaves
    params.yaml as it was. Returns the run's `runtime.device`."""
    from augment.io import atomic_path
    from pipelines.config import load_params
    from pipelines.presets import check_overrides

    params = Path(workdir) / "params.yaml"
    if overrides:
        with atomic_path(params) as trial:
            check_overrides(params, overrides, into=trial)  # raises before the rename
    checked = load_params(params)  # fails here, by key, not in the middle of a stage
    for note in checked.notes():
        get_run_logger().warning(note)
    return checked.runtime.device


def check_data_root(root: Path, workdir: Path, data: DataParams | None = None, arms: list[str] | None = None) -> None:
    """`data.root`'s layout, before any stage starts: a missing folder, a missing domain or a class
    problem then stops the run by name while `data/prepared` is still in place (`dvc repro prepare`
    removes it before the stage finds the same problem). A relative `data.root` that the user's
    checkout holds but the run's worktree of HEAD does not (an uncommitted, untracked folder) is
    named with the two ways to reach the run. Only lists the files; `prepare` decodes them.
    `data`: the run's checked data params (default: read from the workdir's params.yaml); `arms`, the
    run's classifier.arms where it measures them: refused where the data leaves none measurable."""
    from augment.arms import nothing_measurable, unavailable_on_data
    from augment.contract import DataLayoutError, discover
    from pipelines.config import ParamsError, load_params

    d = data or load_params(workdir / "params.yaml", build_transforms=False).data
    if d.dataset != "folders":
        return
    check_not_pipeline_output(workdir, d)
    rel = Path(d.root)
    if not rel.is_absolute() and not (workdir / rel).is_dir():
        mine = (root / rel).resolve()
        if mine.is_dir() and mine.is_relative_to(root.resolve()):  # workdir is a worktree of HEAD
            raise ParamsError(f"data.root {d.root!r}: a folder of your checkout ({root / rel}) that the run's worktree of the committed HEAD "
                              f"does not hold. Track it with DVC and commit (dvc add {d.root}), give its absolute path "
                              f"(-S data.root={mine}), or run with --in-place")
        if mine.is_dir():
            raise ParamsError(f"data.root {d.root!r}: a folder outside the repository ({mine}), which the run's worktree of HEAD does "
                              f"not reach by that relative path. Give its absolute path (-S data.root={mine}), or run with --in-place")
        tracked = rel.with_name(rel.name + ".dvc")
        if (workdir / tracked).is_file():  # `dvc add` of the folder, committed; its data not checked out (a fresh clone)
            raise ParamsError(f"data.root {d.root!r}: tracked by DVC ({tracked}) but not checked out here: `dvc checkout {tracked}` "
                              f"restores it from the DVC cache, `dvc pull {tracked}` from the team's DVC remote")
        raise ParamsError(f"data.root {d.root!r}: not a folder" + _relative_hint(root, rel))
    try:
        files, _ = discover(workdir / rel, d.source, d.target, _outputs_in(workdir, rel), d.classes)  # DataLayoutError, naming the folder
    except DataLayoutError as exc:  # a relative data.root that names another folder here: the repository's `data`, say
        said = str(exc) + (" (data.root is the repository itself)" if (workdir / rel).resolve() == workdir.resolve() else "")
        raise DataLayoutError(said + _relative_hint(root, rel, d.source) if (Path.cwd() / rel / d.source).is_dir() else said) from None
    labeled = any(f.domain == d.target and f.split == "train" and f.label is not None and f.problem is None for f in files)
    nothing = nothing_measurable(arms or [], unavailable_on_data(arms or [], target_labeled=labeled,
                                                                 labels_per_class=d.target_labels_per_class))
    if nothing:  # else every classifier stage ran and `evaluate` stopped on it
        raise ParamsError(nothing)


def check_inception_weights(root: Path, workdir: Path, weights: str) -> None:
    """evaluate.inception_weights, loaded as evaluate will load it (from `workdir`, the run's repository),
    before any stage: a ParamsError naming the key. A relative path to a file of the user's checkout that
    the run's worktree of HEAD lacks is named with the two ways to reach it."""
    from augment.inception import InceptionWeightsError, load_inception
    from pipelines.config import ParamsError

    rel = Path(weights)
    if not rel.is_absolute() and not (workdir / rel).exists() and (root / rel).is_file():
        raise ParamsError(f"evaluate.inception_weights {weights!r}: a file of your checkout ({root / rel}) that the run's worktree of "
                          f"the committed HEAD does not hold. Give its absolute path (-S evaluate.inception_weights={(root / rel).resolve()}), "
                          "or run with --in-place")
    try:
        load_inception(workdir / rel)
    except InceptionWeightsError as exc:
        raise ParamsError(str(exc)) from None


def _outputs_in(repo: Path, rel: Path) -> set[str]:
    """The folders directly in `repo`/`rel` that the stages write into (`prepared` for the repository's
    `data`): no domains a missing one's message offers."""
    folder = (repo / rel).resolve()
    names = set()
    for out in pipeline_outputs(repo):
        written = (repo / out).resolve()
        if written.is_relative_to(folder) and written != folder:
            names.add(written.relative_to(folder).parts[0])
    return names


def missing_from_head(root: Path, d: DataParams) -> bool:
    """Whether a relative `data.root`, or its source or target folder, is in neither the checkout at
    `root`, nor HEAD's files, nor a `.dvc` file of it or a folder above it: an isolated run's worktree
    of HEAD cannot hold it, so the checkout's own check names the problem before any server starts."""
    rel = Path(d.root)
    if rel.is_absolute() or d.dataset != "folders":
        return False
    for path in (rel, rel / d.source, rel / d.target):
        if (root / path).exists():
            continue
        in_head = subprocess.run(["git", "cat-file", "-e", f"HEAD:{path.as_posix()}"], cwd=root, capture_output=True).returncode == 0
        dvc_files = [root / p.parent / f"{p.name}.dvc" for p in (path, *path.parents) if p.name not in ("", "..")]
        if not in_head and not any(f.is_file() for f in dvc_files):
            return True
    return False


def pipeline_outputs(repo: Path) -> list[str]:
    """The paths the stages of `repo`'s dvc.yaml write (a matrix stage's up to its first `${`), [] where
    it cannot be read (the run's own checks name that)."""
    import yaml

    try:
        stages = yaml.safe_load((repo / "dvc.yaml").read_text()).get("stages") or {}
        outs = [o for s in stages.values() for o in s.get("outs", [])]
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return []
    paths = {str(next(iter(o)) if isinstance(o, dict) else o).split("${")[0].rstrip("/") for o in outs}
    return sorted(p for p in paths if p)


def check_not_pipeline_output(repo: Path, d: DataParams) -> None:
    """A `data.root` inside a folder the stages write (data/prepared), or a source or target domain
    folder that is one or holds one (`data.root` the repository and `data.target: data`): the run
    would read its own outputs as the user's images. ParamsError naming the folder. (A data.root that
    merely holds the repository or its `data/` folder beside the domains is fine: only the two domain
    folders are read.)"""
    from pipelines.config import ParamsError

    rel, top = Path(d.root), repo.resolve()
    root = (repo / rel if not rel.is_absolute() else rel).resolve()
    for what, value, folder in (("data.root", d.root, root), ("data.source", d.source, root / d.source), ("data.target", d.target, root / d.target)):
        for out in pipeline_outputs(repo):
            written = top / out
            if folder == written or folder.is_relative_to(written) or (what != "data.root" and written.is_relative_to(folder)):
                how = "is" if folder == written else "is inside" if folder.is_relative_to(written) else "holds"
                raise ParamsError(f"{what} {value!r}: {folder} {how} {out}, which the pipeline's stages write: the run would read its own "
                                  f"outputs as your images. Keep the images in a folder of their own" + _relative_hint(repo, rel))


def _relative_hint(repo: Path, rel: Path, domain: str = "") -> str:
    """What a relative data.root is read from, and the current folder's one if it holds it (and its
    `domain` folder, where given)."""
    if rel.is_absolute():
        return ""
    here = Path.cwd() / rel
    there = (repo / rel).resolve()
    hint = (f"; the current folder holds one: -S data.root={here.resolve()}"
            if (here / domain).is_dir() and here.resolve() != there else "")
    return f". A relative data.root is read from the repository ({repo}), not from the current folder{hint}"


# What `dvc repro` prints; the last matching line decides (a failed pull is followed by "Running stage").
STAGE_STATUS = (("is cached - skipping run", "restored"), ("Pulling data for", "restored"), ("Running stage '", "ran"),
                ("didn't change, skipping", "skipped"))


def up_to_date(workdir: Path, stages: list[str]) -> set[str]:
    """The `stages` that one `dvc status` finds up to date (none when it fails: each stage's own
    `dvc repro` then decides). One process for all of them instead of one `dvc repro` each."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=workdir, capture_output=True, text=True)
    try:
        changed = json.loads(proc.stdout) if proc.returncode == 0 else None
    except json.JSONDecodeError:
        changed = None
    return set() if not isinstance(changed, dict) else {s for s in stages if s not in changed}


def _skipped(stage: str) -> Completed:
    return Completed(name="Skipped", message=f"{stage} is up to date", data={"stage": stage, "status": "skipped", "seconds": 0.0})


class _ShutdownNoise:
    """Tells apart the "Exception ignored in: ..." reports an exiting interpreter prints for objects
    it cannot finalise (dulwich's, in a `dvc` process: "sys.meta_path is None, Python is likely
    shutting down"), from the report's first line to its exception line. Forty of them pushed a
    failed stage's own traceback out of the lines its error quotes."""

    EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning|Exit|Interrupt)\b")

    def __init__(self) -> None:
        self.inside = False

    def holds(self, line: str) -> bool:
        if line.startswith("Exception ignored in"):
            self.inside = True
            return True
        if self.inside:
            self.inside = not self.EXCEPTION_LINE.match(line)
            return True
        return False


class _GitHints:
    """Tells apart the advice `dvc repro` prints after each stage ("To track the changes with git,
    run: git add dvc.lock", auto staging, `dvc push`): 26 times in one run, and wrong for a run in a
    worktree, whose results the flow records as an experiment itself."""

    START = "To track the changes with git, run:"
    LINES = ("To enable auto staging, run:", "Use `dvc push` to send your updates to remote storage.")

    def __init__(self) -> None:
        self.inside = False

    def holds(self, line: str) -> bool:
        if line == self.START:
            self.inside = True
        elif self.inside:
            self.inside = not line.strip() or line.startswith("\t") or line in self.LINES
        return self.inside


def _say(emit: Callable[[str], None], line: str) -> None:
    emit(line)
    os.write(1, f"{line}\n".encode())  # the console, past Prefect's print capture (emit logs it already)


def _stopped(lines: list[str]) -> bool:
    """Whether a stage that failed was stopped by the run's Ctrl-C or SIGTERM (pipelines.interrupt).
    The terminal's SIGINT reaches the stage and its `dvc repro` as soon as it reaches the run, and
    under load DVC can report the stage dead before the run's handler has said it is stopping: a
    stage that died of SIGINT or SIGTERM waits a moment for that word."""
    if any(INTERRUPTED.search(line) for line in lines):
        return STOPPING.wait(STOP_NOTICE_SECONDS)
    return STOPPING.is_set()


def stage_cause(lines: list[str]) -> str | None:
    """What a failed stage said of its failure, from its last lines: the stage's own `error:` line
    (pipelines.runtime.run_stage), else the exception line that ends a traceback (not a warning),
    else DVC's own error (a killed process: "failed to run: ..., exited with -9"). Each is the last
    of its kind; None when there is none of them."""
    own = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    if own:
        return own[-1]
    raised = [line for line in lines if _ShutdownNoise.EXCEPTION_LINE.match(line) and not re.match(r"[\w.]*Warning\b", line)]
    if raised:
        return raised[-1]
    dvc = [i for i, line in enumerate(lines) if line.startswith("ERROR: ")]
    if not dvc:
        return None
    said = lines[dvc[-1]][len("ERROR: "):]
    if said.rstrip().endswith("blocked by:"):  # DVC's stage lock: the processes holding it follow, a line each
        holders = [line.strip() for line in lines[dvc[-1] + 1:] if line.strip().startswith("(PID")]
        said = said.rstrip() + " " + "; ".join(holders) + (" (another DVC command works in this repository: let it finish, or stop "
                                                           "it, then run again)" if holders else "")
    return said


@task(name="stage", retry_condition_fn=_retry_transient)
def run_stage(workdir: str, stage: str, force: bool = False, cores: int = 0, known_up_to_date: bool = False, pull: bool = False) -> Any:
    """Reproduce one DVC stage with its own `dvc repro` process; up to date -> a Completed state named Skipped.

    `dvc repro` releases the repo lock while the stage's command runs and waits for it before it
    records the result (`--wait-for-lock`), so stages the flow starts side by side each write their
    own entry of dvc.lock. `cores` > 0: the share of the CPU cores this stage's torch threads may use.
    `known_up_to_date`: `dvc status` said so and nothing upstream ran since; no process is started.
    `pull`: `dvc repro --pull`, restoring from the team's DVC remote what some machine already ran.
    """
    log = get_run_logger()
    if known_up_to_date:
        log.info(f"{stage}: up to date, skipped")
        return _skipped(stage)
    emit = api_logger(log).info
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", _target(Path(workdir), stage)]
    env = dict(os.environ)
    if cores:
        env[STAGE_CORES_ENV] = str(cores)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    noise, hints, blank = _ShutdownNoise(), _GitHints(), False
    held: list[str] = []
    status = "ran"
    with subprocess.Popen(cmd + (["--force"] if force else []) + (["--pull"] if pull else []), cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as proc, stop_what_it_leaves(proc):
        for line in proc.stdout:
            line = line.rstrip("\n")
            if not noise.holds(line):  # what the message quotes: the stage's own lines, not an exiting interpreter's
                tail.append(line)
            if line.startswith("ERROR: failed to reproduce"):
                held.append(line)  # DVC's word for a stage stopped by Ctrl-C too: said below only if it was not
                continue
            if hints.holds(line):
                blank = False  # the blank line DVC prints before its advice goes with it
            elif not line.strip():
                blank = True  # said before the next line that is not the advice
            else:
                if blank:
                    _say(emit, "")
                blank = False
                _say(emit, line)
            status = next((name for text, name in STAGE_STATUS if text in line), status)
    if proc.returncode != 0:
        if _stopped(list(tail)):  # Ctrl-C or SIGTERM: the stage was stopped, not broken
            raise StageFailed(f"{stage}: stopped before it finished")
        for line in held:
            _say(emit, line)
        cause = stage_cause(list(tail))
        headline = f"{stage} failed: {cause}" if cause else f"{stage}: `dvc repro` exited with {proc.returncode}"
        raise StageFailed(headline, tail="\n".join(tail))
    seconds = round(time.perf_counter() - t0, 2)
    if status == "skipped":
        log.info(f"{stage}: up to date, skipped")
        return _skipped(stage)
    from prefect.runtime import task_run

    tries = task_run.run_count or 1  # a stage retried after a transient failure (a killed process) says so
    log.info(f"{stage}: {status} in {seconds:.1f}s" + (f" (try {tries})" if tries > 1 else ""))
    return {"stage": stage, "status": status, "seconds": seconds, **({"tries": tries} if tries > 1 else {})}


def run_stages(workdir: Path, graph: dict[str, list[str]], *, force: bool, jobs: int, retries: int, retry_delay_seconds: float,
               unchanged: set[str] = frozenset(), pull: bool = False) -> list[dict]:
    """Run `graph`'s stages as Prefect tasks, up to `jobs` at once, each as soon as the stages it depends
    on have finished; the one with the most stages waiting on it first. A stage in `unchanged` (from
    `up_to_date`) whose upstream all skipped is skipped without a `dvc repro`. After a failure nothing
    new starts; the stages already running finish, then the first failure is raised.
    Results come back in `graph`'s (dvc repro's) order."""
    order = list(graph)
    waiting_on = {s: 0 for s in order}  # how many stages depend on s, directly or not
    for s in order:
        seen, todo = set(), list(graph[s])
        while todo:
            u = todo.pop()
            if u not in seen:
                seen.add(u)
                todo.extend(graph[u])
        for u in seen:
            waiting_on[u] += 1
    done: dict[str, dict] = {}
    running: dict[Any, str] = {}
    pending, failure = list(order), None
    while pending or running:
        if failure is None:
            ready = sorted((s for s in pending if all(u in done for u in graph[s])), key=lambda s: (-waiting_on[s], order.index(s)))
            starting = ready[: max(0, jobs - len(running))]
            # Each stage's share of the cores: split among the stages running from now on. A stage that
            # starts alone (prepare, evaluate) gets them all; its threads give cores back when others
            # start (pipelines/cpu_threads.py measures as it trains).
            cores = max(1, len(usable_cores()) // (len(running) + len(starting))) if starting and jobs > 1 else 0
            for stage in starting:
                pending.remove(stage)
                task = run_stage.with_options(name=f"stage {stage}", task_run_name=stage, retries=retries,
                                              retry_delay_seconds=retry_delay_seconds)
                known = stage in unchanged and all(done[u]["status"] == "skipped" for u in graph[stage])
                running[task.submit(str(workdir), stage, force, cores, known, pull)] = stage
        if not running:
            break
        future = next(as_completed(list(running)))
        stage = running.pop(future)
        try:
            done[stage] = future.result()
        except Exception as exc:  # noqa: BLE001 - re-raised once the running stages have finished
            failure = failure or exc
    if failure is not None:
        raise failure
    return [done[s] for s in order if s in done]


def _git_identity(root: Path) -> bool:
    proc = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, text=True)
    return proc.returncode == 0 and bool(proc.stdout.strip())


@task(name="record-experiment", retries=2, retry_delay_seconds=10, retry_condition_fn=_retry_transient)
def record_experiment(workdir: str, root: str, name: str | None) -> dict:
    """Save the run as DVC experiment `name` (None: save nothing); push what it computed when a DVC
    remote is configured (pipelines/remote.py: the experiment with its cache and run-cache when git
    has a remote `origin`, else the cache and run-cache)."""
    from dvc.repo import Repo

    log = get_run_logger()
    if name and not _git_identity(Path(root)):
        log.warning("git has no user.email here, so the run is not saved as an experiment; "
                    "set it with `git config user.email you@example.com` (and user.name)")
        name = None
    if name and subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True).returncode != 0:
        log.warning("the repository has no commit yet, so the run is not saved as an experiment (an experiment is a commit "
                    "on top of one); commit the project to save the next runs")
        name = None
    rev = None
    with git_lock(Path(root), purpose=f"save experiment {name}" if name else "push the run", log=log.info), inside(workdir), Repo(workdir) as repo:
        if name:
            # What the run produced for git rather than the DVC cache: dvc.lock and uncached metrics/plots.
            produced = ["dvc.lock"] + [str(o) for s in repo.index.stages for o in s.outs if not o.use_cache]
            tracked = set(subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split())
            untracked = [p for p in produced if Path(p).exists() and p not in tracked]
            # Not `dvc exp save`: in place it checks out the baseline (detached HEAD) while it hashes,
            # and a commit the user makes meanwhile would vanish from their branch.
            rev = commit_experiment(Path(workdir), name, untracked)
        push_error = None
        try:
            pushed = push_after(repo, experiment=name, root=Path(root), log=log.info)
        except Exception as exc:  # noqa: BLE001 - the stages' results are here and saved; only the remote refused them
            if is_transient(f"{exc} {exc.__cause__ or ''}"):
                raise  # the task's retries may get through
            pushed, push_error = [], f"{type(exc).__name__}: {exc}"
            later = f"`dvc exp push origin {name}`" if name and "origin" in git_remotes(Path(root)) else "`dvc push --run-cache`"
            log.warning(f"pushing to the DVC remote {repo.config['core'].get('remote')!r} failed ({push_error}); every stage's "
                        f"results are kept here{f' and saved as experiment {name}' if name else ''}: once the remote takes "
                        f"them, {later} in {root} sends them")
    if name:
        log.info(f"saved experiment {name} ({rev})" + ("" if pushed or push_error else "; no DVC remote configured, nothing pushed"))
    return {"experiment": name, "rev": rev, "pushed": pushed, "push_error": push_error}


def benefit_table(metrics: dict) -> list[dict]:
    """One row per arm for the `transfer-benefit` artifact; an unavailable arm (an oracle without
    target labels) keeps its row, with the reason instead of numbers."""
    rows = []
    for arm, m in metrics["target_test"].items():
        acc = m.get("accuracy")
        delta = metrics["benefit"].get(arm, {}).get("accuracy_delta")
        rows.append({
            "arm": arm,
            "target_accuracy": None if acc is None else round(acc["mean"], 4),
            "ci95_low": None if acc is None else round(acc["ci95"][0], 4),
            "ci95_high": None if acc is None else round(acc["ci95"][1], 4),
            "benefit_vs_source_only": None if delta is None else round(delta["mean"], 4),
            "benefit_ci95": None if delta is None else [round(v, 4) for v in delta["ci95"]],
            "note": m.get("reason", "") if acc is None else "",
        })
    return rows


@task(name="publish-report")
def publish_report(workdir: str, isolated: bool = False) -> dict:
    """The Prefect artifacts of a finished run; `isolated`: `workdir` is the run's own worktree, pruned later."""
    reports = Path(workdir) / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    rows = benefit_table(metrics)
    create_table_artifact(table=rows, key="transfer-benefit",
                          description="Target-domain test accuracy per arm, 95% bootstrap intervals, benefit over source_only")
    create_markdown_artifact(markdown=(reports / "report.md").read_text(), key="transfer-report",
                             description="reports/report.md of this run")
    for name, rel in (("metrics", "metrics.json"), ("report", "report.md"), ("plot", "plots/arms.png")):
        path = (reports / rel).resolve()
        if path.exists():
            where = (f"in the run's worktree on the machine that ran the flow, kept while it is among the last keep_runs finished "
                     f"runs; after that `dvc exp apply {Path(workdir).name}` in the repository brings this run's reports back"
                     if isolated else "on the machine that ran the flow")
            create_link_artifact(link=path.as_uri(), link_text=str(path), key=f"transfer-{name}-file",
                                 description=f"reports/{rel} {where}")
    return {"rows": rows, "metrics": str(reports / "metrics.json")}


@flow(name="domain-augment", log_prints=True)
def pipeline(
    repo_path: str = ".",
    overrides: list[str] | None = None,
    stages: list[str] | None = None,
    force: bool = False,
    isolate: bool = True,
    experiment: bool = True,
    stage_retries: int = 1,
    retry_delay_seconds: float = 10,
    keep_runs: int = 5,
    jobs: int = 0,
) -> dict:
    """Run the DVC pipeline of `repo_path`.

    overrides: `key=value` params changes (as `dvc exp run -S`). stages: targets (with their
    upstream), default all. force: re-run even up-to-date stages. isolate: work in a fresh git
    worktree of HEAD (the default; scheduled runs never touch your files) or, when False, in
    the repo itself as `dvc repro` would. stage_retries: attempts after a transient failure.
    jobs: stages run at once, each as soon as what it depends on is done (0: `default_jobs`).
    """
    negative = {k: v for k, v in (("stage_retries", stage_retries), ("retry_delay_seconds", retry_delay_seconds),
                                  ("keep_runs", keep_runs), ("jobs", jobs)) if v < 0}
    if negative:  # jobs -1 ran no stage and ended Completed; keep_runs -2 removed the two oldest worktrees
        from pipelines.config import ParamsError

        raise ParamsError("flow parameter " + ", ".join(f"{k} {v}" for k, v in negative.items()) + ": must be 0 or more")
    keep_stopping_on_sigterm()  # the CLI's `kill` handling, not Prefect's, when the CLI runs the flow
    note_stopping_on_signals()  # served or deployed: a Ctrl-C's stopped stages read as stopped
    log = get_run_logger()
    use_this_python()
    root = repo_root(repo_path)
    given = flow_run.get_name() or f"run-{int(time.time())}"
    name = run_name(given)  # a folder and an experiment: Prefect takes any name (`--flow-run-name ../..`)
    workdir = create_run_worktree(root, name, log=log.info) if isolate else root
    if isolate and Path(workdir).name != name:  # a worktree of that name is there already
        name = Path(workdir).name
    if name != given:
        log.info(f"the run's worktree and experiment are named {name!r} (flow run {given!r})")
    with workspace_lock(workdir, purpose=f"flow run {name}"):
        log.info(f"working in {workdir}" + (" (isolated worktree of HEAD, shared DVC cache)" if isolate else ""))
        # The params first: DVC reads them too, and a file it refuses (a key given twice) would stop the
        # checkout below with a traceback of DVC's instead of the key's name.
        check_stage_locks(workdir)  # before the params: a refused run leaves them as they were
        params_before = (Path(workdir) / "params.yaml").read_bytes()
        device = apply_overrides(str(workdir), list(overrides or []))
        remote = dvc_remote(workdir)
        if isolate:
            from dvc.repo import Repo

            with inside(workdir), forward_output(api_logger(log).info), unrecorded_outputs() as unrecorded:
                if remote:  # outputs of the committed dvc.lock: the team's remote fills what the local cache lacks
                    pull_before(root, workdir, remote, log=log.info)
                else:
                    with Repo(str(workdir)) as repo:
                        repo.checkout(allow_missing=True)  # outputs of the committed dvc.lock, from the shared cache
            if unrecorded:
                log.info(f"{len(unrecorded)} output(s) of dvc.yaml have no record in HEAD's "
                         + ("dvc.lock (stages that had not run when it was committed)" if (Path(workdir) / "dvc.lock").is_file()
                            else "commit (no dvc.lock committed)") + f", e.g. {unrecorded[0]}: the run computes them")
        jobs = jobs or default_jobs(device)
        from pipelines.config import load_params

        run_params = load_params(Path(workdir) / "params.yaml", build_transforms=False)  # as the overrides left it
        if stages:  # refused by name, not by DVC's StageNotFound traceback
            check_stage_targets(list(stages), Path(workdir) / "dvc.yaml", run_params.model_dump())
        graph = stage_graph(workdir, list(stages) if stages else None)
        try:
            if "index_raw" in graph:  # the run reads data.root (not a run of `--stage code` alone)
                check_data_root(Path(root), Path(workdir), run_params.data, run_params.classifier.arms if "evaluate" in graph else None)
            if "evaluate" in graph and run_params.evaluate.inception_weights:  # else a wrong file stops the run at its last stage
                check_inception_weights(Path(root), Path(workdir), run_params.evaluate.inception_weights)
        except Exception:
            if overrides:  # refused before any stage: params.yaml goes back to what it was, as for a refused value
                from augment.io import atomic_path

                with atomic_path(Path(workdir) / "params.yaml") as back:
                    back.write_bytes(params_before)
            raise
        log.info(f"{len(graph)} stage(s), up to {jobs} at once")
        unchanged = set() if force else up_to_date(workdir, list(graph))
        # Each stage forked from a process that has imported torch already; not for a run with nothing to
        # do but index_raw's listing of data.root (it imports no torch): the server's own start costs more.
        to_do = [s for s in graph if s not in unchanged and s != "index_raw"]
        with warm_stages() if to_do else contextlib.nullcontext():
            results = run_stages(workdir, graph, force=force, jobs=jobs, retries=stage_retries, retry_delay_seconds=retry_delay_seconds,
                                 unchanged=unchanged, pull=remote is not None)
        summary: dict = {"run": name, "workdir": str(workdir), "stages": results}
        if experiment or remote:  # first: what the stages computed is kept (and pushed) even if publishing fails
            summary["experiment"] = record_experiment(str(workdir), str(root), name if experiment else None)
        if any(r["stage"] == "evaluate" for r in results):  # a stage subset without evaluate has no report to publish
            summary.update(publish_report(str(workdir), isolated=bool(isolate)))
        if isolate:
            mark_finished(Path(workdir))
            pruned = prune_runs(root, keep_runs, log=log.info)
            if pruned:
                log.info(f"removed old run worktrees: {', '.join(pruned)}")
        counts = {status: [r["stage"] for r in results if r["status"] == status] for status in ("ran", "restored", "skipped")}
        log.info(", ".join(f"{len(v)} {k}" for k, v in counts.items()) + " of " + f"{len(results)} stage(s)"
                 + (f"; ran: {', '.join(counts['ran'])}" if counts["ran"] else ""))
    return summary
