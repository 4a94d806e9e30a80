"""`domain-augment`: the command line.

    domain-augment demo                       the whole pipeline, through the Prefect flow, in this repo
    domain-augment run [-S key=value ...]     one flow run in an isolated worktree of HEAD
    domain-augment check-data ROOT --source S --target T   check an image folder before a run
    domain-augment serve --cron "0 3 * * *"   serve the flow on a schedule (Ctrl-C stops it)
    domain-augment check-params               validate params.yaml and print the parsed values
    domain-augment sweep mix.synthetic_fraction=0.25,0.5,0.75   DVC-queued sweep, chosen on target_val, plotted
    domain-augment pngs                       rebuild the PNG copies of data/prepared and data/synthetic from pixels.npy
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

from pipelines.interrupt import signal_word, stop_on_interrupt
from pipelines.orphans import stop_when_killed
from pipelines.runtime import StageFailed, set_offline_env, use_this_python


def _print_results(summary: dict) -> None:
    _say_push_error(summary)
    metrics_path = Path(summary["metrics"]) if summary.get("metrics") else None
    print()
    width = max([len(r["stage"]) for r in summary["stages"]], default=0)
    for r in summary["stages"]:
        print(f"  {r['stage']:<{width}}  {r['status']:<9} {r['seconds']:7.1f}s" + (f"  (try {r['tries']})" if r.get("tries") else ""))
    if metrics_path is None or not metrics_path.is_file():
        if any(r["stage"] == "evaluate" for r in summary["stages"]):
            print("\nno reports/metrics.json was produced (did the evaluate stage run?)")
        else:  # a --stage subset: what reports/ holds is an earlier run's, if any
            print("\nevaluate was not among the stages of this run: no report or metrics were written")
        return
    metrics = json.loads(metrics_path.read_text())
    print()
    width = max(map(len, metrics["target_test"]), default=0)
    for arm, m in metrics["target_test"].items():
        if "accuracy" not in m:  # an arm the data cannot have (e.g. no target labels): say why
            print(f"  {arm:<{width}}  {m.get('status', 'unavailable')}: {m.get('reason', 'no result')}")
            continue
        acc = m["accuracy"]
        line = f"  {arm:<{width}}  target accuracy {acc['mean']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]"
        if arm in metrics["benefit"]:
            d = metrics["benefit"][arm]["accuracy_delta"]
            line += f"   benefit {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        print(line)
    from augment.answer import answer_lines
    from augment.report import report_warnings, warning_heading

    answer = answer_lines(metrics)
    if answer:
        print("\n" + "\n".join(f"  {line.replace('**', '')}" for line in answer))
    warnings = report_warnings(metrics)
    if warnings:  # the answer's caveats: the report gives each in full
        kinds = collections.Counter(head or rest.split(":")[0] for head, rest in map(warning_heading, warnings))
        named = "; ".join(kind if n == 1 else f"{kind} ({n})" for kind, n in kinds.items())  # one kind for two GANs once
        print(f"\n  {len(warnings)} warning{'' if len(warnings) == 1 else 's'} in the report: {named}")
    reports = metrics_path.parent
    print(f"\nReport:  {(reports / 'report.html').resolve()} (also report.md)\nMetrics: {metrics_path.resolve()}")
    experiment = summary.get("experiment", {}).get("experiment")
    if experiment:
        print(f"Experiment: {experiment} (each arm's benefit beside earlier runs': dvc exp show --drop '.*' --keep "
              "'Experiment|benefit\\..*\\.accuracy_delta\\.mean'; every column: dvc exp show)")
    workdir = Path(summary.get("workdir") or reports.parent)
    if workdir.parent.name == "runs" and workdir.parent.parent.name == "tmp":  # an isolated run's worktree under .dvc/tmp/runs/
        print(f"Run folder: {workdir.resolve()} (the reports' data/prepared/... files are there; the repository's own reports/ "
              "and data/ are unchanged" + (f": `dvc exp apply {experiment}` brings this run's results into them)" if experiment else ")"))
    _say_push_error(summary)


def _say_push_error(summary: dict) -> None:
    """Before the results and after them: a team's remote that refused the run is not lost in the scroll."""
    failed = (summary.get("experiment") or {}).get("push_error")
    if failed:
        print(f"warning: the run's results were not pushed to the DVC remote ({failed}); the flow's log says how to push them",
              file=sys.stderr)


def _count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _only_the_repos_params(args: argparse.Namespace) -> None:
    """Runs read the repository's params.yaml, the file `dvc repro` reads: another file given with
    --params would be checked and then not used."""
    from pipelines.config import ParamsError

    if (Path(args.repo) / args.params).resolve() != (Path(args.repo) / "params.yaml").resolve():
        instead = "-S KEY=VALUE" if args.command == "sweep" else f"-S KEY=VALUE, or as a preset file with --preset {args.params}"
        raise ParamsError(f"--params {args.params}: {args.command} reads the repository's params.yaml, as DVC does (--params is "
                          f"for check-params and check-data); give the values with {instead}")


SERVER_HOW = "prefect server start --host 127.0.0.1 --port 4200, then export PREFECT_API_URL=http://127.0.0.1:4200/api"


