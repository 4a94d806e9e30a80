"""DVC stage `index_raw`: data/raw_index.json, what `prepare` may read from `data.root`, which `prepare` depends on;
and data/external_files.json, the sha256 of the files params name by path elsewhere (`external_files`), which `evaluate` depends on.

DVC would hash `data.root` itself by opening every file under it, and a FIFO, a link to a device, a
broken link, an unreadable file or a file name that is not UTF-8 hangs or stops it before `prepare`
can list them in rejected.csv (augment/folder_index.py). This stage lists the two domain folders
without reading anything but regular files. It runs on every `dvc repro` (`always_changed`), so
`dvc status` names it as always changed. It costs a stat per file, a hash only for new or changed
files, and `prepare` re-runs only when the index comes out different. A file a params key names by
path (evaluate.inception_weights) is outside what DVC hashes too: a new file at the same path would
leave the metrics of the old one standing, so its sha256 is written where `evaluate` depends on it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from augment.folder_index import index_domains
from augment.io import sha256_file, write_text
from pipelines.config import Params, load_params
from pipelines.runtime import run_stage

OUT = Path("data/raw_index.json")
EXTERNAL = Path("data/external_files.json")
CACHE = Path(".dvc/tmp/raw_index_cache.json")  # beside DVC's own state: local to this checkout, never tracked


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"stat cache of file hashes (default: {CACHE}, when .dvc/ exists)")
    ap.add_argument("--external", type=Path, default=EXTERNAL, help=f"where the external files' hashes go (default: {EXTERNAL})")
    args = ap.parse_args(argv)
    params = load_params(args.params, build_transforms=False)
    d = params.data
    write_text(json.dumps(external_files(params), indent=1) + "\n", args.external)
    index: dict = {"dataset": d.dataset}
    if d.dataset == "folders":
        cache = args.cache if args.cache.parent.parent.is_dir() else None
        index["domains"] = [d.source, d.target]  # prepare checks what it reads against this listing (not data.root: copies list alike)
        index["entries"] = index_domains(d.root, [d.source, d.target], cache)
    write_text(json.dumps(index, indent=1) + "\n", args.out)
    n = len(index.get("entries", []))
    print(f"index_raw: {n} entries under {d.root}/{{{d.source},{d.target}}} -> {args.out}" if d.dataset == "folders"
          else f"index_raw: data.dataset is {d.dataset}, no folder to read -> {args.out}")


def external_files(params: Params) -> dict:
    """{key: {path, size, sha256}} of each file a params key names by path outside data.root and the
    repository's tracked files ({} where none is set). One that cannot be read is recorded with why: the
    stage that reads it stops on it, naming its key."""
    out = {}
    for key, path in (("evaluate.inception_weights", params.evaluate.inception_weights),):
        if not path:
            continue
        try:
            out[key] = {"path": path, "size": Path(path).stat().st_size, "sha256": sha256_file(path)}
        except OSError as exc:  # not there, a folder, unreadable
            out[key] = {"path": path, "error": exc.strerror or type(exc).__name__}
    return out


if __name__ == "__main__":
    run_stage(main)
