"""The `classic.transforms` list: its default and how each entry becomes an albumentations transform.

No torch here: params validation (pipelines/config.py) builds every entry before any stage runs,
and a stage that only needs the list checked should not depend on the code that applies it
(augment/classic.py).

albumentations 2.x only warns about argument names it does not know and then runs the transform
with its defaults, so every transform is built with `strict=True`: a misspelt or 1.x-style argument
is an error that names it.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import re
import time
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations asks PyPI for updates on import otherwise


# The default list, for 16 px images (params.yaml repeats it; the rgb32 preset scales the pixel sizes).
DEFAULT_TRANSFORMS: tuple[dict[str, Any], ...] = (
    {"name": "RandomSnow", "p": 0.2, "snow_point_range": [0.1, 0.3], "brightness_coeff": 2.0},
    # Uniform fog (haze): contrast pulled toward a bright airlight. RandomFog draws fog blobs instead
    # and costs about 25 ms per 16 px image (0.07 here), which made the classic arms 5x slower to train.
    {"name": "RandomBrightnessContrast", "p": 0.2, "brightness_limit": [0.1, 0.3], "contrast_limit": [-0.6, -0.3]},
    {"name": "RandomRain", "p": 0.2, "rain_type": "drizzle", "drop_length": 3, "drop_width": 1, "blur_value": 1,
     "brightness_coefficient": 0.8},
    {"name": "RandomSunFlare", "p": 0.1, "src_radius": 8, "num_flare_circles_range": [1, 3], "flare_roi": [0, 0, 1, 1]},
    {"name": "RandomShadow", "p": 0.2, "shadow_roi": [0, 0, 1, 1], "num_shadows_limit": [1, 2], "shadow_dimension": 4},
    # Darkening by a share of each image's own mean: by the maximum (albumentations' default) it took
    # 0.2-0.5 of white off every pixel and blanked a quarter of a set of dark sign photos.
    {"name": "RandomBrightnessContrast", "p": 0.3, "brightness_limit": [-0.5, -0.2], "contrast_limit": [-0.3, 0.1],
     "brightness_by_max": False},
    {"name": "RandomGamma", "p": 0.2, "gamma_limit": [150, 250]},
    {"name": "GaussianBlur", "p": 0.2, "blur_limit": [3, 3], "sigma_limit": [0.3, 1.0]},
    {"name": "GaussNoise", "p": 0.2, "std_range": [0.03, 0.1]},
)


class ClassicSpecError(ValueError):
    """A transform entry that cannot be built; the message names the entry."""


def _albumentations():
    import albumentations

    return albumentations


def build_transform(spec: dict[str, Any], *, where: str = "transform"):
    """One albumentations transform from {name, p, **arguments}, strictly checked (`check_transforms`
    also runs them)."""
    A = _albumentations()
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ClassicSpecError(f"{where}: needs a 'name' (an albumentations transform, e.g. RandomFog)")
    cls = getattr(A, name, None)
    if not isinstance(cls, type) or not issubclass(cls, A.ImageOnlyTransform):
        raise ClassicSpecError(f"{where}: {name!r} is not an albumentations image transform (e.g. RandomFog, RandomSnow, GaussianBlur)")
    args = _arguments(spec)
    try:
        try:
            transform = cls(**args, strict=True)
        except TypeError as exc:  # a transform without 2.x's argument checks (ToSepia) takes no `strict`: Python's own check
            if "'strict'" not in str(exc):
                raise
            accepted = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
            unknown = sorted(set(args) - set(accepted))
            if unknown:
                raise ClassicSpecError(f"{where}: {name}: unknown argument(s) {', '.join(unknown)}; it takes {', '.join(accepted)}") from None
            transform = cls(**args)
    except ClassicSpecError:
        raise
    except Exception as exc:  # albumentations raises ValueError (with pydantic's text) or TypeError
        raise ClassicSpecError(f"{where}: {name}: {_why(exc)}") from None
    return transform


def _arguments(spec: dict[str, Any]) -> dict[str, Any]:
    """An entry's arguments as albumentations takes them (YAML lists as tuples), without its name."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "name"}


