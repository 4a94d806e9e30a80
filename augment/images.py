"""Reading any image file into the project's canonical form: square, `size` px, 1 or 3 channels, uint8."""
from __future__ import annotations

import io
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

if TYPE_CHECKING:  # torch is imported where tensors are made: reading and checking images (prepare, check-data) needs none
    import torch

# Anything bigger is refused unread: a 200-megapixel phone photo (16320x12240) is read, a decompression
# bomb is not. A JPEG that large decodes at 1/8 scale (`draft`); a PNG or TIFF of this size needs about
# 750 MB (RGB) while it decodes, 2 GB when 16-bit grey (measured: 249.6 MP, 2.0 GB peak in check-data).
DEFAULT_MAX_PIXELS = 250_000_000
# A large JPEG is decoded at a reduced scale no smaller than this many times the output size, as
# `_square`'s resize reduces by whole factors only down to 3x (reducing_gap) before its bicubic
# filter: a photo taken to 32 px decodes 2-4x faster, with the same antialiasing margin.
DRAFT_MARGIN = 3
# `decode` applies its own limit (data.max_image_pixels) to the header's size before any pixel is
# read; PIL's fixed one (about 179 million px, a warning from half that) would override the user's.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(Exception):
    """A file that cannot be used as an image; the message is the reason written to rejected.csv."""


DEEP_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # PIL's modes of grey deeper than 8 bits
BITS_PER_SAMPLE, SAMPLES_PER_PIXEL, SAMPLE_FORMAT = 258, 277, 339  # TIFF tags; a SampleFormat of 1 is unsigned integers (the default), 3 floats


def _deep_values(img: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit or float grey image's values as float32 (exact for 16-bit values, and finer
    than the 256 levels they become for any other; float64 took 8 bytes a pixel, and a 250-megapixel
    16-bit PNG 6.9 GB to read). PIL holds an unsigned 32-bit TIFF in its signed mode "I", so values
    from 2**31 on would read negative: they are taken back unsigned."""
    arr = np.asarray(img)
    if img.mode == "I" and img.format == "TIFF" and _tiff_tag(img, SAMPLE_FORMAT, 1) == 1 and _tiff_tag(img, BITS_PER_SAMPLE, 0) == 32:
        arr = arr.view(np.uint32)
    return arr.astype(np.float32)


def _tiff_tag(img: Image.Image, tag: int, default: int) -> int:
    return _first(getattr(img, "tag_v2", {}).get(tag, default))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey images -> 8-bit, by what their values mean: 65535 is a 16-bit
    image's white (as every viewer shows it), 1.0 a float image's in [0, 1], and values in 0-255 are
    kept. Only values outside those scales are stretched over their own range (a constant image of
    them keeps its level, clipped), so a dark 16-bit photo stays dark and a flat one is not blackened.
    Pixels a PNG's transparency key marks (its tRNS value) are black, as alpha is composited over black."""
    arr = _deep_values(img)  # scaled in place below: one float copy of the image at a time
    if not np.isfinite(arr).all():  # scaled by its range, one NaN or infinity would turn the whole image black
        raise ImageRejected(f"{int(arr.size - np.isfinite(arr).sum())} of {arr.size} pixel values are not finite (NaN or infinity)")
    lo, hi = float(arr.min()), float(arr.max())
    if img.mode.startswith("I;16") or (img.mode == "I" and lo >= 0 and 255 < hi <= 65535):
        arr /= 257.0  # 65535 -> 255
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        arr *= 255.0
    elif lo >= 0 and hi <= 255:
        pass
    elif hi > lo:
        arr -= lo
        arr /= hi - lo
        arr *= 255.0
    else:
        np.clip(arr, 0, 255, out=arr)
    key = img.info.get("transparency")
    if isinstance(key, (int, float)):
        arr[np.asarray(img) == key] = 0
    return Image.fromarray(np.rint(arr, out=arr).astype(np.uint8), mode="L")


RESIZE_MODES = ("stretch", "crop", "pad")


def _square(img: Image.Image, size: int, resize: str) -> Image.Image:
    """`img` at size x size. stretch: the whole image, its aspect ratio lost (a circle in a 2:1 photo
    becomes an ellipse); crop: the centred square of its shorter side, the rest cut off; pad: the
    whole image at its own aspect ratio, centred on black."""
    w, h = img.size
    if resize == "crop" and w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif resize == "pad" and w != h:
        scale = size / max(w, h)
        inner = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC, reducing_gap=3.0)
        canvas = Image.new(img.mode, (size, size))  # black in every mode canonical converts to
        canvas.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
        return canvas
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return img


