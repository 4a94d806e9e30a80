"""Whether a domain's images are in colour, against what `data.channels` keeps of them.

With `data.channels: 1` every image is read as grey: when colour is the shift between the two
domains (MNIST -> MNIST-M, clear -> sunset), the run then learns and measures another problem than
the user's, and says nothing. With `data.channels: 3` on two grey domains the networks read three
copies of one channel. `prepare` and `check-data` look at a sample of each domain's files and say so.

Files are read as stored by default (data.colour_profiles: as_stored), without colour management, as
torchvision and OpenCV read them: a colour profile a file embeds (a phone's Display P3, a camera's
Adobe RGB) is not applied. Where the two domains' files store colour in different spaces, that
difference is part of the shift the run measures; the same sample says so (`colour_profiles`,
`profile_notes`), and `srgb` converts such files as they are read (augment/images.py).
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np

from augment.images import ImageRejected, decode

SAMPLE = 40  # files per domain, evenly spread over its sorted list
# Mean over pixels of (largest channel - smallest channel), in 8-bit levels, above which an image is in
# colour. A grey image stored as RGB gives 0 (a JPEG's chroma noise 1-3); a faded sepia photo about
# 10-15, a street scene 20-60, an MNIST-M digit 60-120.
COLOURFUL = 8.0


def colourfulness(rgb: np.ndarray) -> float:
    """(H, W, 3) uint8 -> mean per-pixel channel spread, in levels."""
    rgb = rgb.astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def _sampled(files: list[Path], sample: int) -> list[Path]:
    files = sorted(files)
    return [files[i] for i in np.linspace(0, len(files) - 1, min(sample, len(files))).round().astype(int)] if files else []


def colour_shares(paths: dict[str, list[Path]], *, size: int = 32, sample: int = SAMPLE) -> dict[str, tuple[int, int]]:
    """domain -> (files in colour, files looked at) of an even sample of its readable files."""
    out = {}
    for domain, files in paths.items():
        picked = _sampled(files, sample)
        scores = []
        for path in picked:
            try:
                scores.append(colourfulness(decode(path, size=size, channels=3)[0]))
            except (ImageRejected, OSError):  # gone since it was read: the sample is a little smaller
                continue
        out[domain] = (sum(s > COLOURFUL for s in scores), len(scores))
    return out


def colour_notes(shares: dict[str, tuple[int, int]], channels: int) -> list[str]:
    """What to tell the user of `colour_shares` under `data.channels`."""
    if channels == 1:
        return [f"{domain}: {k} of {n} sampled images are in colour, and data.channels is 1: the run reads every image as grey, "
                "so colour is no part of the shift the GANs learn or of what the classifiers see; -S data.channels=3 keeps it "
                "(presets/rgb32.yaml)" for domain, (k, n) in shares.items() if n and k * 2 >= n]
    looked = [n for _, n in shares.values()]
    if looked and all(looked) and not any(k for k, _ in shares.values()):
        return [f"every sampled image of {' and '.join(shares)} is grey, and data.channels is 3: the networks read three "
                "copies of one channel; -S data.channels=1 reads the same images at a third of the input"]
    return []


NO_PROFILE = ""  # a file that embeds no colour profile: read as sRGB, as everything reads it


def profile_name(path: Path) -> str | None:
    """The description of the colour profile `path` embeds (from its header), NO_PROFILE for none, None
    where the file cannot be opened (gone since it was read)."""
    from PIL import Image, ImageCms

    try:
        with open(path, "rb") as fh, Image.open(fh) as img:
            icc = img.info.get("icc_profile")
            if not icc:
                return NO_PROFILE
            try:
                return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() or "unnamed"
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
                return "unreadable"
    except Exception:  # noqa: BLE001 - the sample is a little smaller; decode says why a file is refused
        return None


def colour_profiles(paths: dict[str, list[Path]], *, sample: int = SAMPLE) -> dict[str, Counter]:
    """domain -> Counter of the colour profiles (`profile_name`) its sampled files embed."""
    return {domain: Counter(n for n in map(profile_name, _sampled(files, sample)) if n is not None) for domain, files in paths.items()}


def _srgb(name: str) -> bool:
    return name == NO_PROFILE or "srgb" in name.casefold().replace(" ", "")


def profile_notes(profiles: dict[str, Counter], channels: int, reading: str = "as_stored") -> list[str]:
    """A note where, in colour (`channels` 3) read as stored (`reading`: data.colour_profiles), half or more of one
    domain's sample embeds a profile other than sRGB and the other domain's does not: the two store colour
    differently, and nothing converts it."""
    if channels != 3 or reading != "as_stored" or len(profiles) != 2:
        return []
    wide = {domain: sum(n for name, n in found.items() if not _srgb(name)) for domain, found in profiles.items()}
    looked = {domain: sum(found.values()) for domain, found in profiles.items()}
    tagged = [d for d in profiles if looked[d] and wide[d] * 2 >= looked[d]]
    if len(tagged) != 1:
        return []

    def said(domain: str) -> str:
        found = profiles[domain]
        parts = [f"{'no profile' if name == NO_PROFILE else repr(name)} in {n}" for name, n in found.most_common(3)]
        return f"{domain}: {', '.join(parts)} of {looked[domain]} sampled files"

    return [f"the domains store colour differently ({'; '.join(said(d) for d in profiles)}). Files are read as stored, without "
            "colour management, as torchvision and OpenCV read them, so how the files store colour is part of the shift the run "
            "measures; if the model will see converted images, -S data.colour_profiles=srgb converts them to sRGB as they are read"]


def colour_sample_notes(paths: dict[str, list[Path]], channels: int, reading: str = "as_stored") -> list[str]:
    """Everything `prepare` and `check-data` say of the domains' colour, from one even sample of each."""
    return colour_notes(colour_shares(paths), channels) + profile_notes(colour_profiles(paths), channels, reading)
