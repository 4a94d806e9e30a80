"""`domain-augment`: the command line.

    domain-augment demo            run the whole pipeline (dvc repro) and print where the report is
    domain-augment check-params    validate params.yaml and print the parsed values
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipelines.runtime import set_offline_env, use_this_python


def _demo(args: argparse.Namespace) -> int:
    from dvc.repo import Repo

    from pipelines.config import load_params

    load_params(args.params)  # fail fast, by key, before DVC starts anything
    t0 = time.perf_counter()
    with Repo(".") as repo:
        stages = repo.reproduce(force=args.force)
    ran = [s.addressing for s in stages]
    print(f"\ndvc repro: {len(ran)} stage(s) ran in {time.perf_counter() - t0:.0f}s" + (f": {', '.join(ran)}" if ran else " (everything up to date)"))
    metrics = json.loads(Path("reports/metrics.json").read_text())
    for arm, m in metrics["target_test"].items():
        acc = m["accuracy"]
        line = f"  {arm:<12} target accuracy {acc['mean']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]"
        if arm in metrics["benefit"]:
            d = metrics["benefit"][arm]["accuracy_delta"]
            line += f"   benefit {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        print(line)
    print(f"\nReport: {Path('reports/report.md').resolve()}\nMetrics: {Path('reports/metrics.json').resolve()}")
    return 0


def _check_params(args: argparse.Namespace) -> int:
    from pipelines.config import load_params

    print(json.dumps(load_params(args.params).model_dump(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    use_this_python()
    ap = argparse.ArgumentParser(prog="domain-augment", description="GAN-based domain augmentation, measured.")
    ap.add_argument("--params", default="params.yaml")
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline with dvc repro and print the results")
    demo.add_argument("--force", action="store_true", help="re-run every stage even if up to date")
    demo.set_defaults(func=_demo)
    check = sub.add_parser("check-params", help="validate params.yaml")
    check.set_defaults(func=_check_params)
    args = ap.parse_args(argv)
    from dvc.exceptions import DvcException

    from augment.contract import DataLayoutError
    from pipelines.config import ParamsError

    try:
        return args.func(args)
    except (ParamsError, DataLayoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DvcException as exc:
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        print(f"error: {exc}{cause} (the stage's own message is above)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
