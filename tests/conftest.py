import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

for key, value in {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}.items():
    os.environ.setdefault(key, value)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The files that run whole pipelines, longest first (test time of each on 2 cores: 550, 375, 270,
# 200, 180, 80, 75, 65 s). `make test` hands whole files to its two workers in collection order
# (`--dist loadfile --no-loadscope-reorder`), so the long ones start first and the many short files
# fill in at the end; xdist's own reorder, by number of tests, started the sweep and team files last.
LONGEST_FIRST = ("test_pipeline_dvc.py", "test_sweep.py", "test_cli_errors.py", "test_prefect_flow.py", "test_prefect_server.py",
                 "test_team.py", "test_distributed.py", "test_benchmarks.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's tests keep their order


@pytest.fixture(scope="session", autouse=True)
def warm_stage_server():
    """One warm stage server per test process (pipelines/warm_start.py), as a flow run has one: the stages
    that every `dvc repro` of the tests starts are forked from it, with the code of their own copy of the
    project. Tests of the cold start set `DOMAIN_AUGMENT_WARM_STAGES` themselves."""
    from pipelines.warm_start import warm_stages

    with warm_stages(wait=120) as path:  # ready before the first test: which stages start warm does not depend on timing
        yield path


# What the project's own pipeline writes in the checkout. Tests run stages in throwaway copies or with
# every output path given: a stage run with its defaults (artifacts/gan_curves/..., artifacts/timings/,
# data/external_files.json) from the checkout overwrote the user's results and left `dvc status` stale.
REPO_OUTPUTS = ("artifacts", "data", "reports", "dvc.lock", "params.yaml")


def _outputs_snapshot() -> dict[str, tuple[int, int]]:
    found = {}
    for name in REPO_OUTPUTS:
        top = REPO / name
        for path in (top.rglob("*") if top.is_dir() else [top]):
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):  # from the lstat at hand: no second stat per file
                found[str(path.relative_to(REPO))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def repository_outputs_untouched():
    """Fails the run (an error at the teardown of its last test) where tests wrote into the checkout's
    pipeline outputs, naming the files."""
    before = _outputs_snapshot()
    yield
    after = _outputs_snapshot()
    touched = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert not touched, (f"the tests wrote into this checkout's pipeline outputs: {', '.join(touched[:10])}"
                         f"{f' and {len(touched) - 10} more' if len(touched) > 10 else ''} (a stage run from the checkout with "
                         "a default output path; or a run of the pipeline here while the tests ran)")


@pytest.fixture
def one_thread():
    """torch at one thread for the test. Every tensor in the network tests is tiny: on 2 cores
    shared with other jobs, torch's default 2 threads make them 10-40x slower than 1 thread
    (measured), and they gain nothing from parallelism."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def draw_digit_like(label: int, size: int, rng: np.random.Generator, *, fill: bool) -> np.ndarray:
    """A tiny class-dependent pattern: a bar whose position encodes the label.

    `fill=False` (source) draws a thin bar in a padded box; `fill=True` (target) a thick bar
    that spans the box, so the two domains differ the way MNIST and optical digits do.
    """
    img = np.zeros((size, size), np.uint8)
    pos = int((label + 0.5) * size / 4)
    width = 3 if fill else 1
    lo, hi = (0, size) if fill else (size // 4, size - size // 4)
    img[lo:hi, max(0, pos - width // 2) : pos + width // 2 + 1] = 255
    noise = rng.integers(0, 40, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def make_folders(root: Path, *, classes=("a", "b", "c"), per_class=6, flat_target_train=True, size=20, seed=0) -> Path:
    """Two domains in the data contract's layout, written as PNGs of assorted modes."""
    rng = np.random.default_rng(seed)
    modes = ["L", "RGB", "RGBA", "P"]
    for domain, fill in (("src", False), ("tgt", True)):
        for split in ("train", "test"):
            for ci, cls in enumerate(classes):
                for k in range(per_class):
                    arr = draw_digit_like(ci, size, rng, fill=fill)
                    mode = modes[k % len(modes)]
                    img = Image.fromarray(arr, "L").convert(mode)
                    if domain == "tgt" and split == "train" and flat_target_train:
                        path = root / domain / split / f"{cls}_{k}.png"
                    else:
                        path = root / domain / split / cls / f"{k}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    img.save(path)
    return root


# What stops DVC from hashing a folder (it hangs on the first two): one of each, put in `folder`
# beside its 0.png by `add_files_dvc_cannot_hash`.
DVC_UNHASHABLE = ("fifo.png", "zero.png", "broken.png", "loop1.png", "loop2.png")


def add_files_dvc_cannot_hash(folder: Path) -> None:
    """A FIFO, a link to /dev/zero, a broken link, a link loop, and a copy of 0.png whose name is not UTF-8."""
    import shutil

    os.mkfifo(folder / "fifo.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "broken.png").symlink_to("nowhere.png")
    (folder / "loop1.png").symlink_to("loop2.png")
    (folder / "loop2.png").symlink_to("loop1.png")
    shutil.copy(folder / "0.png", os.path.join(os.fsencode(folder), b"caf\xe9.png"))  # a Latin-1 name


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "raw")


# Adobe RGB (1998)'s primaries, adapted to the D50 of the profile connection space, and its gamma.
WIDE_GAMUT = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


def rgb_profile(description: str, colorants=WIDE_GAMUT, gamma: float = 563 / 256) -> bytes:
    """An ICC v2 matrix/TRC display profile, as a camera or phone embeds one in its files (LittleCMS
    reads it): `colorants` are the XYZ of pure red, green and blue, one gamma curve for all three."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(colorants[0])), (b"gXYZ", xyz(colorants[1])),
            (b"bXYZ", xyz(colorants[2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
