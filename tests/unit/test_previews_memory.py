"""app/previews.py's memory estimate against the real thing: for every format, the image that needs the
most memory the estimate still allows (its worst mode, sized to just under MAX_DECODE_BYTES) is
previewed in a child process, whose peak resident memory above its baseline must stay within the
estimate and so within the stated budget. A hostile image of any format is refused before decoding
only if the estimate is honest, which this measures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from app import previews
from tests.support import images

ROOT = Path(__file__).resolve().parents[2]
MB = 1000 * 1000
# What making one preview may add to the function's peak, whatever the image: the cap the estimate is
# checked against, plus the interpreter's and Pillow's own small allocations on the way.
SLACK = 16 * MB
BUDGET = previews.MAX_DECODE_BYTES + SLACK

# The child's peak is its own address space's high-water mark, VmHWM: `ru_maxrss` would not do, as
# Linux carries the parent's peak into a child's across fork and exec, and the parent made the images.
CHILD = """
import json, re, sys
from app import previews
from tests.support import images

def peak():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1]) * 1024

previews.make(images.encode(images.halves((900, 600)), sys.argv[2]))  # warm: every lazy import done
data = open(sys.argv[1], "rb").read()
before = peak()
result = previews.make(data)
print(json.dumps({"result": str(getattr(result, "width", result)), "peak": peak() - before}))
"""


def side(bytes_per_pixel: float) -> int:
    """The side of a square image whose estimate is a little under the cap."""
    pixels = min(previews.MAX_DECODE_BYTES * 0.98 / bytes_per_pixel, previews.MAX_PIXELS)
    return math.isqrt(int(pixels))


def square(bytes_per_pixel: float) -> tuple[int, int]:
    return side(bytes_per_pixel), side(bytes_per_pixel)


PALETTE = images.png_chunk(b"PLTE", bytes([*images.RED, *images.BLUE])) + images.png_chunk(b"tRNS", b"\x00")

# The worst image of each format: its format's name, the bytes a pixel the estimate counts for it, and
# the image at a size.
WORST: dict[str, tuple[str, float, Callable[[tuple[int, int]], bytes]]] = {
    # libwebp's two canvases and the frame's copy, from a file of a few hundred bytes
    "webp": ("WEBP", 17, images.webp_canvas),
    # a palette with a transparent colour: the palette image, its RGBA copy and the premultiplied copy
    "png-palette-alpha": ("PNG", 9.5, lambda size: images.flat_png(size, 8, 3, b"\x01", PALETTE)),
    "gif-transparent": (
        "GIF",
        9.5,
        lambda size: images.encode(Image.new("P", size, 1), "GIF", transparency=0),
    ),
    # one strip as tall as the image: libtiff's buffer holds all of it, uncompressed
    "tiff-one-strip-rgba": (
        "TIFF",
        8.5,
        lambda size: images.encode(
            Image.new("RGBA", size, (*images.RED, 128)), "TIFF", compression="tiff_deflate", strip_size=2**31
        ),
    ),
    # expanded to a byte a pixel and copied, then converted to RGB
    "bmp-rle8": ("BMP", 5.3, images.bmp_rle8),
    # libjpeg's coefficients at full size, whatever the draft scale; no chroma subsampling
    "jpeg-progressive-444": (
        "JPEG",
        6.1,
        lambda size: images.encode(
            Image.new("RGB", size, images.RED), "JPEG", progressive=True, subsampling=0
        ),
    ),
}


def test_each_format_s_worst_image_at_the_cap_stays_within_its_estimate_and_the_budget(
    tmp_path: Path,
) -> None:
    cases = {}
    for name, (fmt, per_pixel, make) in WORST.items():
        data = make(square(per_pixel))
        estimate = previews.memory_needed(data)
        assert 0.9 * previews.MAX_DECODE_BYTES < estimate <= previews.MAX_DECODE_BYTES, (name, estimate)
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        cases[name] = (fmt, estimate, path)

    def measure(name: str) -> tuple[str, int]:
        fmt, _, path = cases[name]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), fmt],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        measured = json.loads(done.stdout)
        return str(measured["result"]), int(measured["peak"])

    with ThreadPoolExecutor(2) as pool:  # two children at a time: each one's peak is its own
        results = dict(zip(cases, pool.map(measure, cases), strict=True))
    # name: (preview width or skip reason, measured peak MB, estimate MB), shown when an assertion fails
    report = {name: (result, peak // MB, cases[name][1] // MB) for name, (result, peak) in results.items()}
    for name, (result, peak) in results.items():
        assert result == str(previews.LONG_SIDE), report  # allowed, so previewed: the worst the cap lets by
        assert peak <= cases[name][1] + SLACK, report
        assert peak <= BUDGET, report
