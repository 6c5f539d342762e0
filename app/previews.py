"""Image attachment -> a small JPEG preview for the distributed mail, or the reason there is none.

A guard on a phone should see at a glance whether the alarm is a person or a cat; the full-size file stays
behind its expiring, revocable link. A preview is at most 640 px on its long side (never upscaled), JPEG
at quality 75 (lower, then smaller, only when that is what fits), at most 60 KB, 150 KB and four per mail,
in the order the attachments came. It carries pixels only: the EXIF orientation is applied, then every
byte of metadata is left behind (cameras write GPS positions, serial numbers and maker notes; ICC
profiles, XMP and comments go too), and transparency is flattened onto white.

Hostile input never costs the mail, only its preview: the formats are restricted to JPEG, PNG, GIF
(first frame), WebP, BMP and TIFF (first page) and Pillow sniffs them itself, whatever the name says;
the declared size is checked against MAX_PIXELS before a single pixel is decoded, and the memory making
the preview will hold (per format and mode: libwebp's canvases, libtiff's strip, Pillow's copies)
against MAX_DECODE_BYTES; JPEGs are decoded at the smallest DCT scale that still covers the preview
(`draft`), so a 4K snapshot costs a sixteenth of its pixels; and the decoder reads through `Source`,
which stops it when the mail's time for previews is spent. Every failure becomes a `Skip` reason for the
mail's log line, never exception text.

Pillow is imported on the first image only: a text-only alarm's cold start does not pay for it.
"""

from __future__ import annotations

import io
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, TYPE_CHECKING, cast

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFile import ImageFile

log = logging.getLogger("iot_mail_relay")

MAX_PREVIEWS = 4  # per mail
LONG_SIDE = 640  # pixels, the preview's longer side at most
QUALITY = 75
MAX_PREVIEW_BYTES = 60 * 1024  # one preview
MAIL_PREVIEW_BYTES = 150 * 1024  # a mail's previews together
MAX_PIXELS = 40_000_000  # declared width x height; Pillow's own bomb limit is 89 MP (error at 179 MP)
MAX_DECODE_BYTES = 210 * 1000 * 1000  # what a preview may hold (`_decode_bytes`); a 12 MP WebP: 201 MB
MAX_SOURCE_BYTES = 20 * 1024 * 1024  # the file the relay keeps in memory to decode (a 40 MP JPEG fits)
PROGRESSIVE_BLOCK = 4096  # bytes of a progressive JPEG handed to libjpeg per read (Pillow: 64 KB)
MAIL_SECONDS = 6.0  # decoding time for a mail's previews together (a 40 MP PNG on 512 MB Lambda: ~4 s)

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/pjpeg", "image/jpg", "image/png", "image/gif", "image/webp", "image/bmp",
     "image/x-bmp", "image/x-ms-bmp", "image/tiff"}
)  # fmt: skip
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
# The encodings tried in turn until one fits the byte limit: (share of the long side, JPEG quality).
LADDER = ((1.0, QUALITY), (1.0, 60), (1.0, 45), (0.75, 45), (0.5, 45))


class Skip(StrEnum):
    """Why an image attachment got no preview; the mail's log line counts them."""

    NOT_AN_IMAGE = "not_an_image"  # none of FORMATS (a text named .jpg, SVG, HEIC, ...)
    TOO_MANY_PIXELS = "too_many_pixels"  # declared size over MAX_PIXELS, or decoding over MAX_DECODE_BYTES
    FILE_TOO_LARGE = "file_too_large"  # more than MAX_SOURCE_BYTES
    UNREADABLE = "unreadable"  # truncated or corrupt data, or a mode Pillow cannot convert
    TOO_SLOW = "too_slow"  # the mail's MAIL_SECONDS were spent
    PREVIEW_TOO_LARGE = "preview_too_large"  # even the last step of LADDER is over MAX_PREVIEW_BYTES
    BUDGET_SPENT = "budget_spent"  # the mail's MAIL_PREVIEW_BYTES are spent
    TOO_MANY = "too_many"  # the mail already has MAX_PREVIEWS
    MAIL_TOO_LARGE = "mail_too_large"  # made, then left out: the mail was over SES's limit with it


@dataclass(frozen=True)
class Preview:
    """A baseline JPEG of pixels only (no EXIF, ICC, XMP or comment), ready to be an inline part."""

    jpeg: bytes
    width: int
    height: int


def is_image(filename: str, content_type: str) -> bool:
    """Worth trying: an image type, or an image name on a generic type (cameras send both)."""
    return content_type.lower() in IMAGE_TYPES or os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS


class _OutOfTime(Exception):
    """Raised through Pillow's decoder by `Source` when the deadline has passed."""


