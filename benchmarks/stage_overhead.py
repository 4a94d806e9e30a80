"""The fixed cost of a DVC stage: what `dvc repro` adds around a stage's own command.

Run in a repo where the pipeline has run (e.g. after `make demo`). Times, alternately and
`--repeat` times each:

- `dvc repro --single-item <stage> --force`: a DVC process that checks the stage's deps, runs its
  command, hashes its outs and rewrites its entry of dvc.lock;
- the stage's command alone (as dvc.yaml gives it), which writes the same outs, started cold (a
  fresh process, as a plain `dvc repro` starts it);
- the same command forked by a warm server (pipelines/warm_start.py, as a flow run starts it);
- a no-op `dvc status`.

The default stage, `train_classifier@test_time-0`, trains nothing: its command is the process
start and params validation, and the rest of the `dvc repro` time is DVC's. Prints the medians
and dvc.lock's length; the last line is one JSON object.

    python benchmarks/stage_overhead.py
    python benchmarks/stage_overhead.py --stage few_labels --repeat 5
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _seconds(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _stage_command(repo: Path, stage: str) -> list[str]:
    """The stage's resolved command, as `dvc stage list` would run it."""
    out = subprocess.run([sys.executable, "-c", (
        "import sys; from dvc.repo import Repo; r = Repo(sys.argv[1]); "
        "print(next(s.cmd for s in r.index.stages if s.addressing == sys.argv[2]))"), str(repo), stage],
        cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    cmd = shlex.split(out)
    return [sys.executable, *cmd[1:]] if cmd and cmd[0] == "python" else cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path("."))
    ap.add_argument("--stage", default="train_classifier@test_time-0")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipelines.warm_start import WARM_STAGES_ENV, warm_stages

    repo = args.repo.resolve()
    dvc = [sys.executable, "-m", "dvc"]
    command = _stage_command(repo, args.stage)
    cold = {**os.environ, WARM_STAGES_ENV: "off"}
    times: dict[str, list[float]] = {"dvc_repro": [], "command_alone": [], "command_warm": [], "dvc_status": []}
    with warm_stages(wait=120):
        warm = dict(os.environ)
        for _ in range(args.repeat):
            times["dvc_repro"].append(_seconds([*dvc, "repro", "--single-item", args.stage, "--force"], repo, cold))
            times["command_alone"].append(_seconds(command, repo, cold))
            times["command_warm"].append(_seconds(command, repo, warm))
            times["dvc_status"].append(_seconds([*dvc, "status"], repo, cold))
    median = {k: round(statistics.median(v), 2) for k, v in times.items()}
    lock_lines = len((repo / "dvc.lock").read_text().splitlines())
    print(f"{args.stage}: dvc repro {median['dvc_repro']:.2f} s, its command alone {median['command_alone']:.2f} s "
          f"({median['command_warm']:.2f} s forked by a warm server), DVC's part {median['dvc_repro'] - median['command_alone']:.2f} s; "
          f"no-op dvc status {median['dvc_status']:.2f} s; dvc.lock {lock_lines} lines (medians of {args.repeat})")
    print(json.dumps({"stage": args.stage, "median_seconds": median, "runs": times, "dvc_lock_lines": lock_lines}))


if __name__ == "__main__":
    main()
