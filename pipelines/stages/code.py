"""DVC stage `code`: data/code/<stage>.json, the sha256 of the project files each stage's module imports.

Every other stage depends on its own pin (pipelines/code_deps.py) instead of on each file it
imports: it re-runs exactly when its own code changes, and dvc.lock stays small. This stage
depends on the whole of augment/, models/ and pipelines/, and runs in well under a second.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from augment.io import atomic_dir
from pipelines.code_deps import write_code_pins
from pipelines.runtime import add_timings_arg, run_stage, stage_timer

OUT = Path("data/code")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=OUT)
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    with stage_timer("code", args.timings_dir), atomic_dir(args.out) as tmp:
        pins = write_code_pins(tmp)
    print(f"code: pinned {sum(len(p['sha256']) for p in pins.values())} imports of {len(pins)} stage modules -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