def memory_asked(text: str) -> str | None:
    """How much one failed allocation asked for, from numpy's words ("Unable to allocate 851. MiB for
    an array ...") or OpenCV's ("Failed to allocate 116640000 bytes"); None where neither says."""
    asked = re.search(r"allocate (?:([\d.]+) (KiB|MiB|GiB|TiB)|(\d+) bytes)", text)
    if not asked:
        return None
    return f"{asked.group(1).rstrip('.')} {asked.group(2)}" if asked.group(1) else f"{int(asked.group(3)) / 2**20:,.0f} MiB"


def _why(exc: Exception) -> str:
    """The first line of an error; for pydantic's (albumentations' argument checks, which arrive as the
    text of a ValueError), each argument it names with its complaint and the value given."""
    text = str(exc).strip()
    if re.match(r"\d+ validation errors? for ", text):
        said, argument = [], None
        for line in text.splitlines()[1:]:
            if line and not line.startswith(" "):
                argument = line.strip()
            elif line.startswith("  ") and not line.strip().startswith("For further information"):
                complaint, _, detail = line.strip().partition(" [type=")
                given = re.search(r"input_value=(.*?), input_type=", detail)
                said.append(f"{argument}: {complaint}" + (f" (got {given.group(1)})" if given else ""))
        if said:
            return "; ".join(said)
    return text.splitlines()[0] if text else type(exc).__name__


def check_transforms(specs: list[dict[str, Any]], size: int) -> None:
    """Every `classic.transforms` entry built, then applied (whatever its `p`) to a few random images
    of `size` px, as the classic arms apply it: one that builds but cannot run on them (`FDA`
    without its reference images, a rain drop longer than the image, a kernel of a billion pixels)
    is refused here, naming its entry, not in the middle of a stage.

    The draws run in a child process held to PROBE_MEMORY bytes more than this one maps and to
    PROBE_SECONDS per entry: `GaussianBlur(blur_limit=2147483647)` asked for 9 GiB and was
    OOM-killed with no word, `MedianBlur(blur_limit=100001)` ran for minutes. Where the platform
    has no fork, they run here, unbounded."""
    entries = []
    for i, spec in enumerate(specs):
        where = f"classic.transforms[{i}]"
        build_transform(spec, where=where)
        entries.append((where, spec["name"], _arguments(spec)))
    if not entries:
        return
    if not hasattr(os, "fork"):
        for where, name, args in entries:
            _probe(where, name, args, size)
        return
    _probe_in_child(entries, size)


# The bounds of one entry's draws in check_transforms' child process. A transform a classic arm can
# use takes milliseconds and a few MB for them at the sizes this project trains at.
PROBE_DRAWS = 4
PROBE_SECONDS = 20.0
PROBE_MEMORY = 2 * 2**30


