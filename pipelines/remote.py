"""The team's shared cache: a DVC remote every flow run pulls from before its stages and pushes to after.

With a default DVC remote configured (`dvc remote add -d team <url>`, committed in `.dvc/config`),
a run on any machine
1. fetches the other machines' experiment refs from the git remote `origin` (when there is one),
   so `dvc exp show` lists every machine's runs;
2. pulls the outputs of the committed `dvc.lock` it lacks;
3. runs each stage with `dvc repro --pull`: DVC pulls the run-cache, and a stage whose deps,
   params and command some machine already ran is restored from the remote instead of recomputed;
4. pushes what it computed, run-cache included: the experiment (`dvc exp push origin NAME`, with
   its cache) when `origin` exists, else the workspace's cache (`dvc push --run-cache`).
Without a remote, nothing is pulled or pushed and the local cache alone serves.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from pipelines.workspace import git_lock, git_remotes

EXP_REFS = "+refs/exps/*:refs/exps/*"  # where DVC keeps experiments, one ref per experiment


def dvc_remote(repo_dir: str | Path) -> str | None:
    """The default DVC remote's name, or None."""
    from dvc.repo import Repo

    with Repo(str(repo_dir)) as repo:
        return repo.config["core"].get("remote")


def pull_before(root: Path, workdir: Path, remote: str, *, log: Callable[[str], None] = print) -> None:
    """Steps 1 and 2: other machines' experiments, and the committed outputs this machine lacks."""
    from dvc.repo import Repo

    if "origin" in git_remotes(root):
        with git_lock(root, purpose="fetch experiments from origin", log=log):
            proc = subprocess.run(["git", "fetch", "--quiet", "origin", EXP_REFS], cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:  # an unreachable origin must not stop the night's run
            log(f"could not fetch experiments from origin ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}); going on")
    with Repo(str(workdir)) as repo:
        stats = repo.pull(allow_missing=True)
    log(f"pulled {stats.get('fetched', 0)} file(s) of the committed dvc.lock from DVC remote {remote!r}")


def push_after(repo, *, experiment: str | None, root: Path, log: Callable[[str], None] = print) -> list[str]:
    """Step 4, with an open `dvc.repo.Repo` of the run's folder; what was pushed, in words."""
    remote = repo.config["core"].get("remote")
    if not remote:
        return []
    if experiment and "origin" in git_remotes(root):
        repo.experiments.push("origin", [experiment], push_cache=True, run_cache=True)
        pushed = [f"experiment -> git remote origin, cache and run-cache -> DVC remote {remote}"]
    else:
        repo.push(run_cache=True)
        pushed = [f"cache and run-cache -> DVC remote {remote}"]
    uncached = _push_uncached_outputs(repo, remote)
    if uncached:
        pushed.append(f"{uncached} uncached output(s) for the run-cache")
    log("pushed " + ", ".join(pushed))
    return pushed


def _push_uncached_outputs(repo, remote: str) -> int:
    """Push the outputs kept in git rather than the cache (metrics.json, plot tables). DVC's run-cache
    keeps a copy of them in the local cache, but `push --run-cache` sends only cached outputs: without
    them another machine finds the run-cache entry and still recomputes the stage."""
    objs = [out.hash_info for stage in repo.index.stages for out in stage.outs
            if not out.use_cache and out.hash_info and out.hash_info.value]
    if not objs:
        return 0
    result = repo.cloud.push(objs, remote=remote)
    return len(objs) - len(getattr(result, "failed", ()) or ())