def _check_prefect_api(schedules: bool = False) -> None:
    """A PREFECT_API_URL where no server answers: Prefect's own traceback (RuntimeError: Failed to reach
    API) of about 110 lines. Without it set, a run starts a temporary server of its own; a schedule
    (`schedules`: serve) needs a server that lives on, whose scheduler makes its runs (Prefect serves
    on a temporary one, warns once that it cannot schedule, and no run ever starts)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    from pipelines.workspace import WorkspaceError

    url = PREFECT_API_URL.value()
    if not url:
        if schedules:
            raise WorkspaceError(f"serve needs a Prefect server that stays up to schedule its runs, and PREFECT_API_URL is not set "
                                 f"(a temporary server cannot schedule: no run would ever start). Start one: {SERVER_HOW}")
        return
    try:
        httpx.get(url.rstrip("/") + "/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        other = ("" if schedules else
                 ", or unset PREFECT_API_URL and the run starts a temporary server of its own")
        raise WorkspaceError(f"PREFECT_API_URL {url}: no Prefect server answers there ({type(exc).__name__}: {exc}); start it "
                             f"(prefect server start){other}") from None


def _flow_kwargs(args: argparse.Namespace) -> dict:
    """The flow's arguments; this repo's params file checked first, with the overrides applied, so a
    misspelt key, a refused value or a file DVC cannot read stops here, by key, before a Prefect
    server or a worktree starts (the flow checks them again where it runs). So does a `data.root`
    the checkout lacks or cannot use, where the run reads the same folder: in place, or an absolute
    path (an isolated run reads a relative one from its worktree of HEAD, which may pull it from the
    team's DVC remote; a run of a stage subset may not read it at all: the flow decides both)."""
    from pipelines.config import load_params
    from pipelines.flows import check_data_root, check_not_pipeline_output, check_stage_targets, missing_from_head
    from pipelines.presets import as_set_values, check_overrides, preset_overrides
    from pipelines.workspace import check_head, repo_root

    _only_the_repos_params(args)
    params = Path(args.repo) / args.params
    overrides = [o for p in args.preset or [] for o in preset_overrides(p, params)] + (args.set or [])
    described = " and ".join([f"--preset {p}" for p in args.preset or []] + ([as_set_values(args.set)] if args.set else []))
    checked = check_overrides(params, overrides, described=described) if overrides else load_params(params)
    root = repo_root(args.repo)
    reads_root_here = not args.stage and (getattr(args, "in_place", True) or Path(checked.data.root).is_absolute()  # `demo` runs in place
                                          or missing_from_head(root, checked.data))  # nor could the worktree of HEAD find it
    if checked.data.dataset == "folders" and not reads_root_here:  # check_data_root below checks it where it reads the folder
        check_not_pipeline_output(root, checked.data)  # the repository or its stages' outputs as data.root, wherever the run works
    if getattr(args, "in_place", True):
        _check_pipeline_file(root / "dvc.yaml")
        _check_lock_file(root)
    else:  # an isolated run reads HEAD's
        check_head(root)
        _warn_of_uncommitted_changes(root, checked.data)  # git's paths are the root's, wherever the command runs
    if args.stage:  # with the -S values applied: they may add the stage (`-S classifier.arms=[...]`)
        check_stage_targets(args.stage, root / "dvc.yaml", checked.model_dump())
    if reads_root_here:
        check_data_root(root, root, checked.data, checked.classifier.arms)
    _check_prefect_api(schedules=args.command == "serve")
    return {"repo_path": str(Path(args.repo).resolve()), "overrides": overrides, "stages": args.stage or None, "force": args.force,
            "jobs": args.jobs}


def _check_lock_file(root: Path) -> None:
    """dvc.lock, where there is one, readable before a Prefect server starts: DVC's traceback came
    from the flow, through Prefect's log of the failed run."""
    from pipelines.config import ParamsError, read_yaml

    if (root / "dvc.lock").is_file():
        try:
            read_yaml(root / "dvc.lock", "not found")
        except ParamsError as exc:
            raise ParamsError(f"{str(exc).replace(chr(10), ' ')}{_lock_way_out(str(root))}") from None


def _check_pipeline_file(dvc_yaml: Path) -> None:
    """dvc.yaml there and YAML, before a Prefect server starts: without it a run in place ended
    "Completed" with no stage run, or in DVC's traceback."""
    from pipelines.config import ParamsError, read_yaml

    stages = read_yaml(dvc_yaml, "not found; it defines the pipeline's stages (restore it: git checkout -- dvc.yaml)")
    if not isinstance(stages, dict) or not isinstance(stages.get("stages"), dict):
        raise ParamsError(f"{dvc_yaml}: has no 'stages' mapping; it defines the pipeline's stages (restore it: git checkout -- dvc.yaml)")


@contextlib.contextmanager
def _in_place(args: argparse.Namespace, purpose: str) -> Iterator[None]:
    """The repo's workspace lock, taken before a Prefect server starts: a second run in place stops at
    once, naming the first (the flow takes the same lock; in this process it is already held). Then
    DVC's record of the stages being run, which a run in place uses (`check_stage_locks`)."""
    from pipelines.workspace import WorkspaceError, check_stage_locks, dvc_commands_in, repo_root, workspace_lock

    root = repo_root(args.repo)
    with workspace_lock(root, purpose=purpose):
        check_stage_locks(root)
        running = dvc_commands_in(root)  # a `dvc repro` of the user's own: DVC would refuse the stages one by one
        if running:
            raise WorkspaceError(f"{root}: a DVC command is working in this repository ({'; '.join(running)}); wait for it to "
                                 "finish, or use `domain-augment run`, which works in its own worktree of HEAD")
        yield


def _answer_at_end() -> None:
    """The evaluate stage of this process's flow run leaves the benefits and the answer to
    `_print_results` (they were printed twice, the stage's echoed lines and then the summary's)."""
    from augment.answer import ANSWER_AT_END_ENV

    os.environ[ANSWER_AT_END_ENV] = "1"  # inherited by each stage's `dvc repro` and its command


def _demo(args: argparse.Namespace) -> int:
    from pipelines.flows import pipeline

    t0, kwargs = time.perf_counter(), _flow_kwargs(args)  # refused params stop before the lock is taken
    _answer_at_end()
    with _in_place(args, "domain-augment demo"), stop_on_interrupt("domain-augment demo"), stop_when_killed("domain-augment demo"):
        summary = pipeline(**kwargs, isolate=False)
    print(f"\ndomain-augment demo: finished in {time.perf_counter() - t0:.0f}s")
    _print_results(summary)
    return 0


def _run(args: argparse.Namespace) -> int:
    from pipelines.flows import pipeline

    kwargs = _flow_kwargs(args)  # refused params stop before the lock is taken; warns of what an isolated run will not see
    _answer_at_end()
    with _in_place(args, "domain-augment run --in-place") if args.in_place else contextlib.nullcontext(), \
            stop_on_interrupt("domain-augment run" + (" --in-place" if args.in_place else "")), stop_when_killed("domain-augment run"):
        summary = pipeline(**kwargs, isolate=not args.in_place)
    print(f"\nrun {summary['run']} worked in {summary['workdir']}")
    _print_results(summary)
    return 0


# What an isolated run reads from its worktree of HEAD: the params, the stages and the code they import.
RUN_READS = ("params.yaml", "dvc.yaml", "augment", "models", "pipelines")


def _warn_of_uncommitted_changes(repo: Path, data=None, shown: int = 3) -> None:
    """An isolated run works in a worktree of HEAD: an edit of params.yaml or of the code not committed is not in it,
    nor a change to a `data.root` tracked by DVC (`data`: the run's data params) that `dvc add` has not recorded."""
    tracked = _tracked_data_root(repo, data)
    changed = _uncommitted(repo, [*RUN_READS, *([str(tracked)] if tracked else [])])
    if tracked and _changed_since_added(repo, tracked):
        folder = tracked.with_suffix("")
        print(f"warning: data.root {folder} has changed since `dvc add` recorded it in {tracked}; this run works in a worktree of "
              f"HEAD and reads the data as last committed (dvc add {folder} and commit {tracked}, or run with --in-place)", file=sys.stderr)
    if not changed:
        return
    named = _named(changed, shown)
    print(f"warning: {named} {'has' if len(changed) == 1 else 'have'} changes that are not committed; this run works in a "
          "worktree of HEAD and does not use them (commit them, give params with -S, or run with --in-place)", file=sys.stderr)


def _git_status(repo: Path | str, paths: list[str]) -> list[tuple[str, str]]:
    """`git status` of `paths` as (XY status, path) pairs; [] where git cannot tell (no repository, no
    commit: the workspace's own check says so)."""
    import subprocess

    proc = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--", *paths], cwd=repo, capture_output=True)
    if proc.returncode != 0:
        return []
    entries = [e for e in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if e]
    # porcelain v1 -z: "XY path", a rename followed by its old path as an entry of its own
    out, skip = [], False
    for entry in entries:
        if skip:
            skip = False
            continue
        out.append((entry[:2], entry[3:]))
        skip = "R" in entry[:2] or "C" in entry[:2]
    return out


def _uncommitted(repo: Path, paths: list[str], *, untracked: bool = True) -> list[str]:
    """The files under `paths` that differ from HEAD, sorted, each "(not tracked)" where git does not
    track it (`untracked`: listed too); [] where git cannot tell."""
    return sorted(path + (" (not tracked)" if status == "??" else "") for status, path in _git_status(repo, paths)
                  if not (path.endswith(".pyc") or "/__pycache__/" in f"/{path}" or (status == "??" and not untracked)))


def _named(files: list[str], shown: int) -> str:
    return ", ".join(files[:shown]) + (f" and {len(files) - shown} more" if len(files) > shown else "")


def _note_what_a_sweep_runs_with(repo: Path, shown: int = 3) -> None:
    """A sweep's experiments run on the working tree, not HEAD (DVC queues it as it is): edits of
    params.yaml or the code not committed are in every one of them, which its table does not record."""
    changed = _uncommitted(repo, list(RUN_READS), untracked=False)
    if changed:
        named = _named(changed, shown)
        print(f"note: {named} {'has' if len(changed) == 1 else 'have'} changes that are not committed: every experiment of this "
              "sweep runs with them (DVC queues the working tree as it is), and reports/sweep/ does not record them; "
              "`git diff` shows them (commit them first to keep the sweep's base on record)", file=sys.stderr)


def _tracked_data_root(repo: Path, data) -> Path | None:
    """The `.dvc` file (relative to `repo`) of a relative `data.root` that `dvc add` tracks, if any."""
    if data is None or data.dataset != "folders" or Path(data.root).is_absolute():
        return None
    rel = Path(data.root)
    if rel.name in ("", ".."):  # '.' or '..': no folder of that name to `dvc add`
        return None
    tracked = rel.with_name(rel.name + ".dvc")
    return tracked if (repo / tracked).is_file() and (repo / rel).is_dir() else None


def _changed_since_added(repo: Path, tracked: Path) -> bool:
    """Whether the folder of `tracked` (a `dvc add` file) differs from what it records (DVC hashes only
    the files whose size or time changed since it last looked)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            return bool(dvc_repo.status(targets=[str(repo / tracked)]))
    except DvcException:  # the run's own checks name what DVC cannot read
        return False


def _check_schedule(cron: str, name: str) -> None:
    """serve's --cron and --name as Prefect takes them, refused in one line instead of its traceback
    (and an empty name, which Prefect replaced with the flow's)."""
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.types.names import BANNED_CHARACTERS
    from pydantic import ValidationError

    from pipelines.config import ParamsError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise ParamsError(f"--cron {cron!r}: not a cron schedule; five fields, minute hour day-of-month month day-of-week, "
                          'e.g. "0 3 * * *" (03:00 every day)') from None
    banned = [c for c in BANNED_CHARACTERS if c in name]
    if not name.strip() or banned:
        raise ParamsError(f"--name {name!r}: " + (f"Prefect refuses {' '.join(banned)} in a deployment's name" if banned else "empty")
                          + "; e.g. --name nightly")


def _serve(args: argparse.Namespace) -> int:
    from pipelines.flows import pipeline

    _check_schedule(args.cron, args.name)
    params = {**_flow_kwargs(args), "isolate": True}
    print(f"serving deployment domain-augment/{args.name} with cron {args.cron!r} for {params['repo_path']}; Ctrl-C stops")
    pipeline.serve(name=args.name, cron=args.cron, parameters=params, tags=["domain-augment"],
                   description="Re-train and re-measure the transfer benefit on a schedule")
    return 0


def _check_params(args: argparse.Namespace) -> int:
    from pipelines.config import load_params

    # every classic transform built, also with no arm that applies them yet
    params = load_params(Path(args.repo) / args.params, build_transforms="always")
    print(json.dumps(params.model_dump(), indent=2))
    notes = params.notes()
    for note in notes:  # valid, but something would run for nothing
        print(f"note: {note}", file=sys.stderr)
    # the verdict last, on stderr: stdout stays the parsed values alone, for a program to read
    verdict = f"{args.params}: valid"
    if notes:
        verdict += ", with the note above" if len(notes) == 1 else f", with the {len(notes)} notes above"
    print(verdict, file=sys.stderr)
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from augment.check_data import DataCheck, check_data
    from pipelines.config import ParamsError, parse_params, read_yaml

    # The values `run` would refuse (an image size the networks cannot take, source equal to target,
    # a path for a domain name), judged as `run` judges them: this repo's params.yaml (its defaults
    # where there is none) with the data keys of this folder.
    params = Path(args.repo) / args.params
    raw = read_yaml(params, "not found") if params.is_file() else {}  # a --params FILE not there stopped in _missing_place
    # the keys given as options; the rest as params.yaml's data section says, as in a run
    given = {key: value for key, value in (("image_size", args.image_size), ("channels", args.channels), ("resize", args.resize),
                                           ("colour_profiles", args.colour_profiles), ("classes", args.classes)) if value is not None}
    data = {"dataset": "folders", "root": str(args.root), "source": args.source, "target": args.target, **given}
    raw = {**raw, "data": {**(raw.get("data") or {}), **data}} if isinstance(raw, dict) else raw
    against = params.name if params.is_file() else "the default params"
    flags = "".join(f" --{key.replace('_', '-')} {' '.join(map(shlex.quote, value)) if isinstance(value, list) else value}"
                    for key, value in {"source": args.source, "target": args.target, **given}.items())
    try:
        parsed = parse_params(raw, f"check-data{flags} with {against}", build_transforms=False)
    except ParamsError as exc:  # no image is decoded at a size the run would refuse
        result = DataCheck(problems=[str(exc)])
    else:
        from pipelines.cpu_threads import idle_cores

        d = parsed.data
        result = check_data(args.root, args.source, args.target, image_size=d.image_size, channels=d.channels, resize=d.resize,
                            colour_profiles=d.colour_profiles, max_pixels=d.max_image_pixels, workers=idle_cores(),
                            validation_fraction=parsed.evaluate.validation_fraction, labels_per_class=d.target_labels_per_class,
                            arms=parsed.classifier.arms, classes=d.classes)
    print("\n".join(result.lines(most=args.list or None)))
    if result.ok:
        if not params.is_file():  # args.params is the default: another file not there stopped in _missing_place
            print(f"note: no params.yaml in {_where(args)}: checked at the default params; the run below reads the project's, so "
                  f"{NOT_THE_PROJECT}")
        elif params.resolve() == (Path(args.repo) / "params.yaml").resolve() and _uncommitted(Path(args.repo), ["params.yaml"]):
            print("note: params.yaml has changes that are not committed: check-data read them, but `run` works in a worktree of "
                  "HEAD and reads the committed params.yaml; commit them before the run below, or add --in-place to it")
        hint = params.is_file() and params.resolve() == (Path(args.repo) / "params.yaml").resolve() and _preset_hint(Path(args.repo), parsed)
        if hint:
            print(f"note: {hint}")
        # absolute, links kept: a `current -> 2024-06-01` link named on purpose stays the link a scheduled run follows
        print(f"run it: {_run_command(args, {**data, 'root': os.path.abspath(args.root)})}")
    return 0 if result.ok else 2


RGB_PRESET = "presets/rgb32.yaml"


def _preset_hint(repo: Path, parsed) -> str | None:
    """Where check-data read RGB images at 32 px or more with the repository's params.yaml, whose GAN and
    classifier sizes are set for the 16 px grey digits, and RGB_PRESET would change some of them: a note
    naming the preset (a choice of hours, so the run line does not add it unasked)."""
    from pipelines.config import read_yaml

    if parsed.data.channels != 3 or parsed.data.image_size < 32 or not (repo / RGB_PRESET).is_file():
        return None
    preset = read_yaml(repo / RGB_PRESET, "preset not found")
    now = parsed.model_dump()

    def differs(node: dict, have: dict) -> bool:
        return any(differs(v, have.get(k) or {}) if isinstance(v, dict) else have.get(k) != v for k, v in node.items())

    if not differs({k: v for k, v in preset.items() if k != "data"}, now):
        return None
    return (f"RGB images read at {parsed.data.image_size} px, and the run below trains the GANs and classifiers at params.yaml's "
            f"sizes, set for the 16 px grey digits; {RGB_PRESET} is the measured starting point for RGB at 32 px (its "
            f"head says what it costs): add --preset {RGB_PRESET} to the run below to use it")


def _run_command(args: argparse.Namespace, data: dict) -> str:
    """The `run` that reads the folder check-data read, as it read it: `data`, the data keys it checked
    with data.root by its absolute path (a run reads a relative data.root from the repository, not from
    here, and its worktree of HEAD holds no untracked folder), each value in the grammar -S reads and
    quoted for a shell. A --params file other than the repository's params.yaml (which a run always
    reads) comes in as a preset before them: the run then has the values check-data judged with."""
    import shlex

    from pipelines.presets import overrides_of

    repo = "" if Path(args.repo).resolve() == Path.cwd().resolve() else f" --repo {shlex.quote(str(args.repo))}"
    params = (Path(args.repo) / args.params).resolve()
    preset = ""
    if params.is_file() and params != (Path(args.repo) / "params.yaml").resolve():
        here = os.path.relpath(params)  # run reads --preset from where it is started
        preset = f" --preset {shlex.quote(str(params) if here.startswith('..') else here)}"
    return f"domain-augment{repo} run{preset}" + "".join(f" -S {shlex.quote(o)}" for o in overrides_of({"data": data}))


def _preset(args: argparse.Namespace) -> int:
    from pipelines.presets import check_overrides, preset_overrides

    params = Path(args.repo) / args.params
    overrides = preset_overrides(args.file, params)  # checked as `run --preset` checks it: a misspelt key stops here, by name
    check_overrides(params, overrides, described=f"preset {args.file}")
    spaced = [o.split("=")[0] for o in overrides if any(c.isspace() for c in o)]
    if spaced:  # $(...) splits words before dvc sees them, whatever the quotes
        verb = "holds" if len(spaced) == 1 else "hold"
        print(f"domain-augment preset: note: {', '.join(spaced)} {verb} a space, which `dvc exp run $(domain-augment preset "
              f"{args.file})` splits in two: give them as -S 'KEY=VALUE' yourself, or use `domain-augment run --preset "
              f"{args.file}`", file=sys.stderr)
    print(" ".join(f"-S {o}" for o in overrides))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from pipelines.sweep import DEFAULT_ARM, check_sweep, parse_spec, stages_not_in_cache, sweep
    from pipelines.workspace import WorkspaceError, repo_root

    from augment.arms import ARMS

    _only_the_repos_params(args)
    args.arm = DEFAULT_ARM if args.arm is None else args.arm
    if args.arm not in ARMS or args.arm == "source_only":
        import difflib

        plotted = [a for a in ARMS if a != "source_only"]
        close = difflib.get_close_matches(args.arm, plotted, n=1)
        print(f"error: --arm {args.arm}: not an arm whose benefit there is to plot" + (f" (did you mean {close[0]}?)" if close else "")
              + f"; one of {', '.join(plotted)}", file=sys.stderr)
        return 2
    repo = repo_root(args.repo)
    if not (repo / ".dvc").is_dir():
        raise WorkspaceError(f"{repo}: not a DVC repository (no .dvc folder): a sweep runs DVC experiments; `dvc init` and commit it")
    with _in_place(args, "domain-augment sweep"):  # DVC's queue takes the repository's locks too: one at a time
        _note_what_a_sweep_runs_with(repo)
        stale = stages_not_in_cache(repo)
        if stale:  # a fresh clone: run what dvc.lock records once here, not once in every experiment
            from pipelines.flows import pipeline

            check_sweep(repo, *parse_spec(args.spec), args.set or [], args.arm)  # refused before the pipeline runs
            print(f"domain-augment sweep: dvc.lock records outputs of {len(stale)} stage(s) that the DVC cache lacks "
                  f"({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}; a fresh clone, or `dvc gc`), and DVC would run "
                  "those again in every experiment, past its run cache. Running the pipeline here first, as `domain-augment demo` "
                  "does; each experiment then runs only what its value changes.")
            with stop_on_interrupt("domain-augment sweep"), stop_when_killed("domain-augment sweep"):
                pipeline(repo_path=str(repo), isolate=False, experiment=False)
        sweep(repo, args.spec, arm=args.arm, extra=args.set or [], jobs=args.jobs)
    return 0


def _pngs(args: argparse.Namespace) -> int:
    from augment.pixels import restore_pngs

    repo = Path(args.repo)
    folders = [Path(f) for f in args.folder] or [repo / "data/prepared", *sorted((repo / "data/synthetic").glob("*/*/"))]
    if not args.folder:  # the default folders that a stage has written
        folders = [folder for folder in folders if (folder / "manifest.csv").is_file()]
        if not folders:
            print(f"error: {repo.resolve()}: no prepared or synthetic folder yet (data/prepared, data/synthetic/<gan>/<seed>); "
                  "run the pipeline, or `dvc checkout` its outputs, first", file=sys.stderr)
            return 2
    for folder in folders:
        try:
            print(f"{folder}: {restore_pngs(folder)} PNGs written under {folder / 'images'}")
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def _at_least(least: int):
    """An argparse type: a whole number >= `least` (`--jobs -1` ran no stage and exited 0; a sweep's
    `--jobs 0` started no worker and waited forever)."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}")
        return value

    return whole


def _add_flow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", action="append", metavar="FILE", help="apply a partial params file (e.g. presets/rgb32.yaml) before any -S")
    p.add_argument("-S", "--set", action="append", metavar="KEY=VALUE", help="override a params.yaml value (repeatable), as dvc exp run -S")
    p.add_argument("--stage", action="append", metavar="NAME", help="run only this stage and what it depends on (repeatable)")
    p.add_argument("--force", action="store_true", help="re-run stages even if DVC finds them up to date")
    p.add_argument("--jobs", type=_at_least(0), default=0, metavar="N",
                   help="stages run at once, each with a share of the cores (default 0: one more than the cores, up to 4, on CPU; 1 on a GPU)")


def _lock_way_out(repo: str) -> str:
    """What to do with a dvc.lock DVC cannot read: the committed one back, or, never committed, none
    (DVC's run-cache restores every stage whose inputs match an earlier run)."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "dvc.lock"], cwd=repo, capture_output=True).returncode == 0
    return ("; dvc.lock is DVC's record of what ran: `git checkout dvc.lock` restores the committed one" if tracked else
            "; dvc.lock is DVC's record of what ran, and git holds no copy of it: remove it (`rm dvc.lock`) and run again, "
            "and the stages whose inputs match an earlier run come back from DVC's run-cache")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a run's own handler is in place (while it loads): nothing started yet
        print("\ndomain-augment: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose "expected one argument" also says how to give a value that starts
    with '-' (`--target -winter` reads -winter as an option): `--target=-winter`."""

    words: list[str] = []  # the command line being parsed

    def error(self, message: str):
        option = re.fullmatch(r"argument ((?:-\w|--[\w-]+)(?:/--?[\w-]+)*): expected one argument", message)
        if option:
            names = option.group(1).split("/")
            after = {self.words[i + 1] for i, w in enumerate(self.words[:-1]) if w in names and self.words[i + 1].startswith("-")}
            if after:
                message += f" (a value that starts with '-' goes after '=': {names[-1]}={sorted(after)[0]})"
        extra = message.removeprefix("unrecognized arguments: ").split() if message.startswith("unrecognized arguments: ") else []
        for i, w in enumerate(self.words[2:], 2):  # `-S data.source=day camera`: the shell split the value at its space
            if (extra and w == extra[0] and self.words[i - 2] in ("-S", "--set") and "=" in self.words[i - 1]
                    and not any(x.startswith("-") for x in extra)):  # `--target -fog` after -S: an option run lacks, not a space
                spaced = " ".join([self.words[i - 1], *self.words[i:i + len(extra)]])
                message += f" (a value with a space goes in quotes: -S '{spaced}')"
                break
            if (extra and w == extra[0] and "sweep" in self.words[:i - 1] and "=" in self.words[i - 1]
                    and not any(x.startswith("-") for x in extra)):  # `sweep key=0.25 0.5`: values apart
                joined = ",".join([self.words[i - 1], *extra]).replace("=,", "=")
                message += f" (a sweep's values are one word, separated by commas: {joined})"
                break
        message += _check_data_way(self.words)
        super().error(message)


CHECK_DATA_OPTIONS = {"data.source": "--source", "data.target": "--target", "data.image_size": "--image-size",
                      "data.channels": "--channels", "data.resize": "--resize", "data.colour_profiles": "--colour-profiles",
                      "data.classes": "--classes"}


def _check_data_way(words: list[str]) -> str:
    """check-data given a run's `-S data.source=...`: the same as its own arguments."""
    if "check-data" not in words or not {"-S", "--set"} & set(words):
        return ""
    values = dict(w.split("=", 1) for i, w in enumerate(words[1:], 1) if words[i - 1] in ("-S", "--set") and "=" in w)
    rest = [w for i, w in enumerate(words) if w not in ("-S", "--set") and (i == 0 or words[i - 1] not in ("-S", "--set"))]
    root = values.pop("data.root", None)
    given_root = any(not w.startswith("-") for w in rest[rest.index("check-data") + 1:])  # a folder already on the line
    command = [*map(shlex.quote, rest), *([shlex.quote(root)] if root and not given_root else []),
               *(f"{CHECK_DATA_OPTIONS[k]} {_option_words(v)}" for k, v in values.items() if k in CHECK_DATA_OPTIONS)]
    return f" (check-data reads the folder and its options, not -S: domain-augment {' '.join(command)})"


def _option_words(value: str) -> str:
    """A -S value as check-data's option takes it: a list (`[a,b]`) as its items, each a word."""
    items = value[1:-1].split(",") if value.startswith("[") and value.endswith("]") else [value]
    return " ".join(shlex.quote(v.strip()) for v in items if v.strip())


def _left_in_place(args: argparse.Namespace) -> str:
    """What a failed run in place left changed of the files git tracks, in words with the way back: the
    committed results its stages removed (DVC removes a stage's outputs before it runs it), and the -S
    values it wrote into params.yaml; "" where nothing is."""
    entries = _git_status(args.repo, ["reports", "params.yaml"])
    removed = sorted(path for status, path in entries if "D" in status and path.startswith("reports/"))
    said = []
    if removed:
        said.append(f"the failed run removed the committed {', '.join(removed)} (a stage's outputs go before it runs; "
                    f"`git checkout -- {' '.join(removed)}` brings them back)")
    if any(path == "params.yaml" and status.strip() for status, path in entries) and (args.set or getattr(args, "preset", None)):
        said.append("params.yaml holds its -S values (`git diff params.yaml`; `git checkout -- params.yaml` takes them back)")
    return "; ".join(said) + ("; the same command again, once the cause is fixed, goes on from the stages that finished" if said else "")


def _params_here_first(repo: str, params: str) -> str:
    """--params FILE as --preset reads it: from the current folder where it is there and not in --repo
    (`--repo repo --params repo/presets/rgb32.yaml` was looked for in repo/repo/presets)."""
    given = Path(params)
    if params == "params.yaml" or given.is_absolute() or (Path(repo) / given).is_file() or not given.is_file():
        return params
    return str(given.resolve())


def _missing_place(args: argparse.Namespace) -> str | None:
    """--repo that is no folder, or --params given and not there: said by the option's name (each
    read as `<folder>/params.yaml: not found`, with advice for neither)."""
    repo = Path(args.repo)
    if not repo.is_dir():
        return f"--repo {args.repo}: {'not a folder' if repo.exists() else 'no such folder'}"
    if args.params != "params.yaml" and not (repo / args.params).is_file():
        shown = (args.params if args.repo == "." or Path(args.params).is_absolute() else
                 f"{args.params} (in --repo {args.repo}, nor in the current folder)")
        return f"--params {shown}: {'a folder, not a file' if (repo / args.params).is_dir() else 'no such file'}"
    if args.params == "params.yaml" and not (repo / "params.yaml").exists() and args.command not in NO_PARAMS_NEEDED:
        return f"no params.yaml in {_where(args)}: {NOT_THE_PROJECT}"
    return None


NO_PARAMS_NEEDED = ("check-data", "pngs")  # check-data judges at the defaults where there is none (and says so)
NOT_THE_PROJECT = "start domain-augment in the project's repository (the folder with params.yaml and dvc.yaml), or give it as --repo DIR"


def _where(args: argparse.Namespace) -> str:
    """--repo's folder, as the user would recognise it: absolute, and which option or default named it."""
    return f"{Path(args.repo).resolve()} ({'the current folder' if args.repo == '.' else '--repo'})"


def _main(argv: list[str] | None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a name that is not UTF-8, or a terminal that is not, prints as \xe9: never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    set_offline_env()
    use_this_python()
    _Parser.words = list(sys.argv[1:] if argv is None else argv)
    ap = _Parser(prog="domain-augment", description="GAN-based domain augmentation, measured.")
    repo_help = "the project's git/DVC repository (default: here)"
    params_help = ("the params file check-params, check-data and preset read (default: params.yaml of --repo; another relative "
                   "path is read from --repo, else from the current folder); runs always read the repository's params.yaml, "
                   "with -S and --preset on top")
    ap.add_argument("--repo", default=".", help=repo_help)
    ap.add_argument("--params", default="params.yaml", help=params_help)
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline through the Prefect flow in this repo and print the results")
    _add_flow_options(demo)
    demo.set_defaults(func=_demo)
    run = sub.add_parser("run", help="one flow run, in an isolated worktree of HEAD unless --in-place")
    _add_flow_options(run)
    run.add_argument("--in-place", action="store_true", help="work in the repo itself, like dvc repro")
    run.set_defaults(func=_run)
    serve = sub.add_parser("serve", help="serve the flow with a cron schedule (runs until stopped)")
    _add_flow_options(serve)
    serve.add_argument("--cron", required=True, help='cron schedule, e.g. "0 3 * * *" (03:00 every day)')
    serve.add_argument("--name", default="scheduled", help="deployment name (default: scheduled)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-params", help="validate params.yaml")
    check.set_defaults(func=_check_params)
    data = sub.add_parser("check-data", help="check an image folder against the data contract before a run (exit 0: it would run, 2: it would stop)")
    data.add_argument("root", help="folder holding <source>/ and <target>/")
    data.add_argument("--source", required=True, help="source domain folder name (labeled)")
    data.add_argument("--target", required=True, help="target domain folder name")
    data.add_argument("--image-size", type=int, help="decode at this size (default: data.image_size of --params)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: data.channels of --params)")
    data.add_argument("--resize", choices=("stretch", "crop", "pad"), help="default: data.resize of --params; "
                      "data.max_image_pixels and evaluate.validation_fraction come from there too")
    data.add_argument("--colour-profiles", choices=("as_stored", "srgb"), help="srgb: convert files that embed a colour profile to "
                      "sRGB (default: data.colour_profiles of --params)")
    data.add_argument("--classes", nargs="+", metavar="CLASS", help="keep only these source train classes (default: data.classes of "
                      "--params; none there: all)")
    data.add_argument("--list", type=_count, default=20, metavar="N", help="list at most N rejected and N duplicate files (0: all; default 20)")
    data.set_defaults(func=_check_data)
    preset = sub.add_parser("preset", help="print a preset file as -S arguments, for dvc exp run $(domain-augment preset FILE)")
    preset.add_argument("file", help="a YAML file of params.yaml sections holding only the keys it changes, e.g. presets/rgb32.yaml")
    preset.set_defaults(func=_preset)
    sw = sub.add_parser("sweep", help="queue one DVC experiment per value, run the queue, plot the benefit chosen on target_val")
    sw.add_argument("spec", help="KEY=V1,V2,... e.g. mix.synthetic_fraction=0.25,0.5,0.75")
    sw.add_argument("--arm", help="whose benefit over source_only to plot (default: cyclegan; another arm's table and plot are "
                                  "named with it)")
    sw.add_argument("-S", "--set", action="append", metavar="KEY=VALUE", help="also set this for every experiment (repeatable)")
    sw.add_argument("--jobs", type=_at_least(1), default=1, metavar="N", help="experiments run at once (dvc queue start -j)")
    sw.set_defaults(func=_sweep)
    pngs = sub.add_parser("pngs", help="rebuild the PNG copies (images/) of prepared and synthetic folders from their pixels.npy, e.g. after dvc checkout")
    pngs.add_argument("folder", nargs="*", help="folders holding manifest.csv and pixels.npy (default: data/prepared and every data/synthetic/<gan>/<seed>)")
    pngs.set_defaults(func=_pngs)
    helps = {action.dest: action.help for action in sub._choices_actions}  # each command's line of the main --help
    for name, command in sub.choices.items():  # also after the command: `domain-augment check-data DIR ... --params FILE`
        command.description = command.description or helps.get(name)
        command.add_argument("--repo", default=argparse.SUPPRESS, help=repo_help)
        command.add_argument("--params", default=argparse.SUPPRESS, help=params_help)
    args = ap.parse_args(argv)
    args.params = _params_here_first(args.repo, args.params)
    where = _missing_place(args)
    if where:
        print(f"error: {where}", file=sys.stderr)
        return 2

    from dvc.exceptions import DvcException

    from augment.contract import DataLayoutError
    from pipelines.config import ParamsError
    from pipelines.sweep import SweepError, SweepInterrupted, stopped_line
    from pipelines.workspace import WorkspaceError

    try:
        return args.func(args)
    except (ParamsError, DataLayoutError, WorkspaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:  # the stage's own error, then its last lines
        print(f"error: {exc.report()}", file=sys.stderr)
        left = _left_in_place(args) if args.command == "demo" or getattr(args, "in_place", False) else ""
        if left:
            print(f"note: {left}", file=sys.stderr)
        return 1
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SweepInterrupted as exc:
        print("\n" + stopped_line(signal_word(exc.signum), str(exc)), file=sys.stderr)
        return 128 + exc.signum
    except DvcException as exc:
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        where = (_lock_way_out(args.repo) if "dvc.lock" in str(exc) else " (a stage's own message, if one failed, is above)")
        print(f"error: {exc}{cause}{where}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `domain-augment check-data ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
