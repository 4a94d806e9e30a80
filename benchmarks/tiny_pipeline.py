"""A whole tiny pipeline under `dvc repro`, its stages started cold and then warm: what a stage's start
and end cost, summed over every stage of a run.

Copies the tracked files of a checkout (this one, or `--checkout`, e.g. a worktree of an earlier
commit) into a fresh git + DVC repo, with the test suite's tiny params (12 px, 12 GAN steps, 80
classifier steps; one GAN of each kind, one classifier per arm), and times `dvc repro` there with
every stage a fresh process (`DOMAIN_AUGMENT_WARM_STAGES=off`), then in a second copy with the stages
forked by a warm server (pipelines/warm_start.py, started and made ready before the clock starts; a
checkout without it runs cold both times). Then checks that both copies computed the same bytes
(the stages' timings aside). The last line is one JSON object.

    python benchmarks/tiny_pipeline.py
    git worktree add /tmp/before <commit> && python benchmarks/tiny_pipeline.py --checkout /tmp/before
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from tests.e2e import ONE_SEED, project_copy  # noqa: E402  (the suite's tiny project: one definition)


def digest(repo: Path) -> dict[str, str]:
    """Every file the stages wrote, but their timings (and what quotes them: metrics.json's run block, the reports)."""
    out = {}
    for path in sorted([*repo.glob("data/**/*"), *repo.glob("artifacts/**/*"), *repo.glob("reports/**/*")]):
        rel = str(path.relative_to(repo))
        if path.is_file() and "timings" not in rel and not rel.startswith(("reports/report.", "reports/metrics.json")) \
                and not rel.endswith("history.csv"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    metrics["run"].pop("wall_seconds"), metrics["run"].pop("images_per_s")
    out["reports/metrics.json"] = hashlib.sha256(json.dumps(metrics, sort_keys=True).encode()).hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", type=Path, default=HERE, help="the project checkout whose code the stages run (default: this one)")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    os.environ.update(DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1", NO_ALBUMENTATIONS_UPDATE="1")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    from pipelines.warm_start import WARM_STAGES_ENV, warm_stages

    seconds, stages = {}, {}
    with tempfile.TemporaryDirectory(prefix="tiny-pipeline-") as tmp, warm_stages(wait=120):
        for how in ("cold", "warm"):
            (Path(tmp) / how).mkdir()
            repo = project_copy(Path(tmp) / how, ONE_SEED, source=checkout)
            env = {**os.environ, **({WARM_STAGES_ENV: "off"} if how == "cold" else {})}
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
            seconds[how] = round(time.perf_counter() - t0, 1)
            if proc.returncode:
                sys.exit(f"dvc repro ({how}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            stages[how] = len(re.findall(r"Running stage '", proc.stdout))
        same = digest(Path(tmp) / "cold") == digest(Path(tmp) / "warm")
    print(f"{checkout}: dvc repro of the tiny pipeline ({stages['cold']} stages): {seconds['cold']} s cold, {seconds['warm']} s warm "
          f"({seconds['cold'] / seconds['warm']:.2f}x); the same bytes: {same}")
    print(json.dumps({"checkout": str(checkout), "stages": stages, "seconds": seconds, "same_outputs": same}))


if __name__ == "__main__":
    main()
