"""Helpers for end-to-end tests: a throwaway copy of the project as its own git + DVC repo."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

TINY_GAN = {"steps": 12, "batch_size": 4, "ngf": 4, "n_blocks": 1, "unet_downs": 2, "ndf": 4, "d_layers": 1, "semantic_width": 4, "semantic_batch_size": 8, "semantic_warmup": 5,
            "log_every": 4, "checkpoint_every": 6, "sample_count": 4}
TINY = {
    "data": {"image_size": 12},
    "gan": {"cyclegan": TINY_GAN, "cgan": TINY_GAN},
    # 80 steps at width 8 cost well under a second per classifier here, and they learn: the oracle reads
    # the tiny target test at about 0.8, source_only at about 0.2, so the end-to-end tests can check that.
    "classifier": {"arms": ["source_only", "cyclegan", "cgan", "oracle"], "seeds": [0, 1], "width": 8, "steps": 80, "batch_size": 16},
    "evaluate": {"bootstrap_samples": 200},
    "runtime": {"threads": 1},
}

# For the tests of what carries the stages (a Prefect deployment and its workers, the team's DVC
# remote, the sweep's DVC queue) and of what prepare finds in a folder of files: every kind of stage
# still runs, but one GAN of each kind and one classifier of each arm, not two. Each stage is a
# process that spends about 2 s importing torch before it works, so this is where the suite's time
# goes. The digits pipeline of tests/test_pipeline_dvc.py and the Prefect flow's own tests keep
# TINY's two seeds of each: seeds in intervals, classifier seed s on GAN seed s % 2.
ONE_SEED = {"gan": {"seeds": [0]}, "classifier": {"seeds": [0]}}


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return e


def run(cmd: list[str], cwd: Path, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def dvc(*args: str, cwd: Path, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check, extra_env)


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


# Stages dvc.yaml marks `always_changed`: index_raw lists data.root's files on every `dvc repro` (DVC
# cannot hash a folder with FIFOs or broken links in it), and what depends on it re-runs only when
# the list differs.
ALWAYS_RUN = ["index_raw"]


def pending(repo: Path, *targets: str) -> dict:
    """What `dvc status` finds to do (for `targets` and their upstream, default all), leaving out the
    stages that are always changed: {} when settled."""
    status = json.loads(dvc("status", "--json", *targets, cwd=repo).stdout or "{}")
    return {stage: why for stage, why in status.items() if why != ["always changed"]}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def project_copy(dest: Path, overrides: dict | None = None, source: Path = REPO) -> Path:
    """The tracked project files (of this checkout, or of `source`, another one) in a fresh git repo with
    DVC initialised, params made tiny."""
    files = subprocess.run(["git", "ls-files"], cwd=source, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel == "dvc.lock" or not (source / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest / rel)
    params = merge(yaml.safe_load((source / "params.yaml").read_text()), merge(TINY, overrides or {}))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "t@example.com"], dest)  # experiments are git commits
    run(["git", "config", "user.name", "t"], dest)
    if not (dest / ".dvc" / "config").exists():
        dvc("init", "-q", cwd=dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "project"], dest)
    return dest


def stage_process(needle: str, within: Path, timeout: float = 120) -> int | None:
    """The pid of the Python process working under `within` whose command line contains `needle`,
    waiting up to `timeout` s.

    DVC runs a stage's cmd through $SHELL -c, or /bin/sh where SHELL is unset; dash stays as the
    parent of the command, so a match on the shell's command line would kill the shell and leave
    the stage running as an orphan. Only a process whose argv[0] is a Python interpreter counts,
    and only one whose working directory is under `within` (the test's own repository): the same
    stage of a real pipeline running next to the tests on this machine is not the test's to kill."""
    import time

    root = Path(within).resolve()
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                continue
            if os.path.basename(argv[0].decode(errors="replace")).startswith("python") and \
                    needle in b" ".join(argv).decode(errors="replace") and cwd.is_relative_to(root):
                return int(pid)
        time.sleep(0.02)
    return None