class Source(io.RawIOBase):
    """The image bytes as a seekable file for Pillow, read without copying them, that refuses to be read
    after `deadline` (time.monotonic): Pillow decodes a file a block at a time, so a pathological one
    stops within a block of the deadline. `furthest` is how far into the file the decoder got."""

    def __init__(
        self,
        data: bytes | bytearray,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = memoryview(data)
        self._position = 0
        self._deadline = deadline
        self._clock = clock
        self.furthest = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return len(self._view)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        if self._deadline is not None and self._clock() > self._deadline:
            raise _OutOfTime
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        data = self._view[self._position : end].tobytes() if end > self._position else b""
        self._position = max(self._position, end)
        self.furthest = max(self.furthest, self._position)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


def make(data: bytes | bytearray | Source, limit: int = MAX_PREVIEW_BYTES) -> Preview | Skip:
    """The preview of one image, at most `limit` bytes, or why there is none. Never raises."""
    source = data if isinstance(data, Source) else Source(data)
    from PIL import Image, UnidentifiedImageError

    _register_formats()
    try:
        with warnings.catch_warnings():
            # Pillow warns about corrupt EXIF, truncated reads and more than 89 MP (MAX_PIXELS decides
            # before that): a hostile file must not write to the function's log; its reason says enough.
            warnings.simplefilter("ignore")
            with Image.open(cast("IO[bytes]", source), formats=FORMATS) as image:
                return _preview(image, limit, source.size)
    except UnidentifiedImageError:
        return Skip.NOT_AN_IMAGE
    except Image.DecompressionBombError:
        return Skip.TOO_MANY_PIXELS
    except _OutOfTime:
        return Skip.TOO_SLOW
    except Exception as e:  # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        log.debug("no preview: the image is unreadable (%s)", type(e).__name__)
        return Skip.UNREADABLE


def _register_formats() -> None:
    """Import exactly the plugins of FORMATS, so `Image.open` never loads Pillow's forty others."""
    from PIL import (  # noqa: F401 - imported to register them
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )


def fit(size: tuple[int, int], long_side: int = LONG_SIDE) -> tuple[int, int]:
    """`size` scaled down so its longer side is at most `long_side`, keeping the aspect; never up."""
    width, height = size
    scale = min(1.0, long_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def memory_needed(data: bytes | bytearray) -> int:
    """The memory `make` counts on for `data` (checked against MAX_DECODE_BYTES before decoding);
    the tests hold it against measured peaks. Raises what `Image.open` raises for a non-image."""
    from PIL import Image

    _register_formats()
    source = Source(data)
    with Image.open(cast("IO[bytes]", source), formats=FORMATS) as image:
        declared = image.width * image.height
        _prepare(image)
        return _decode_bytes(image, declared, source.size)


def _prepare(image: ImageFile) -> None:
    if image.format in ("JPEG", "MPO"):  # MPO: the JPEG plugin's name for a camera's multi-picture file
        image.draft(None, fit(image.size))  # decode at the smallest DCT scale that covers the preview
        if image.info.get("progressive"):
            # Each scan of a progressive JPEG walks every block, and a crafted one packs a scan into a
            # few bytes: hand libjpeg small reads, so the deadline is checked every few hundred scans.
            image.decodermaxblock = PROGRESSIVE_BLOCK


def _preview(image: ImageFile, limit: int, file_bytes: int) -> Preview | Skip:
    width, height = image.size
    if width * height > MAX_PIXELS:
        return Skip.TOO_MANY_PIXELS
    _prepare(image)
    if _decode_bytes(image, width * height, file_bytes) > MAX_DECODE_BYTES:
        return Skip.TOO_MANY_PIXELS
    image.load()
    orientation = _orientation(image)  # after load: PNG keeps its eXIf chunk after the pixels
    working = _resamplable(image)
    working.thumbnail((LONG_SIDE, LONG_SIDE))
    working = _flattened(_upright(working, orientation))
    return _encode(working, limit) or Skip.PREVIEW_TOO_LARGE


def _decode_bytes(image: ImageFile, declared_pixels: int, file_bytes: int) -> int:
    """The most memory making the preview will hold at once, counted before a pixel is decoded: the
    (drafted) image as Pillow stores it, plus what the format's decoder keeps until the image is closed
    (`_kept_by_decoder`), plus the larger of what the decoder holds only while it decodes
    (`_decoding`) and what resizing holds afterwards (`_resizing`). Checked against measured peaks
    for every format and worst mode by tests/unit/test_previews_memory.py."""
    held = image.width * image.height * _pixel_bytes(image.mode)
    after = _resizing(image)
    return (
        held + _kept_by_decoder(image, file_bytes) + max(_decoding(image, declared_pixels, file_bytes), after)
    )


def _pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores a pixel of `mode` in: one for 1, L and P, two for 16-bit, else four (RGB
    and LA are padded to four, libImaging/Storage.c)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _kept_by_decoder(image: ImageFile, file_bytes: int) -> int:
    """Pillow opens every WebP through libwebp's animation decoder, which keeps the file and two RGBA
    canvases of the full size (the frame and the previous one, disposed) until the image is closed,
    and hands the frame over as a copy: three times four bytes a pixel, however small the file."""
    if image.format == "WEBP":
        return file_bytes + 3 * 4 * image.width * image.height
    return 0


def _decoding(image: ImageFile, declared_pixels: int, file_bytes: int) -> int:
    """What a decoder holds beside the image only while it decodes.

    - a progressive JPEG: libjpeg's coefficient buffer at full size, two bytes a sample of every
      component (the draft scale does not shrink it; chroma subsampling does);
    - a compressed TIFF: a copy of the file, and libtiff's buffer for one strip or tile, uncompressed
      (a hostile file declares a single strip as tall as the image);
    - an RLE-compressed BMP: Pillow expands it to a byte a pixel in a bytearray, then copies that.
    """
    codec = image.tile[0][0] if image.tile else ""
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        return round(declared_pixels * _jpeg_samples(image) * 2)
    if image.format == "TIFF" and codec == "libtiff":
        return file_bytes + _tiff_buffer(image)
    if image.format == "BMP" and codec == "bmp_rle":
        return 2 * image.width * image.height
    return 0


def _resizing(image: Image) -> int:
    """After decoding: the copy `_resamplable` makes of palette, bilevel and 16-bit images, the
    premultiplied copy `thumbnail` makes of an image with alpha (RGBa, La), and the integer reduction
    it resizes from (Pillow's `reducing_gap` of 2)."""
    pixels = image.width * image.height
    mode = _resamplable_mode(image)
    held = pixels * _pixel_bytes(mode) if mode != image.mode else 0
    if max(image.size) <= LONG_SIDE:
        return held
    if mode in ("RGBA", "LA"):
        held += pixels * 4
    width, height = image.size
    target_width, target_height = fit(image.size)
    x_factor, y_factor = max(1, width // target_width // 2), max(1, height // target_height // 2)
    if x_factor > 1 or y_factor > 1:
        held += -(-width // x_factor) * -(-height // y_factor) * _pixel_bytes(mode)
    return held


def _jpeg_samples(image: ImageFile) -> float:
    """Samples a pixel of a JPEG: one per component at full resolution, less for subsampled chroma
    (4:2:0: one and a half), from the frame header's sampling factors (the JPEG plugin's `layer`)."""
    layers: list[tuple[object, int, int, object]] = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(
        image.getbands()
    )
    horizontal, vertical = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    return sum(layer[1] * layer[2] for layer in layers) / max(1, horizontal * vertical)


def _tiff_buffer(image: ImageFile) -> int:
    """libtiff's buffer for one strip or tile of the first page, from its tags (the TIFF plugin's
    `tag_v2`): width x rows x the larger of a sample set's bytes and four (the RGBA path)."""
    tags = getattr(image, "tag_v2", {})
    samples = _tag_int(tags.get(277), 1)  # SamplesPerPixel
    bits = _tag_int(tags.get(258), 8)  # BitsPerSample (one value per sample; the largest counts)
    if 322 in tags:  # TileWidth, TileLength
        width, rows = _tag_int(tags.get(322), image.width), _tag_int(tags.get(323), image.height)
    else:
        width, rows = image.width, min(_tag_int(tags.get(278), image.height), image.height)  # RowsPerStrip
    return width * rows * max(4, samples * ((bits + 7) // 8))


def _tag_int(value: object, default: int) -> int:
    if isinstance(value, tuple):
        value = max((v for v in value if isinstance(v, int)), default=default)
    return value if isinstance(value, int) and value > 0 else default


def _orientation(image: Image) -> int:
    """The EXIF orientation (1-8); 1 when there is none or the EXIF block is broken (the picture is
    still worth showing: upright is the likeliest)."""
    try:
        value = image.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
    except Exception:  # a broken EXIF block raises whatever its parser meets
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _resamplable(image: Image) -> Image:
    """The image in a mode Pillow resamples well: palettes and bilevel would be resized by nearest
    neighbour (lines of a chart vanish), 16-bit by clipping."""
    mode = _resamplable_mode(image)
    return image if mode == image.mode else image.convert(mode)


def _resamplable_mode(image: Image) -> str:
    mode = image.mode
    if mode in ("P", "PA", "1", "L", "RGB") and "transparency" in image.info:
        return "LA" if mode in ("1", "L") else "RGBA"
    if mode in ("P", "PA"):
        return "RGBA" if mode == "PA" else "RGB"
    if mode == "1":
        return "L"
    if mode.startswith("I;16"):
        return "I"
    return mode


# The transposition that undoes each EXIF orientation (EXIF 2.32, tag 0x0112).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
            7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def _upright(image: Image, orientation: int) -> Image:
    from PIL import Image as PilImage

    method = _UPRIGHT.get(orientation)
    return image.transpose(PilImage.Transpose[method]) if method else image


def _flattened(image: Image) -> Image:
    """RGB or L, whatever came in: transparency onto white, 16/32-bit and float stretched to 8 bits."""
    from PIL import Image as PilImage

    if image.mode in ("I", "F"):  # 16-bit (thermal cameras) and float: stretch what is there to 0-255
        low, high = cast("tuple[float, float]", image.getextrema())  # one band: (min, max)
        if high == low:  # one level, nothing to stretch: mid-grey, not the black of 0 / 0
            return PilImage.new("L", image.size, 128)
        factor = 255.0 / (high - low)
        return image.point(lambda value: value * factor - low * factor).convert("L")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        white = PilImage.new("RGBA", rgba.size, "white")
        return PilImage.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def _encode(image: Image, limit: int) -> Preview | None:
    """The first encoding on LADDER within `limit` bytes, from a fresh image that holds no metadata."""
    from PIL import Image as PilImage

    clean = image
    for share, quality in LADDER:
        size = fit(image.size, round(max(image.size) * share))
        if clean is image or size != clean.size:
            pixels = image if size == image.size else image.resize(size, PilImage.Resampling.BICUBIC)
            clean = PilImage.frombytes(pixels.mode, pixels.size, pixels.tobytes())  # pixels, nothing else
        out = io.BytesIO()
        clean.save(out, "JPEG", quality=quality)
        if out.tell() <= limit:
            return Preview(out.getvalue(), *clean.size)
    return None


class _Keeping(io.RawIOBase):
    """Passes an attachment's decoded bytes through to the upload and keeps a copy, up to a limit."""

    def __init__(self, reader: io.RawIOBase, limit: int) -> None:
        self.reader = reader
        self._limit = limit
        self._kept: bytearray | None = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.reader.read(-1 if size is None else size)
        if data and self._kept is not None:
            if len(self._kept) + len(data) > self._limit:
                self._kept = None  # too large to preview: stop holding it at once
            else:
                self._kept += data
        return data or b""

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    @property
    def kept(self) -> bytearray | None:
        return self._kept


class Previewer:
    """One mail's previews: which attachments get one, in order, within MAX_PREVIEWS, the byte budget
    and MAIL_SECONDS; counts what it made and why it skipped the rest.

    The relay hands each attachment's reader to `watch` before uploading it (an image's bytes are then
    kept as they stream past, never read twice) and the same reader to `preview` afterwards.
    """

    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.made = 0
        self.skipped: Counter[Skip] = Counter()
        self._clock = clock
        self._bytes = 0
        self._seconds = 0.0
        self._spent: Skip | None = None  # once the bytes or the time are spent, the rest are skipped

    def watch(self, reader: io.RawIOBase, filename: str, content_type: str) -> io.RawIOBase:
        """The reader to upload from: one that keeps a copy when this attachment may get a preview."""
        if not self.enabled or not is_image(filename, content_type):
            return reader
        refusal = self._refusal()
        if refusal is not None:
            self.skipped[refusal] += 1
            return reader
        return _Keeping(reader, MAX_SOURCE_BYTES)

    def preview(self, reader: io.RawIOBase) -> Preview | None:
        """After the upload: the preview of what `watch` kept, if it kept anything."""
        if not isinstance(reader, _Keeping):
            return None
        data = reader.kept
        if data is None:
            self.skipped[Skip.FILE_TOO_LARGE] += 1
            return None
        started = self._clock()
        result = make(Source(data, started + MAIL_SECONDS - self._seconds, self._clock))
        self._seconds += self._clock() - started
        if isinstance(result, Preview) and self._bytes + len(result.jpeg) > MAIL_PREVIEW_BYTES:
            result = Skip.BUDGET_SPENT  # not squeezed into what is left: every preview looks the same
        if result in (Skip.BUDGET_SPENT, Skip.TOO_SLOW):
            self._spent = result
        if isinstance(result, Skip):
            self.skipped[result] += 1
            return None
        self.made += 1
        self._bytes += len(result.jpeg)
        return result

    def _refusal(self) -> Skip | None:
        if self.made >= MAX_PREVIEWS:
            return Skip.TOO_MANY
        if self._spent is not None:
            return self._spent
        if self._seconds >= MAIL_SECONDS:
            return Skip.TOO_SLOW
        return None

    def withdraw(self) -> None:
        """The mail goes without the previews made (it would be too large with them): each counts as
        skipped, for the log line."""
        self.skipped[Skip.MAIL_TOO_LARGE] += self.made
        self.made = 0

    def reasons(self) -> dict[str, int]:
        """Skip reason -> count, for the mail's log line."""
        return {str(reason): count for reason, count in sorted(self.skipped.items())}
