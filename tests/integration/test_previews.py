"""Camera mails through lambda_handler against moto: every image kind the issue names gets a clean
preview or a reason, and in every case the mail is distributed, well-formed, its HTML references exactly
the previews it carries, and every full-size link downloads the original bytes."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import previews
from app.handler import lambda_handler
from tests.support import images
from tests.support.images import BLUE, RED, close_to
from tests.support.mails import attachment_links
from tests.support.world import World, local_world

ROOT = Path(__file__).resolve().parents[2]


def relay(world: World, raw: bytes, key: str = "incoming/camera.eml") -> images.Relayed:
    world.put_mail(key, raw)
    assert lambda_handler(world.event(key), None) == {"batchItemFailures": []}
    [sent] = world.sent()
    assert sent.destinations == ("ops@example.com",)
    assert world.notices() == []
    return images.read_relayed(sent.raw)


def download_links(relayed: images.Relayed) -> list[str]:
    plain = relayed.message.get_body(("plain",))
    assert plain is not None
    return attachment_links(plain.get_content())


def mail_line(caplog: pytest.LogCaptureFixture) -> Any:
    [line] = [r for r in caplog.records if r.name == "iot_mail_relay" and hasattr(r, "outcome")]
    return line


CASES: dict[str, tuple[Callable[[], bytes], str, tuple[int, int] | None, str | None]] = {
    # name: (image, file name, preview size or None, skip reason or None)
    "orientation-6": (lambda: images.camera_jpeg((1280, 720), 6), "cam.jpg", (360, 640), None),
    "orientation-8": (lambda: images.camera_jpeg((1280, 720), 8), "cam.jpg", (360, 640), None),
    "gps-and-maker-note": (lambda: images.camera_jpeg((1920, 1080)), "cam.jpg", (640, 360), None),
    "progressive": (lambda: images.camera_jpeg((1280, 720), progressive=True), "cam.jpg", (640, 360), None),
    "cmyk": (
        lambda: images.camera_jpeg(image=images.halves((800, 600), "CMYK")),
        "print.jpg",
        (640, 480),
        None,
    ),
    "png-alpha": (lambda: images.png_with_alpha((800, 600)), "chart.png", (640, 480), None),
    "png-16-bit": (lambda: images.png_16_bit((500, 300)), "thermal.png", (500, 300), None),
    "animated-gif": (lambda: images.animated_gif(2000), "motion.gif", (64, 48), None),
    "multipage-tiff": (lambda: images.multipage_tiff(300), "scan.tiff", (96, 64), None),
    "webp": (lambda: images.encode(images.halves((1000, 500)), "WEBP"), "cam.webp", (640, 320), None),
    "bmp": (lambda: images.encode(images.halves((640, 480)), "BMP"), "cam.bmp", (640, 480), None),
    "bomb-20000x20000": (lambda: images.bomb_png(20000, 20000), "bomb.png", None, "too_many_pixels"),
    "truncated-jpeg": (lambda: images.camera_jpeg((1280, 720))[:9000], "cut.jpg", None, "unreadable"),
    "text-named-jpg": (lambda: b"Motion detected on channel 4\r\n" * 50, "cam.jpg", None, "not_an_image"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_image_kind_is_relayed_with_a_preview_or_a_reason(
    world: World, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    make, filename, size, reason = CASES[case]
    data = make()
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    relayed = relay(world, images.camera_mail((filename, "image/jpeg", data)))

    [link] = download_links(relayed)
    assert world.download(link) == data  # the full-size file, untouched
    line = mail_line(caplog)
    if size is None:
        assert relayed.previews == {}
        assert relayed.message.get_content_type() == "text/plain"  # no preview, no HTML made for one
        assert (line.previews, line.preview_skips) == (0, {reason: 1})
        return
    [shown] = relayed.previews.values()
    assert shown.size == size
    assert (line.previews, line.preview_skips) == (1, {})
    assert relayed.html is not None
    assert relayed.html.count(f'href="{link.replace("&", "&amp;")}"') == 2  # the picture and the name
    if case.startswith("orientation"):
        top, bottom = (RED, BLUE) if case.endswith("6") else (BLUE, RED)
        assert close_to(shown.getpixel((5, 5)), top)
        assert close_to(shown.getpixel((5, shown.height - 6)), bottom)
    if case in ("animated-gif", "multipage-tiff"):
        assert close_to(shown.getpixel((5, 5)), RED)  # the first frame or page


def test_six_images_make_four_previews_in_order_within_the_budget(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    stills = [images.camera_jpeg((1280 + 16 * n, 720)) for n in range(6)]
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    raw = images.camera_mail(*[(f"cam{n}.jpg", "image/jpeg", data) for n, data in enumerate(stills)])
    relayed = relay(world, raw)

    links = download_links(relayed)
    assert [world.download(link) for link in links] == stills
    assert relayed.html is not None
    cids = re.findall(r'src="cid:([^"]+)"', relayed.html)
    assert len(cids) == previews.MAX_PREVIEWS
    assert [relayed.previews[cid].width for cid in cids] == [640] * 4
    alts = re.findall(r'alt="([^"]+)"', relayed.html)
    assert alts == ["cam0.jpg", "cam1.jpg", "cam2.jpg", "cam3.jpg"]  # the first four, in order
    assert relayed.html.count("<li>") == 6
    line = mail_line(caplog)
    assert (line.previews, line.preview_skips) == (4, {"too_many": 2})


def test_noisy_night_shots_stop_at_the_mail_s_byte_budget(world: World) -> None:
    noisy = [images.encode(images.scene((1280, 960), noise=90), "JPEG", quality=95) for _ in range(4)]
    relayed = relay(
        world, images.camera_mail(*[(f"night{n}.jpg", "image/jpeg", d) for n, d in enumerate(noisy)])
    )
    sizes = [
        len(part.get_content()) for part in relayed.message.walk() if part.get_content_maintype() == "image"
    ]
    assert 1 <= len(sizes) < 4
    assert sum(sizes) <= previews.MAIL_PREVIEW_BYTES  # read_relayed checks it too
    assert [world.download(link) for link in download_links(relayed)] == noisy


def test_an_html_mail_from_an_nvr_keeps_its_markup_and_gains_the_preview(world: World) -> None:
    still = images.camera_jpeg((1920, 1080))
    raw = images.camera_mail(
        ("cam.jpg", "image/jpeg", still), html="<html><body><h1>Motion</h1></body></html>"
    )
    relayed = relay(world, raw)
    assert [p.get_content_type() for p in relayed.message.iter_parts()] == ["text/plain", "multipart/related"]
    assert relayed.html is not None
    assert relayed.html.startswith("<html><body><h1>Motion</h1><div><p>Mute this alarm")  # the first's
    assert "</p></div><hr><p>Attachments" in relayed.html
    assert len(relayed.previews) == 1


def test_previews_off_relays_links_only(caplog: pytest.LogCaptureFixture) -> None:
    still = images.camera_jpeg((1280, 720))
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    with local_world({"InlinePreviews": "off"}) as world:
        relayed = relay(world, images.camera_mail(("cam.jpg", "image/jpeg", still)))
        assert relayed.message.get_content_type() == "text/plain"
        [link] = download_links(relayed)
        assert world.download(link) == still
    line = mail_line(caplog)
    assert (line.previews, line.preview_skips) == (0, {})


def test_an_octet_stream_named_jpg_gets_its_preview_and_a_png_named_jpg_too(world: World) -> None:
    png = images.encode(images.halves((800, 400)), "PNG")
    relayed = relay(world, images.camera_mail(("snapshot.jpg", "application/octet-stream", png)))
    [shown] = relayed.previews.values()
    assert shown.size == (640, 320)


COLD = """
import sys
from tests.support.world import local_world
from app.handler import lambda_handler
from tests.support.images import camera_mail, encode, halves