def canonical(img: Image.Image, *, size: int, channels: int, resize: str = "stretch") -> np.ndarray:
    """Any PIL image -> (size, size, channels) uint8. Alpha is composited over black; `resize` says how
    a non-square image becomes square (`_square`)."""
    if img.mode in DEEP_GREY:
        img = _to_8bit(img)
    if img.mode == "P" or (img.mode in ("1", "L", "RGB") and img.info.get("transparency") is not None):
        img = img.convert("RGBA")  # a palette's transparency, or a PNG's transparency key (tRNS) of one grey level or colour
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    wanted = "L" if channels == 1 else "RGB"
    try:
        img = img.convert(wanted)
    except ValueError:  # modes PIL converts only to RGB (LAB, for one)
        img = img.convert("RGB").convert(wanted)
    arr = np.asarray(_square(img, size, resize), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


# EXIF orientation -> the transpose that turns the stored pixels upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _orientation(img: Image.Image) -> int:
    """The EXIF (or XMP) orientation of a loaded image, 1 for none: a phone's rotation. Read before any
    conversion, which keeps no EXIF (a 16-bit PNG's turn was lost). Pillow turns a TIFF upright as it
    loads it and drops the tag, so a TIFF says 1 here. A malformed EXIF block leaves it as stored."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - PIL raises assorted errors on broken EXIF; the pixels are still good
        return 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    return img.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else img


COLOUR_PROFILES = ("as_stored", "srgb")
_SRGB = None  # Pillow's built-in sRGB profile, made on first use


def _in_srgb(img: Image.Image) -> Image.Image:
    """`img` converted from the colour profile it embeds to sRGB (perceptual intent, LittleCMS), for RGB,
    RGBA and CMYK images; as it is where it embeds none, or one that cannot be read (its values as stored)."""
    global _SRGB
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    from PIL import ImageCms

    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    try:
        return ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                         outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img


_NOT_REGULAR = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                stat.S_IFDIR: "folder"}


def decode(path: Path, *, size: int, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS,
           resize: str = "stretch", colour_profiles: str = "as_stored") -> tuple[np.ndarray, tuple[int, int]]:
    """One file -> (canonical array, its stored (width, height)); ImageRejected with a reason for
    anything unusable. Whatever goes wrong decoding one file rejects that file, never the run.
    `colour_profiles` (data.colour_profiles): as_stored, or srgb (`_in_srgb`)."""
    if resize not in RESIZE_MODES:  # a caller's mistake, not the file's: raised before the file's try
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if colour_profiles not in COLOUR_PROFILES:
        raise ValueError(f"colour_profiles must be one of {', '.join(COLOUR_PROFILES)}, got {colour_profiles!r}")
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # opening a FIFO would wait for a writer forever
            raise ImageRejected(f"not a regular file ({_NOT_REGULAR.get(stat.S_IFMT(st.st_mode), 'unknown kind')})")
        if st.st_size == 0:
            raise ImageRejected("zero-byte file")
        # From a file object, not by name: by name, Pillow maps a raw grey TIFF into memory at its turned
        # size (orientation 5-8) and read stripes of the wrong width instead of the picture.
        with open(path, "rb") as fh, Image.open(fh) as img:
            if img.format == "EPS":  # Pillow hands PostScript to Ghostscript, a program run on whatever the folder holds
                raise ImageRejected("a PostScript/EPS drawing, which this reader does not run; export it as PNG")
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRejected(f"too large: {width}x{height} px exceeds {max_pixels} px (data.max_image_pixels; "
                                    f"-S data.max_image_pixels={width * height} reads it)")
            if width < 1 or height < 1:
                raise ImageRejected(f"empty image: {width}x{height} px")
            if img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale in the DCT where that still leaves
                img.draft(img.mode, (DRAFT_MARGIN * size, DRAFT_MARGIN * size))  # DRAFT_MARGIN x `size` on both sides
            img.load()  # decodes fully (the first frame of an animation): truncated files fail here, not later
            orientation = _orientation(img)
            if img.mode in DEEP_GREY:  # here, while the TIFF's tags that say how to read its values are at hand
                img = _to_8bit(img)
            if colour_profiles == "srgb":
                img = _in_srgb(img)
            return canonical(_upright(img, orientation), size=size, channels=channels, resize=resize), (width, height)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(_tiff_kind(path) or _known_kind(path) or "not an image (unidentified format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if str(exc).startswith("image file is truncated"):  # PIL's "(13 bytes not processed)" counts its last read, not what is lost
            raise ImageRejected("unreadable: truncated (the file ends before its image does: an interrupted copy, upload or "
                                "download)") from None
        raise ImageRejected(f"unreadable: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a format plugin's own bug on a corrupt file (SPIDER: AttributeError)
        raise ImageRejected(f"unreadable: {type(exc).__name__}: {exc}") from None


_SAMPLE_KINDS = {1: "unsigned integer", 2: "signed integer", 3: "float"}
_CONVERT = ", which this reader cannot decode; convert it to PNG or JPEG"
_ARCHIVE = ", not an image: unpack it into the class folders"
_HEIC, _VIDEO = "a HEIC/HEIF photo (phones' default format)" + _CONVERT, "a video (MP4, MOV), not a still image: save frames of it as PNG or JPEG"
# ISO base media files (HEIC photos, videos) by the brand of their first box, 'ftyp'
_BRANDS = {**dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"), _HEIC),
           **dict.fromkeys((b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  ", b"3gp4", b"3gp5"), _VIDEO)}
_HEADS = ((b"\xff\x0a", "a JPEG XL image" + _CONVERT), (b"\0\0\0\x0cJXL \r\n\x87\n", "a JPEG XL image" + _CONVERT),
          (b"%PDF", "a PDF document" + _CONVERT), (b"PK\x03\x04", "a ZIP archive" + _ARCHIVE), (b"\x1f\x8b", "a gzip archive" + _ARCHIVE))


def _known_kind(path: Path) -> str | None:
    """Why a file no decoder opened is refused, for what people meet in image folders that this reader
    does not decode (a phone's HEIC, JPEG XL, SVG, PDF, a video, an archive, a text file); None for
    anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head[4:8] == b"ftyp" and head[8:12] in _BRANDS:
        return _BRANDS[head[8:12]]
    if head.lstrip().startswith((b"<svg", b"<?xml", b"<!DOCTYPE svg")) and b"<svg" in head:
        return "an SVG drawing (vector graphics)" + _CONVERT
    known = next((why for start, why in _HEADS if head.startswith(start)), None)
    return known or (_TEXT if _is_text(head) else None)


_TEXT = "a text file, not an image (notes, annotations or metadata beside the images are not read)"


def _is_text(head: bytes) -> bool:
    """Whether a file's first bytes are text (UTF-8, no NUL): a README, a label or annotation file
    (.txt, .json, .xml, .csv), a phone's edit sidecar (.AAE)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # cut in the middle of a character at the end of the 512 bytes read
        if exc.start < len(head) - 3:
            return False
    return bool(head.strip()) and b"\0" not in head


def _tiff_kind(path: Path) -> str | None:
    """Why a TIFF that no decoder opened is refused, from its first directory's tags (PIL reads float
    pixels in grey alone, not RGB or 64-bit ones); None for a file that is not a TIFF."""
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            head = f.read(8)
            if head[:4] not in (b"II*\0", b"MM\0*"):
                return None
            warnings.simplefilter("ignore")  # PIL warns of a directory it cannot read: the reason says so
            tags = TiffImagePlugin.ImageFileDirectory_v2(head)
            f.seek(tags.next)
            tags.load(f)
        if BITS_PER_SAMPLE not in tags:
            raise ValueError("no BitsPerSample tag")
        bits, kind = (_first(tags.get(tag, (1,))) for tag in (BITS_PER_SAMPLE, SAMPLE_FORMAT))
        channels = _first(tags.get(SAMPLES_PER_PIXEL, 1))
    except Exception:  # noqa: BLE001 - a TIFF too broken to describe
        return "a TIFF this reader cannot decode (its header does not say how its pixels are stored)"
    pixels = f"{channels} channel{'s' if channels != 1 else ''} of {bits}-bit {_SAMPLE_KINDS.get(kind, f'sample format {kind}')} values"
    return f"a TIFF this reader cannot decode ({pixels}); save it with 8- or 16-bit integer values, or as one channel of 32-bit float"


def _first(value):
    """A TIFF tag's first value: BitsPerSample and SampleFormat hold one per channel."""
    return value[0] if isinstance(value, tuple) else value


def stored_pixels(path: Path) -> int | None:
    """Width x height from a regular file's header, nothing decoded; None when no decoder recognises
    it. A FIFO, device or socket is never opened."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        with Image.open(path) as img:
            return img.width * img.height
    except Exception:  # noqa: BLE001 - unidentified, unreadable, or a format plugin's own bug
        return None


def looks_like_image(path: Path) -> bool:
    """Whether `path` is a regular file whose header a decoder recognises (an oversized one too)."""
    return stored_pixels(path) is not None


def read_image(path: Path, *, size: int, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS, resize: str = "stretch",
               colour_profiles: str = "as_stored") -> np.ndarray:
    """Read and convert one file; raise ImageRejected with a reason for anything unusable."""
    return decode(path, size=size, channels=channels, max_pixels=max_pixels, resize=resize, colour_profiles=colour_profiles)[0]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) uint8, as stored: a quarter of `to_tensor`'s memory, for
    training that converts each batch (`as_float` gives `to_tensor`'s values)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) -> float in [-1, 1], the values `to_tensor` gives; float images pass through."""
    import torch

    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] -> the uint8 values a saved image holds, same layout and device; uint8 passes through."""
    import torch

    return images if images.dtype == torch.uint8 else images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float in [-1, 1], or uint8 -> (N, H, W, C) uint8."""
    return quantize(images).permute(0, 2, 3, 1).numpy()


def save_png(array: np.ndarray, path: Path) -> None:
    """(H, W, C) uint8 -> PNG."""
    img = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, mode="L" if array.shape[2] == 1 else "RGB")
    img.save(path, format="PNG")
