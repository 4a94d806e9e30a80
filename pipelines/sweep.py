"""A sweep with DVC's own experiment queue: benefit against one param, chosen on target_val.

    domain-augment sweep mix.synthetic_fraction=0.25,0.5,0.75 [--arm cyclegan] [-S key=value ...]

queues one `dvc exp run --queue -S <key>=<value>` per value (named `sweep-<key>-<value>`, then the
`-S` settings where there are any: `settings_tag`), starts DVC's queue (`dvc queue start`), waits for
it, then reads `dvc exp show --json` and writes `reports/sweep/<key>.csv` and `.png` (`table_stem`:
another arm and `-S` settings add to the name): the arm's benefit over `source_only` on the held-out
`target_val` split (what the choice is made on) for each value, the chosen value, and that
value's `target_test` benefit (reported, never used to choose). Stages whose inputs a value does
not change are up to date or come from DVC's run cache, so a sweep of `mix.*` trains no GAN again
once the workspace's pipeline has run (`domain-augment sweep` runs it first where dvc.lock's
outputs are not in the cache: `stages_not_in_cache`); each experiment's line says which stages ran.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import yaml

from augment.arm_inputs import param_value
from pipelines.config import ParamsError
from pipelines.interrupt import stop_processes, stop_signals, working_in
from pipelines.orphans import stop_when_killed, untracked_env
from pipelines.presets import check_overrides


def stopped_line(word: str, what: str) -> str:
    """What a sweep stopped by a signal says: `word` (interrupted, terminated, killed), what it stopped
    (`_stop`), and what it leaves of earlier sweeps."""
    return f"domain-augment sweep: {word}; {what}. Experiments of earlier sweeps that were not finished again are kept (`dvc exp list`)"


class SweepError(RuntimeError):
    """DVC refused a command or an experiment failed; the message says which and where to look."""


class SweepInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM (`signum`) while DVC's queue ran the sweep's experiments; the message says
    what was stopped."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def _terminate_as_interrupt(received: list[int]) -> Iterator[None]:
    """Within the block, SIGTERM (`kill`, a scheduler's or a service manager's stop), SIGHUP (the
    terminal closed, unless `nohup` ignores it) and SIGINT raise KeyboardInterrupt as Ctrl-C does, and
    are appended to `received`: the queue's worker is a process of DVC's own, and it would run the
    sweep's experiments on after the sweep was gone. SIGINT too, where the sweep started with it
    ignored (in the background of a script), as `demo` and `run` stop on it."""
    def terminate(signum, frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, terminate) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...])."""
    key, sep, values = spec.partition("=")
    items = [v.strip() for v in values.split(",")]
    if sep and key and "" in items and values.strip():  # `12,,16` or `12,16,`: a value left out by mistake, not skipped
        raise ParamsError(f"sweep {spec!r}: value {items.index('') + 1} of {len(items)} is empty; give each value between the commas")
    if len(set(items)) != len(items):
        raise ParamsError(f"sweep {spec!r}: {sorted({v for v in items if items.count(v) > 1})} given twice; each value runs once")
    read, names = [_as_value(v) for v in items], [experiment_name(key, v) for v in items]  # 0.1 and 0.10 one value; 0.1 and 0-1 one name
    for i in range(len(items)):
        j = next((j for j in range(i) if read[j] == read[i] or names[j] == names[i]), None)
        if j is not None:
            raise ParamsError(f"sweep {spec!r}: {items[j]} and {items[i]} " + ("are one value" if read[j] == read[i] else
                              f"would both be named {names[i]}") + "; each value runs once")
    if not sep or not key or len(items) < 2:
        raise ParamsError(f"sweep {spec!r}: expected KEY=V1,V2[,...] with at least two values, e.g. mix.synthetic_fraction=0.25,0.5,0.75")
    return key.strip(), items


