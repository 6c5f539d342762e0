"""app/previews.py: image bytes -> a clean, small JPEG or a reason, for every image a camera or an
attacker sends; and one mail's previews within their count, bytes and time."""

from __future__ import annotations

import io
import itertools
import random
import struct
import warnings
from collections.abc import Callable

import pytest
from PIL import Image

from app import previews
from app.mail.decode import DecodingReader
from app.previews import Preview, Previewer, Skip, Source
from tests.support import images
from tests.support.images import BLUE, RED, close_to


def preview_of(data: bytes) -> Image.Image:
    result = previews.make(data)
    assert isinstance(result, Preview), result
    decoded = images.assert_clean_preview(result.jpeg)
    assert decoded.size == (result.width, result.height)
    return decoded


def corners(image: Image.Image) -> tuple[object, object]:
    """The top-left and bottom-right pixels, a little inside."""
    return image.getpixel((3, 3)), image.getpixel((image.width - 4, image.height - 4))


# ------------------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_every_format_becomes_a_jpeg_at_most_640_px_keeping_the_aspect(fmt: str) -> None:
    data = images.encode(images.halves((1600, 900)), fmt)
    preview = preview_of(data)
    assert preview.size == (640, 360)
    top_left, bottom_right = corners(preview)
    assert close_to(top_left, RED)
    assert close_to(bottom_right, BLUE)


def test_a_small_image_is_never_upscaled() -> None:
    assert preview_of(images.encode(images.halves((200, 120)), "PNG")).size == (200, 120)


def test_a_jpeg_is_decoded_at_a_reduced_scale_and_still_fills_the_preview() -> None:
    data = images.encode(images.scene((3840, 2160)), "JPEG", quality=90)
    with Image.open(io.BytesIO(data)) as original:
        original.draft(None, previews.fit(original.size))
        assert original.size == (960, 540)  # what the decoder produced: a sixteenth of the pixels
    assert preview_of(data).size == (640, 360)


def test_quality_is_about_75_for_an_ordinary_still() -> None:
    data = images.encode(images.scene((1280, 720)), "JPEG", quality=95)
    result = previews.make(data)
    assert isinstance(result, Preview)
    from PIL import JpegImagePlugin

    with Image.open(io.BytesIO(result.jpeg)) as decoded:
        assert isinstance(decoded, JpegImagePlugin.JpegImageFile)
        reference = images.encode(decoded.convert("RGB"), "JPEG", quality=previews.QUALITY)
        with Image.open(io.BytesIO(reference)) as at_75:
            assert isinstance(at_75, JpegImagePlugin.JpegImageFile)
            assert decoded.quantization == at_75.quantization