def _probe_in_child(entries: list[tuple[str, str, dict[str, Any]]], size: int) -> None:
    import json
    import select
    import signal
    import warnings

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no handler of the parent's (Ctrl-C stops the flow there), no other exit path
        code = 1
        try:
            os.close(read_end)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            # A warning would write to stderr, whose lock another of the parent's threads (a flow's
            # logging) may have held at the fork: it would never be released here.
            warnings.simplefilter("ignore")
            _hold_memory(PROBE_MEMORY)
            with os.fdopen(write_end, "w", buffering=1) as said:
                for where, name, args in entries:
                    said.write(json.dumps({"entry": where}) + "\n")
                    try:
                        _probe(where, name, args, size)
                    except ClassicSpecError as exc:
                        said.write(json.dumps({"error": str(exc)}) + "\n")
                        break
                else:
                    said.write(json.dumps({"done": True}) + "\n")
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    done, buffer, entry = False, b"", entries[0][0]
    try:
        deadline = time.monotonic() + PROBE_SECONDS
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                where, name, args = next(e for e in entries if e[0] == entry)
                shown = ", ".join(f"{k}={v}" for k, v in args.items() if k != "p")
                raise ClassicSpecError(
                    f"{where}: {name} did not finish {PROBE_DRAWS} images of {size}x{size} px (data.image_size) in "
                    f"{PROBE_SECONDS:.0f} s: the classic arms apply it to every image they transform; its arguments "
                    f"({shown or 'its defaults'}) are likely far beyond that size")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                message = json.loads(line)
                if "entry" in message:
                    entry, deadline = message["entry"], time.monotonic() + PROBE_SECONDS
                elif "error" in message:
                    raise ClassicSpecError(message["error"])
                done = done or message.get("done", False)
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if not done:  # the child died mid-entry: a crash in native code, or the kernel's OOM killer
        where, name, _ = next(e for e in entries if e[0] == entry)
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        raise ClassicSpecError(f"{where}: {name} crashed the process applying it to a {size}x{size} px image (data.image_size; {how})")


def _hold_memory(extra: int) -> None:
    """Caps this process's address space at what it maps now plus `extra` bytes (Linux): an allocation
    past it fails with MemoryError instead of waking the OOM killer."""
    import resource

    try:
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + extra
    if hard == resource.RLIM_INFINITY or cap < hard:
        resource.setrlimit(resource.RLIMIT_AS, (cap if soft == resource.RLIM_INFINITY else min(cap, soft), hard))


def _probe(where: str, name: str, args: dict[str, Any], size: int) -> None:
    import numpy as np

    always = getattr(_albumentations(), name)(**{**args, "p": 1.0})
    rng = np.random.default_rng(0)
    for _ in range(PROBE_DRAWS):  # a few draws of its random parameters
        try:
            out = always(image=rng.integers(0, 256, (size, size, 3), dtype=np.uint8))["image"]
        except Exception as exc:  # noqa: BLE001 - whatever it raises, the stage would have died of it
            if isinstance(exc, MemoryError) or re.search(r"bad_alloc|[Ii]nsufficient memory|[Ff]ailed to allocate", str(exc)):
                # numpy's words or OpenCV's, whichever allocation a draw of its random parameters reached first
                asked = memory_asked(str(exc))
                amount = f", {asked} at once" if asked else ""
                shown = ", ".join(f"{k}={v}" for k, v in args.items() if k != "p")
                raise ClassicSpecError(f"{where}: {name} fails on a {size}x{size} px image (data.image_size): it asked for more memory "
                                       f"than the check allows it ({PROBE_MEMORY / 2**30:g} GiB{amount}); its arguments "
                                       f"({shown or 'its defaults'}) are likely far beyond that size") from None
            raise ClassicSpecError(f"{where}: {name} fails on a {size}x{size} px image (data.image_size): {_why(exc)}") from None
        # The arm reads what it returns as the image's pixels: Normalize's or ToFloat's floats near 0
        # made every transformed image black, and a crop another size would not stack into a batch.
        if getattr(out, "dtype", None) != np.uint8 or getattr(out, "shape", None) != (size, size, 3):
            got = f"{getattr(out, 'dtype', type(out).__name__)} {'x'.join(map(str, getattr(out, 'shape', ())))}"
            raise ClassicSpecError(f"{where}: {name} turns a {size}x{size} px image (data.image_size) into {got}: the classic arms "
                                   f"take transforms that keep an image's size and its 0-255 pixels (uint8 {size}x{size}x3)")


def build_pipeline(specs: list[dict[str, Any]], *, seed: int = 0):
    """An albumentations Compose of the given transforms, seeded (its own random stream)."""
    A = _albumentations()
    return A.Compose([build_transform(s, where=f"classic.transforms[{i}]") for i, s in enumerate(specs)], seed=seed)