def _as_value(text: str) -> object:
    """A sweep value as params.yaml would hold it (0.10 is 0.1), or the text where YAML does not read it."""
    from pipelines.config import read_yaml_text

    try:
        value = read_yaml_text(text)
    except Exception:  # noqa: BLE001 - any text YAML refuses stays text, for -S to judge
        return text
    return json.dumps(value, sort_keys=True, default=str)


def check_sweep(repo: Path, key: str, values: list[str], extra: list[str], arm: str | None) -> None:
    """What a sweep refuses before it queues or runs anything, by key: a `-S` of the swept key itself
    (every experiment ran with that one value, under the names of the others), each value with the
    other `-S` (`check_overrides`), `arm` where an experiment does not train it, and `data.root` as a
    queued experiment reads it (`check_queued_data_root`)."""
    for override in extra:
        other = override.lstrip("~+").partition("=")[0].strip()
        if other == key or key.startswith(other + ".") or other.startswith(key + "."):
            said = ("removes " + key if override.startswith("~") else
                    f"sets {key}, which the sweep varies; every experiment would run with this value whatever its name says")
            raise ParamsError(f"-S {override}: {said}. Leave it out")
    roots_seen: set[tuple] = set()
    for value in values:
        overrides = [f"{key}={value}", *extra]
        params = check_overrides(repo / "params.yaml", overrides)  # a bad value refused by key before anything is queued
        if arm is not None and arm not in params.classifier.arms:  # found missing only once every experiment had run
            raise ParamsError(f"--arm {arm}: not in classifier.arms {params.classifier.arms} with {' '.join(overrides)}; "
                              "add it with -S, or sweep another arm")
        d = params.data
        if (d.dataset, d.root, d.source, d.target) not in roots_seen:  # else each experiment failed at its first stage
            roots_seen.add((d.dataset, d.root, d.source, d.target))
            check_queued_data_root(repo, d)


DEFAULT_ARM = "cyclegan"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def settings_tag(extra: list[str]) -> str:
    """What a sweep's `-S` settings add to its experiments' and its table's names: "" without any,
    else `-with-<the settings>` (sorted; `-with-<8 hex digits of their sha256>` past 48 characters, as
    an absolute data.root is). The same key and values under other settings are another sweep: its
    experiments must not replace the earlier ones, which the same name would (`dvc exp rename --force`)."""
    if not extra:
        return ""
    said = " ".join(sorted(extra))
    readable = _safe(said)
    return "-with-" + (readable if len(readable) <= 48 else hashlib.sha256(said.encode()).hexdigest()[:8])


def experiment_name(key: str, value: str, extra: list[str] = ()) -> str:
    return f"sweep-{_safe(f'{key}-{value}')}{settings_tag(list(extra))}"


def table_stem(key: str, arm: str, extra: list[str] = ()) -> str:
    """reports/sweep/<stem>.csv and .png: `key` for the default arm without `-S`, then `-<arm>` for
    another arm and the settings' tag (`settings_tag`), so that no sweep's table replaces another's."""
    return key + ("" if arm == DEFAULT_ARM else f"-{arm}") + settings_tag(list(extra))