# ------------------------------------------------------------------------------ orientation, metadata
@pytest.mark.parametrize(("orientation", "top", "bottom"), [(6, RED, BLUE), (8, BLUE, RED)])
def test_exif_orientation_is_applied_and_the_dimensions_swap(
    orientation: int, top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> None:
    preview = preview_of(images.camera_jpeg((1280, 720), orientation))
    assert preview.size == (360, 640)  # stored landscape, shown portrait
    top_left, bottom_right = corners(preview)
    # 6: turned clockwise, the stored left (red) is on top; 8: counter-clockwise, it is at the bottom.
    assert close_to(top_left, top)
    assert close_to(bottom_right, bottom)


def test_a_preview_carries_no_exif_gps_maker_note_icc_xmp_or_comment() -> None:
    data = images.camera_jpeg((1280, 720), 1)
    with Image.open(io.BytesIO(data)) as original:  # the source really carries them all
        exif = original.getexif()
        assert exif.get_ifd(0x8825)[2] == images.GPS_LATITUDE
        assert images.SERIAL.encode() in exif.get_ifd(0x8769)[0x927C]
        assert {"icc_profile", "xmp", "comment"} <= set(original.info)
    preview_of(data)  # assert_clean_preview reads it back: markers, EXIF, info and the bytes themselves


def test_metadata_of_a_png_and_a_tiff_is_left_behind_too() -> None:
    png = images.encode(images.halves((300, 200)), "PNG", exif=images.exif_with_secrets(1),
                        icc_profile=images.srgb_profile(), pnginfo=_text_chunk())  # fmt: skip
    tiff = images.encode(images.halves((300, 200)), "TIFF", exif=images.exif_with_secrets(1))
    assert images.SERIAL.encode() in png
    assert images.OWNER.encode() in tiff  # a TIFF's tags are its EXIF
    preview_of(png)
    preview_of(tiff)


def _text_chunk() -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", images.SERIAL)
    return info


def test_a_broken_exif_block_costs_the_orientation_not_the_preview() -> None:
    data = bytearray(images.camera_jpeg((640, 480), 6))
    start = data.index(b"Exif\x00\x00") + 6
    data[start : start + 8] = b"XX\x00\x2a\xff\xff\xff\xff"  # neither byte order, a wild IFD offset
    assert preview_of(bytes(data)).size == (640, 480)


def test_pillow_s_warnings_about_a_broken_file_stay_out_of_the_log() -> None:
    data = images.camera_jpeg((640, 480), 6)
    start = data.index(b"\xff\xe1")  # APP1, the EXIF segment: cut it to 60 bytes, mid-directory
    (length,) = struct.unpack(">H", data[start + 2 : start + 4])
    cut = (
        data[: start + 2] + struct.pack(">H", 62) + data[start + 4 : start + 64] + data[start + 2 + length :]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns "Truncated File Read" on opening it
        assert isinstance(previews.make(cut), Preview)


# ------------------------------------------------------------------------------ colour and bit depth
def test_progressive_jpeg() -> None:
    data = images.camera_jpeg((1280, 720), progressive=True)
    with Image.open(io.BytesIO(data)) as original:
        assert original.info.get("progressive")
    assert preview_of(data).size == (640, 360)


def test_cmyk_jpeg_becomes_rgb_with_its_colours() -> None:
    data = images.camera_jpeg(image=images.halves((800, 600), "CMYK"))
    with Image.open(io.BytesIO(data)) as original:
        assert original.mode == "CMYK"
    preview = preview_of(data)
    assert preview.mode == "RGB"
    top_left, bottom_right = corners(preview)
    assert close_to(top_left, RED)
    assert close_to(bottom_right, BLUE)


def test_transparency_is_flattened_onto_white() -> None:
    preview = preview_of(images.png_with_alpha((400, 300)))
    top_left, bottom_right = corners(preview)
    assert close_to(top_left, (255, 255, 255), 3)
    assert close_to(bottom_right, BLUE)


def test_a_palette_image_with_a_transparent_colour_is_flattened_onto_white() -> None:
    image = Image.new("P", (300, 200), 1)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.paste(0, (0, 0, 150, 200))
    preview = preview_of(images.encode(image, "GIF", transparency=0))
    top_left, bottom_right = corners(preview)
    assert close_to(top_left, (255, 255, 255), 3)
    assert close_to(bottom_right, BLUE)


def test_16_bit_png_is_stretched_to_eight_bits() -> None:
    data = images.png_16_bit((500, 300))
    with Image.open(io.BytesIO(data)) as original:
        assert original.mode.startswith("I")
        low, high = original.getextrema()  # type: ignore[misc]
        assert low > 255  # cut to 8 bits as it is, it would be one flat white
    preview = preview_of(data)
    assert preview.mode == "L"
    low, high = preview.getextrema()  # type: ignore[misc]
    assert low < 10
    assert high > 245


@pytest.mark.parametrize(
    "image",
    [Image.new("I;16", (400, 200), 3000), Image.new("I", (400, 200), 70000), Image.new("F", (400, 200), 0.5)],
    ids=["16-bit", "32-bit", "float"],
)
def test_a_flat_deep_image_is_mid_grey_not_black(image: Image.Image) -> None:
    preview = preview_of(images.encode(image, "TIFF"))
    assert preview.mode == "L"
    assert preview.getextrema() == (128, 128)


def test_bilevel_tiff() -> None:
    preview = preview_of(images.encode(images.halves((900, 300), "1"), "TIFF", compression="group4"))
    assert preview.size == (640, 213)


# ---------------------------------------------------------------------------------- many frames/pages
def test_an_animated_gif_with_thousands_of_frames_shows_its_first_and_reads_no_further() -> None:
    data = images.animated_gif(3000)
    assert len(data) > 2_000_000
    source = Source(data)
    result = previews.make(source)
    assert isinstance(result, Preview)
    preview = images.assert_clean_preview(result.jpeg)
    assert close_to(preview.getpixel((10, 10)), RED)  # the first frame; all others are blue
    assert source.furthest < 100_000  # one read block past the first frame, not 3000 frames


def test_a_tiff_with_hundreds_of_pages_shows_its_first() -> None:
    preview = preview_of(images.multipage_tiff(300))
    assert close_to(preview.getpixel((10, 10)), RED)


# ------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(images.bomb_png(20000, 20000), Skip.TOO_MANY_PIXELS, id="400-megapixel-png"),
        pytest.param(images.bomb_png(8000, 6000), Skip.TOO_MANY_PIXELS, id="48-megapixel-png"),
        pytest.param(images.jpeg_declaring(20000, 20000), Skip.TOO_MANY_PIXELS, id="jpeg-header-400-mp"),
        # 252 bytes: libwebp would fill two 144 MB canvases and Pillow copy one twice (+550 MB)
        pytest.param(images.webp_canvas((6000, 6000)), Skip.TOO_MANY_PIXELS, id="tiny-webp-6000x6000-canvas"),
        pytest.param(
            images.webp_canvas((4000, 4000), alpha=True), Skip.TOO_MANY_PIXELS, id="tiny-webp-alpha-16-mp"
        ),
        pytest.param(
            images.flat_png((5000, 5000), 8, 6, b"\x80" * 4), Skip.TOO_MANY_PIXELS, id="png-rgba-25-mp"
        ),
        pytest.param(b"Motion detected at 10:15, channel 4\n" * 40, Skip.NOT_AN_IMAGE, id="text-named-jpg"),
        pytest.param(b"", Skip.NOT_AN_IMAGE, id="empty"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", Skip.NOT_AN_IMAGE, id="svg"),
    ],
)
def test_hostile_images_get_a_reason_without_being_decoded(data: bytes, reason: Skip) -> None:
    source = Source(data)
    assert previews.make(source) is reason
    assert source.furthest <= 1024  # the headers only, whatever the file's size


@pytest.mark.parametrize(
    ("data", "size"),
    [
        pytest.param(lambda: images.camera_jpeg((1920, 1080)), (640, 360), id="1080p-jpeg"),
        pytest.param(
            lambda: images.camera_jpeg((3840, 2160), progressive=True), (640, 360), id="4k-progressive"
        ),
        pytest.param(lambda: images.encode(images.halves((3840, 2160)), "WEBP"), (640, 360), id="4k-webp"),
        pytest.param(
            lambda: images.camera_jpeg((4032, 3024), progressive=True), (640, 480), id="12-mp-phone-jpeg"
        ),
        pytest.param(
            lambda: images.encode(images.halves((4032, 3024)), "WEBP", method=0),
            (640, 480),
            id="12-mp-phone-webp",
        ),
    ],
)
def test_real_camera_and_phone_images_fit_the_memory_cap(
    data: Callable[[], bytes], size: tuple[int, int]
) -> None:
    assert preview_of(data()).size == size


def test_the_pixel_cap_is_checked_before_pillow_s_own_and_below_it() -> None:
    assert previews.MAX_PIXELS < Image.MAX_IMAGE_PIXELS
    with Image.open(io.BytesIO(images.bomb_png(8000, 6000))) as image:  # Pillow alone would decode it
        assert image.width * image.height > previews.MAX_PIXELS


def test_a_progressive_jpeg_counts_its_full_size_coefficients_against_the_memory_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = images.camera_jpeg((1280, 720), progressive=True)  # 4:2:0: a sample and a half a pixel
    monkeypatch.setattr(previews, "MAX_DECODE_BYTES", round(1280 * 720 * 1.5 * 2) - 1)  # the buffer alone
    assert previews.make(data) is Skip.TOO_MANY_PIXELS
    baseline = images.camera_jpeg((1280, 720))  # the same size, decoded at a quarter scale: fine
    assert isinstance(previews.make(baseline), Preview)


def test_a_truncated_jpeg_is_unreadable() -> None:
    data = images.encode(images.scene((1280, 720)), "JPEG")
    assert previews.make(data[: len(data) // 2]) is Skip.UNREADABLE


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_truncated_files_of_every_format_are_unreadable(fmt: str) -> None:
    data = images.encode(images.scene((300, 200), noise=40), fmt)
    assert previews.make(data[: len(data) * 2 // 3]) in (Skip.UNREADABLE, Skip.NOT_AN_IMAGE)


def test_flipped_bits_anywhere_never_raise() -> None:
    rng = random.Random(24)
    sources = [images.encode(images.scene((200, 150)), fmt) for fmt in ("JPEG", "PNG", "GIF", "TIFF", "WEBP")]
    for data, _ in itertools.product(sources, range(40)):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        result = previews.make(bytes(damaged))
        if isinstance(result, Preview):
            images.assert_clean_preview(result.jpeg)
        else:
            assert result in Skip


def test_a_deadline_stops_the_decoder() -> None:
    data = images.encode(images.scene((1280, 720)), "PNG")
    assert previews.make(Source(data, deadline=10.0, clock=lambda: 11.0)) is Skip.TOO_SLOW
    assert isinstance(previews.make(Source(data, deadline=10.0, clock=lambda: 9.0)), Preview)


def test_a_progressive_scan_bomb_is_read_in_small_blocks_so_the_deadline_stops_it() -> None:
    bomb = images.progressive_scan_bomb(1000, 40_000)  # every scan walks all 15625 blocks
    reads = itertools.count()
    source = Source(bomb, deadline=60, clock=lambda: float(next(reads)))  # the deadline: the 60th read
    assert previews.make(source) is Skip.TOO_SLOW  # with 64 KB reads it would be decoded, all of it
    assert source.furthest <= 60 * previews.PROGRESSIVE_BLOCK < len(bomb)


def test_noise_steps_down_the_ladder_to_fit_60_kb() -> None:
    noise = Image.frombytes("RGB", (640, 480), random.Random(1).randbytes(640 * 480 * 3))
    result = previews.make(images.encode(noise, "PNG"))
    assert isinstance(result, Preview)
    assert len(result.jpeg) <= previews.MAX_PREVIEW_BYTES
    assert result.width < 640  # at quality 45 it was still too large at full size
    assert previews.make(images.encode(noise, "PNG"), limit=2000) is Skip.PREVIEW_TOO_LARGE


# ------------------------------------------------------------------------------- which attachments
@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("cam4.jpg", "image/jpeg", True),
        ("cam4.JPG", "application/octet-stream", True),
        ("snapshot", "image/png", True),
        ("chart.tiff", "application/octet-stream", True),
        ("chart.svg", "image/svg+xml", False),
        ("photo.heic", "image/heic", False),
        ("report.pdf", "application/pdf", False),
    ],
)
def test_which_attachments_are_worth_trying(filename: str, content_type: str, expected: bool) -> None:
    assert previews.is_image(filename, content_type) is expected


# ---------------------------------------------------------------------------------- one mail's budget
def upload(shots: Previewer, data: bytes, filename: str = "cam.jpg", content_type: str = "image/jpeg") -> tuple[bytes, Preview | None]:  # fmt: skip
    """What the relay does with one attachment: stream it to 'S3' through `watch`, then `preview`."""
    reader = DecodingReader(memoryview(data), "binary")
    watched = shots.watch(reader, filename, content_type)
    uploaded = b"".join(iter(lambda: watched.read(4096), b""))
    return uploaded, shots.preview(watched)


def test_four_previews_per_mail_in_order() -> None:
    shots = Previewer()
    stills = [images.encode(images.halves((320 + n, 240)), "JPEG") for n in range(6)]
    results = [upload(shots, data) for data in stills]
    assert [uploaded for uploaded, _ in results] == stills  # every byte still reaches the upload
    made = [preview for _, preview in results]
    assert [p is not None for p in made] == [True] * 4 + [False] * 2
    assert [p.width for p in made if p] == [320, 321, 322, 323]
    assert shots.made == 4
    assert shots.reasons() == {"too_many": 2}


def test_a_failed_image_does_not_count_against_the_four() -> None:
    shots = Previewer()
    upload(shots, b"not an image")
    for n in range(4):
        assert upload(shots, images.encode(images.halves((100 + n, 80)), "PNG"), "c.png", "image/png")[1]
    assert shots.reasons() == {"not_an_image": 1}


def test_the_mail_s_byte_budget_is_spent_in_order() -> None:
    rng = random.Random(7)
    noisy = [
        images.encode(Image.frombytes("RGB", (300, 300), rng.randbytes(270_000)), "PNG") for _ in range(6)
    ]
    shots = Previewer()
    made = [upload(shots, data, "n.png", "image/png")[1] for data in noisy]
    previewed = [p for p in made if p]
    assert [(p.width, len(p.jpeg) > 50_000) for p in previewed] == [(300, True)] * 2  # full size, q75
    assert sum(len(p.jpeg) for p in previewed) <= previews.MAIL_PREVIEW_BYTES
    assert made[: len(previewed)] == previewed  # the first ones, then the rest skipped in order
    assert shots.reasons() == {"budget_spent": 6 - len(previewed)}


def test_a_file_over_the_source_limit_is_uploaded_whole_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(previews, "MAX_SOURCE_BYTES", 10_000)
    data = images.encode(images.scene((800, 600), noise=30), "PNG")
    assert len(data) > 10_000
    shots = Previewer()
    uploaded, preview = upload(shots, data)
    assert uploaded == data
    assert preview is None
    assert shots.reasons() == {"file_too_large": 1}


def test_the_mail_s_time_is_shared_and_once_spent_the_rest_are_skipped() -> None:
    ticks = itertools.count(step=2.5)  # every look at the clock: 2.5 s later
    shots = Previewer(clock=lambda: float(next(ticks)))
    data = images.encode(images.halves((320, 240)), "PNG")
    results = [upload(shots, data, "c.png", "image/png")[1] for _ in range(3)]
    assert results == [None, None, None]
    assert shots.reasons() == {"too_slow": 3}


def test_previews_withdrawn_from_a_mail_too_large_count_as_skipped() -> None:
    shots = Previewer()
    for n in range(2):
        upload(shots, images.encode(images.halves((100 + n, 80)), "PNG"), "c.png", "image/png")
    upload(shots, b"not an image")
    shots.withdraw()
    assert shots.made == 0
    assert shots.reasons() == {"mail_too_large": 2, "not_an_image": 1}


def test_off_keeps_nothing_and_counts_nothing() -> None:
    shots = Previewer(enabled=False)
    reader = DecodingReader(memoryview(b"x"), "binary")
    assert shots.watch(reader, "cam.jpg", "image/jpeg") is reader
    assert shots.preview(reader) is None
    assert shots.made == 0
    assert shots.reasons() == {}


def test_other_attachments_pass_through_untouched() -> None:
    shots = Previewer()
    reader = DecodingReader(memoryview(b"%PDF-1.7"), "binary")
    assert shots.watch(reader, "report.pdf", "application/pdf") is reader
    assert shots.preview(reader) is None
    assert shots.reasons() == {}
