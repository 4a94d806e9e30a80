"""DVC stage `index_raw`: data/raw_index.json, what `prepare` may read from `data.root`, which `prepare` depends on.

DVC would hash `data.root` itself by opening every file under it, and a FIFO, a link to a device, a
broken link, an unreadable file or a file name that is not UTF-8 hangs or stops it before `prepare`
can list them in rejected.csv (augment/folder_index.py). This stage lists the two domain folders
without reading anything but regular files. It runs on every `dvc repro` (`always_changed`), so
`dvc status` names it as always changed. It costs a stat per file, a hash only for new or changed
files, and `prepare` re-runs only when the index comes out different.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from augment.folder_index import index_domains
from augment.io import write_text
from pipelines.config import load_params
from pipelines.runtime import run_stage

OUT = Path("data/raw_index.json")
CACHE = Path(".dvc/tmp/raw_index_cache.json")  # beside DVC's own state: local to this checkout, never tracked


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"stat cache of file hashes (default: {CACHE}, when .dvc/ exists)")
    args = ap.parse_args(argv)
    d = load_params(args.params, build_transforms=False).data
    index: dict = {"dataset": d.dataset}
    if d.dataset == "folders":
        cache = args.cache if args.cache.parent.parent.is_dir() else None
        index["domains"] = [d.source, d.target]  # prepare checks what it reads against this listing (not data.root: copies list alike)
        index["entries"] = index_domains(d.root, [d.source, d.target], cache)
    write_text(json.dumps(index, indent=1) + "\n", args.out)
    n = len(index.get("entries", []))
    print(f"index_raw: {n} entries under {d.root}/{{{d.source},{d.target}}} -> {args.out}" if d.dataset == "folders"
          else f"index_raw: data.dataset is {d.dataset}, no folder to read -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