def _dvc(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise SweepError(f"dvc {' '.join(args)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def stages_not_in_cache(repo: Path) -> list[str]:
    """The stages whose outputs dvc.lock records but the DVC cache lacks (a fresh clone, a `dvc gc`).
    An experiment restores such a stage from DVC's run cache only if dvc.lock's own outputs are in
    the cache; else it runs the stage again (DVC tries the lock's entry alone when the stage's
    definition matches it), and a sweep trained the GANs once per value. Data tracked by a `.dvc`
    file (`dvc add`) is not a stage: where it is missing, the run reading it says so, with the way
    to get it (`pipelines.flows.check_data_root`)."""
    status = json.loads(_dvc(repo, "status", "--json").stdout or "{}")
    return [stage for stage, why in status.items() if '"not in cache"' in json.dumps(why) and not stage.endswith(".dvc")]


def check_queued_data_root(repo: Path, data) -> None:
    """`data.root` as a queued experiment reads it, before anything is queued. DVC runs each one in a
    copy of the repository's git-tracked files (uncommitted edits included) and DVC-tracked data
    under `.dvc/tmp/exps/`: a relative `data.root` outside the repository, or one git does not
    track and no `.dvc` file covers, is not there. The layout is checked as a run checks it
    (`pipelines.flows.check_data_root`)."""
    from pipelines.flows import check_data_root

    repo = repo.resolve()
    check_data_root(repo, repo, data)  # missing folder, refused layout
    rel = Path(data.root)
    if data.dataset != "folders" or rel.is_absolute():
        return
    where = (repo / rel).resolve()
    if not where.is_relative_to(repo):
        raise ParamsError(f"data.root {data.root!r}: a folder outside the repository ({where}); a queued experiment runs in a copy of "
                          f"the repository under .dvc/tmp/exps/, where that relative path leads elsewhere. Give its absolute path "
                          f"(-S data.root={where})")
    inside = where.relative_to(repo)
    by_dvc = any((repo / f"{part}.dvc").is_file() for part in [inside, *inside.parents][:-1])
    by_git = subprocess.run(["git", "ls-files", "--", str(inside)], cwd=repo, capture_output=True, text=True).stdout.strip()
    if not (by_dvc or by_git):
        raise ParamsError(f"data.root {data.root!r}: a folder that neither git nor DVC tracks; a queued experiment runs in a copy of "
                          f"the repository's tracked files under .dvc/tmp/exps/ and would not find it. Track it (dvc add {inside}, "
                          f"then git add {inside}.dvc .gitignore), or give its absolute path (-S data.root={where})")


def queue_and_run(repo: Path, key: str, values: list[str], extra: list[str], *, jobs: int = 1, poll: float = 2,
                  log=print, arm: str | None = None) -> list[str]:
    """Queue and run one experiment per value; returns their names (`experiment_name`).

    Each is queued under a name of its own for this sweep and renamed to its lasting name once the
    queue has run: a rerun of the same sweep replaces its earlier experiments only where the new run
    succeeded, and an earlier result is never lost to a run that fails. (`dvc exp run --force`
    replaces them too, but also forces every stage to run again, past DVC's run cache: each value
    trained the GANs anew.) `arm`, the arm the sweep reads, must be one each experiment trains.

    Where some experiments fail, the others still replace their earlier experiments before the
    sweep reports the failures."""
    check_sweep(repo, key, values, extra, arm)
    runs = {experiment_name(key, value, extra): [f"{key}={value}", *extra] for value in values}
    this_run = secrets.token_hex(3)
    queued = {name: f"{name}-{this_run}" for name in runs}
    # Killed outright (SIGKILL, the OOM killer), the sweep cannot stop what DVC's queue runs for it: its
    # watchdog (pipelines.orphans) then does what Ctrl-C does here (`abandon`).
    abandon_command = [sys.executable, "-m", "pipelines.sweep", str(repo), json.dumps(queued)]
    received: list[int] = []
    try:
        with stop_when_killed("domain-augment sweep", then=abandon_command), _terminate_as_interrupt(received):
            for name, overrides in runs.items():
                _dvc(repo, "exp", "run", "--queue", "--name", queued[name], *[a for o in overrides for a in ("-S", o)])
            log(f"queued {', '.join(queued.values())}; dvc queue start -j {jobs}")
            # The worker is DVC's, without the watchdog's token: `abandon` stops what it runs of this
            # sweep, and it ends by itself once the queue is empty.
            _dvc(repo, "queue", "start", "-j", str(jobs), env=untracked_env())
            while _waiting(repo, list(queued.values()), log):
                time.sleep(poll)
    except KeyboardInterrupt:
        for sig in stop_signals():
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C or SIGTERM does not cut the stopping short
        raise SweepInterrupted(_stop(repo, queued), received[0] if received else signal.SIGINT) from None
    failed = _pending(repo, list(queued.values()), ("Failed",))["Failed"]
    finished = [name for name, temporary in queued.items() if temporary not in failed]
    for name in finished:
        ran, kept, restored = stages_run(_dvc(repo, "queue", "logs", queued[name]).stdout)
        log(f"{name}: ran {', '.join(ran) or 'no stage'}; {len(kept)} up to date, {len(restored)} from DVC's run cache")
        _dvc(repo, "exp", "rename", "--force", queued[name], name)
    if failed:
        raise SweepError("sweep experiments failed; earlier experiments of the same names are kept, and `dvc queue logs <name>` "
                         "shows each one's log:\n" + "\n".join(f"  {name}: {_cause(repo, name)}" for name in failed)
                         + (f"\nThe others finished and replaced their earlier experiments ({', '.join(finished)}: `dvc exp show`); "
                            "no table or plot is made from part of a sweep." if finished else ""))
    return list(queued)


def _pending(repo: Path, names: list[str], states: tuple[str, ...] = ("Queued", "Running")) -> dict[str, list[str]]:
    """Which of `names` DVC's queue has in each of `states`, as `dvc queue status` lists them but read
    in this process: that command also asks the queue's workers how they are, and each call cost a
    process start and about 2 s on a 2-core machine, taken, poll after poll, from the experiments the
    sweep waits for. Read so, a poll takes milliseconds."""
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            entries = dvc_repo.experiments.celery_queue.status()
    except Exception as exc:  # noqa: BLE001 - `dvc queue status` fails alike ("unexpected error"): said as a sweep's error
        raise SweepError(_unreadable_queue(repo, exc)) from exc
    return {state: [name for name in names if any(e["name"] == name and e["status"] == state for e in entries)] for state in states}


def _unreadable_queue(repo: Path, exc: Exception) -> str:
    """What a sweep says when DVC cannot read its experiment queue: the queue's messages that do not
    parse (one queued experiment each, cut short by a full disk or a killed DVC), and the way out.
    (A damaged lock of the queue stops `dvc exp run --queue` first, whose own message names it.)"""
    exps = repo / ".dvc" / "tmp" / "exps"
    damaged = []
    for path in sorted(exps.glob("celery/broker/**/*.msg")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:  # taken by the queue's worker meanwhile
            continue
        except (OSError, UnicodeDecodeError, ValueError):
            damaged.append(str(path.relative_to(repo)))
    said = f"DVC cannot read its experiment queue ({type(exc).__name__}: {exc}); `dvc queue status` fails the same way"
    if not damaged:
        return f"{said}. Its files are under {exps.relative_to(repo)}"
    return (f"{said}. Damaged: {', '.join(damaged)}. Remove {'it' if len(damaged) == 1 else 'them'} while no DVC command "
            "runs (each is one queued experiment, lost with it; finished experiments stay: `dvc exp list`), "
            "then run the sweep again")


def _waiting(repo: Path, names: list[str], log) -> bool:
    pending = _pending(repo, names)
    count = len(pending["Queued"]) + len(pending["Running"])
    if count:
        log(f"{count} of {len(names)} experiments queued or running")
    return bool(count)


def _stop(repo: Path, queued: dict[str, str], patience: float = 30) -> str:
    """Ctrl-C or SIGTERM while the queue runs: its worker would go on without the sweep. Remove this sweep's
    experiments still queued and interrupt those running (`dvc queue kill`, SIGINT to the
    experiment's process group), looking again each second, since the worker may have taken the
    next one meanwhile, until none is left: after `patience` / 2 s with SIGKILL (`--force`). Then
    give those that finished their lasting names and remove the queue entries of those stopped;
    returns what was done, in words."""
    removed: list[str] = []
    stopped: list[str] = []
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        pending = _pending(repo, list(queued.values()))
        if not pending["Queued"] and not pending["Running"]:
            break
        if pending["Queued"]:
            _dvc(repo, "queue", "remove", *pending["Queued"], check=False)
            removed += [name for name in pending["Queued"] if name not in removed]
        if pending["Running"]:
            force = ["--force"] if deadline - time.monotonic() < patience / 2 else []
            _dvc(repo, "queue", "kill", *force, *pending["Running"], check=False)
            stopped += [name for name in pending["Running"] if name not in stopped]
        time.sleep(1)
    # What DVC lost track of (a kill that found no process to signal) works in the queue's temporary
    # copies of the repo: stopped as the flow stops its stages (pipelines.interrupt)
    stop_processes(lambda: working_in(repo / ".dvc" / "tmp" / "exps"), stop=patience / 2)
    ended = _pending(repo, list(queued.values()), ("Success", "Failed"))
    succeeded = ended["Success"]
    # An experiment stopped here stays in `dvc queue status` as failed, under its temporary name, with
    # the log of a run cut short: its entry goes (one that failed by itself before the stop stays)
    cut_short = [name for name in ended["Failed"] if name in stopped]
    if cut_short:
        _dvc(repo, "queue", "remove", *cut_short, check=False)
    finished = [name for name, temporary in queued.items() if temporary in succeeded]
    for name in finished:
        _dvc(repo, "exp", "rename", "--force", queued[name], name)
    done = [f"removed {', '.join(removed)} from DVC's queue"] if removed else []
    done += [f"stopped {', '.join(stopped)}"] if stopped else []
    done += [f"kept {', '.join(finished)}, which had finished"] if finished else []
    return "; ".join(done) or "no experiment of it was left queued or running"


def _cause(repo: Path, name: str) -> str:
    """What the failed stage of experiment `name` said of its failure (pipelines.flows.stage_cause)."""
    from pipelines.flows import stage_cause

    return stage_cause(_dvc(repo, "queue", "logs", name, check=False).stdout.splitlines()) or "failed (no error line in its log)"


def stages_run(log: str) -> tuple[list[str], list[str], list[str]]:
    """From an experiment's `dvc repro` log: the stages it ran, those up to date, and those restored
    from DVC's run cache."""
    ran = re.findall(r"^Running stage '([^']+)'", log, flags=re.M)
    kept = re.findall(r"^Stage '([^']+)' didn't change, skipping", log, flags=re.M)
    restored = re.findall(r"^Stage '([^']+)' is cached - skipping run", log, flags=re.M)
    return ran, kept, restored


def _git_show(repo: Path, rev: str, path: str) -> str:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SweepError(f"experiment {rev[:7]} has no {path}: {proc.stderr.strip()}")
    return proc.stdout


def collect(repo: Path, key: str, names: list[str], arm: str, extra: list[str] = ()) -> pd.DataFrame:
    """One row per swept experiment: the value, the arm's target_val and target_test benefits, and
    which arm and `-S` settings (`set`, space-separated) the table is of."""
    shown = json.loads(_dvc(repo, "exp", "show", "--json").stdout)
    rows = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            if exp.get("name") not in names:
                continue
            # `dvc exp show` drops list values (every ci95) from metrics: read the files at the experiment's commit.
            rev = exp["revs"][0]["rev"]
            params = yaml.safe_load(_git_show(repo, rev, "params.yaml"))
            metrics = json.loads(_git_show(repo, rev, "reports/metrics.json"))
            if "target_val" not in metrics:
                raise ParamsError("the sweep chooses on target_val: set evaluate.validation_fraction > 0")
            val = metrics["target_val"][arm]["accuracy_delta"]
            test = metrics["benefit"][arm]["accuracy_delta"]
            rows.append({"experiment": exp["name"], key: param_value(params, key),
                         "val_benefit": val["mean"], "val_lo": val["ci95"][0], "val_hi": val["ci95"][1],
                         "test_benefit": test["mean"], "test_lo": test["ci95"][0], "test_hi": test["ci95"][1]})
    missing = sorted(set(names) - {r["experiment"] for r in rows})
    if missing:
        raise SweepError(f"no results for {missing} in `dvc exp show`")
    frame = pd.DataFrame(rows).sort_values(key).reset_index(drop=True)
    frame["chosen"] = frame.index == frame.val_benefit.idxmax()  # ties: the first (smallest) value
    frame["arm"] = arm
    frame["set"] = " ".join(extra)
    return frame


def plot(frame: pd.DataFrame, key: str, arm: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    # numbers on a numeric axis; words (gan.cyclegan.loss=lsgan,hinge) and true/false one place each, in the table's order
    numeric = pd.api.types.is_numeric_dtype(frame[key]) and not pd.api.types.is_bool_dtype(frame[key])
    x = frame[key].astype(float) if numeric else pd.Series(range(len(frame)), dtype=float)
    ax.errorbar(x, frame.val_benefit, yerr=[frame.val_benefit - frame.val_lo, frame.val_hi - frame.val_benefit],
                fmt="o-" if numeric else "o", capsize=4, label="target_val (chooses)")
    if not numeric:
        ax.set_xticks(x, [str(v) for v in frame[key]])
    best = frame[frame.chosen].iloc[0]
    ax.errorbar([x[frame.chosen].iloc[0]], [best.test_benefit], yerr=[[best.test_benefit - best.test_lo], [best.test_hi - best.test_benefit]],
                fmt="s", color="C3", capsize=4, label=f"target_test at the chosen {key}={best[key]}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{arm} benefit over source_only")
    settings = frame["set"].iloc[0] if "set" in frame and isinstance(frame["set"].iloc[0], str) else ""
    if settings:  # the plot read alone says what else every experiment ran with
        ax.set_title(f"with -S {settings}", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(repo: Path, spec: str, *, arm: str, extra: list[str], jobs: int = 1, out: Path | None = None, log=print) -> pd.DataFrame:
    key, values = parse_spec(spec)
    names = queue_and_run(repo, key, values, extra, jobs=jobs, log=log, arm=arm)
    frame = collect(repo, key, names, arm, extra)
    out = out or repo / "reports" / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    stem = table_stem(key, arm, extra)
    keep_earlier_table(out / f"{stem}.csv", frame, log)
    frame.to_csv(out / f"{stem}.csv", index=False)
    plot(frame, key, arm, out / f"{stem}.png")
    best = frame[frame.chosen].iloc[0]
    log(frame.drop(columns=["arm", "set"]).to_string(index=False))
    log(f"chosen on target_val: {key}={best[key]} ({arm} benefit {best.val_benefit:+.3f}); its target_test benefit "
        f"{best.test_benefit:+.3f} [{best.test_lo:+.3f}, {best.test_hi:+.3f}] -> {out / (stem + '.png')}")
    return frame


def keep_earlier_table(csv: Path, frame: pd.DataFrame, log=print) -> None:
    """The same key, arm and settings swept over other values: the earlier table and plot move to
    `<stem>.before-<their time>.csv` and `.png` rather than be replaced (the same sweep again replaces
    them, as it does its experiments)."""
    try:
        earlier = set(pd.read_csv(csv)["experiment"])
    except (OSError, KeyError, ValueError):  # no table yet, or one that is not a sweep's: replaced
        return
    if earlier == set(frame["experiment"]):
        return
    when = time.strftime("%Y%m%d-%H%M%S", time.localtime(csv.stat().st_mtime))
    for suffix in (".csv", ".png"):
        if csv.with_suffix(suffix).exists():
            csv.with_suffix(suffix).rename(csv.with_name(f"{csv.stem}.before-{when}{suffix}"))
    log(f"the table of an earlier sweep of other values ({', '.join(sorted(earlier))}) is kept as {csv.stem}.before-{when}.csv and .png")


def abandon(repo: str, queued: str) -> None:
    """Run by the watchdog of a sweep that was killed outright (SIGKILL, the OOM killer): what Ctrl-C
    does (`_stop`; `queued` is JSON: lasting name -> queued name), said on stderr."""
    print(stopped_line("killed", _stop(Path(repo), json.loads(queued))), file=sys.stderr)


if __name__ == "__main__":
    abandon(*sys.argv[1:3])