text_only = camera_mail()
with_image = camera_mail(("cam.jpg", "image/jpeg", encode(halves((64, 48)), "JPEG")))
sys.modules.pop("PIL", None)  # the test's own images were made with it: forget that import
for name in [name for name in sys.modules if name.startswith("PIL.")]:
    del sys.modules[name]
with local_world({"RepeatFolding": "off"}) as world:  # the same camera twice: not folded here
    world.put_mail("incoming/text.eml", text_only)
    world.put_mail("incoming/image.eml", with_image)
    lambda_handler(world.event("incoming/text.eml"), None)
    print("after text-only:", any(name == "PIL" or name.startswith("PIL.") for name in sys.modules))
    lambda_handler(world.event("incoming/image.eml"), None)
    print("after image:", "PIL" in sys.modules, len(world.sent()))
"""


def test_a_text_only_mail_never_imports_pillow() -> None:
    done = subprocess.run(
        [sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "after text-only: False" in done.stdout
    assert "after image: True 2" in done.stdout  # the same process does import it for an image


def test_the_function_s_modules_import_without_pillow() -> None:
    probe = "import sys, app.handler, app.relay, app.mail.rewrite, app.previews; print('PIL' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_image_loads_only_the_plugins_of_the_formats_it_may_be() -> None:
    probe = (
        "import sys\nfrom app import previews\n_ = previews.make(b'not an image at all')\n"
        "print(' '.join(sorted(n for n in sys.modules if n.endswith('ImagePlugin'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    expected = {f"PIL.{name}ImagePlugin" for name in ("Jpeg", "Png", "Gif", "WebP", "Bmp", "Tiff")}
    assert expected <= loaded
    assert loaded - expected <= {"PIL.PpmImagePlugin"}  # Image.open's preinit; not Pillow's forty others
