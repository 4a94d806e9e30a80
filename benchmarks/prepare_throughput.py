"""How fast `prepare` reads a folder of camera-sized photos, and what its two speed-ups give.

Writes `--images` JPEG photos (`--width` x `--height`, default 1920x1080, quality 90) in the data
contract's layout to a temporary folder: scikit-learn's two sample photos, resized, rotated and
shifted so that no two files are alike (they ship with scikit-learn: nothing is downloaded). Then
times `prepare_folders` three ways, one after the other in this process:

- `full_1`: every JPEG decoded at full size, one file at a time (as before the speed-ups);
- `draft_1`: JPEG's DCT scaling (`augment.images.DRAFT_MARGIN`), one file at a time;
- `draft_n`: the same with `--workers` decoding threads (default: the cores other processes leave
  idle, as the prepare stage chooses).

Prints images/s of each, the ratios, and the largest pixel difference between `full_1` and the
others; the last line is one JSON object.

    python benchmarks/prepare_throughput.py
    python benchmarks/prepare_throughput.py --images 400 --size 64 --workers 4
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import augment.images as images  # noqa: E402
from augment.prepare import PrepareConfig, prepare  # noqa: E402
from pipelines.cpu_threads import idle_cores  # noqa: E402

CLASSES = ("a", "b")


def write_photos(root: Path, n: int, width: int, height: int) -> None:
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(p) for p in load_sample_images().images]
    places = [("src", "train", True), ("src", "test", True), ("tgt", "train", False), ("tgt", "test", True)]
    for i in range(n):
        domain, split, labeled = places[i % len(places)]
        cls = CLASSES[(i // len(places)) % len(CLASSES)]
        img = photos[i % len(photos)].resize((width, height), Image.Resampling.BICUBIC).rotate(i % 360, translate=(i % 50, i % 30))
        folder = root / domain / split / (cls if labeled else "")
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{cls}_{i:05d}.jpg", quality=90)


def timed(root: Path, out: Path, *, size: int, workers: int) -> tuple[float, np.ndarray]:
    cfg = PrepareConfig(dataset="folders", root=str(root), source="src", target="tgt", image_size=size, channels=3, workers=workers)
    t0 = time.perf_counter()
    manifest = prepare(cfg, out)
    seconds = time.perf_counter() - t0
    return len(manifest) / seconds, np.load(out / "pixels.npy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--size", type=int, default=32, help="data.image_size")
    ap.add_argument("--workers", type=int, default=0, help="decoding threads of the last run (0: the idle cores)")
    args = ap.parse_args()
    workers = args.workers or idle_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        write_photos(root, args.images, args.width, args.height)
        margin = images.DRAFT_MARGIN
        images.DRAFT_MARGIN = 10**9  # no JPEG can be reduced that far: full-size decoding
        full, ref = timed(root, Path(tmp) / "full_1", size=args.size, workers=1)
        images.DRAFT_MARGIN = margin
        draft, a = timed(root, Path(tmp) / "draft_1", size=args.size, workers=1)
        draft_n, b = timed(root, Path(tmp) / "draft_n", size=args.size, workers=workers)
    diff = {k: int(np.abs(x.astype(int) - ref.astype(int)).max()) for k, x in (("draft_1", a), ("draft_n", b))}
    mean_diff = float(np.abs(a.astype(int) - ref.astype(int)).mean())
    print(f"prepare, {args.images} JPEG photos {args.width}x{args.height} -> {args.size} px: full-size decoding {full:.1f} images/s, "
          f"DCT-scaled {draft:.1f} ({draft / full:.2f}x), with {workers} threads {draft_n:.1f} ({draft_n / full:.2f}x); "
          f"pixels differ from full-size decoding by {mean_diff:.2f} grey levels on average, {diff['draft_1']} at most")
    print(json.dumps({"images": args.images, "photo": [args.width, args.height], "image_size": args.size, "workers": workers,
                      "images_per_s": {"full_1": round(full, 1), "draft_1": round(draft, 1), "draft_n": round(draft_n, 1)},
                      "draft_over_full": round(draft / full, 2), "draft_n_over_full": round(draft_n / full, 2),
                      "max_abs_pixel_diff": diff, "mean_abs_pixel_diff": round(mean_diff, 3)}))


if __name__ == "__main__":
    main()
