"""A preview never costs a mail: when the distributed mail would be over SES's size limit with its
previews (a text-only mail also gains an HTML copy of its text to show them), it goes without them; only
a mail too large without them is refused. A refused mail's log line still counts what was made and left
out."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app import relay
from app.handler import lambda_handler
from tests.support import images
from tests.support.mails import attachment_links
from tests.support.world import SENDER, World, local_world

LINE = "Température zone 4 élevée, capteur défaillant, relevé horaire\n"  # a sensor's log, 8-bit
LOG_LINES = 4000  # about 260 KB of text, shown twice (text and HTML) when the mail has a preview


def log_mail(jpeg: bytes) -> bytes:
    """A sensor's mail: a long accented log as text/plain (8bit) and one camera JPEG."""
    return images.camera_mail(("cam.jpg", "image/jpeg", jpeg), text=LINE * LOG_LINES)


def relayed_size(raw: bytes, previews: str) -> int:
    """The distributed mail's size with the limit out of the way."""
    with local_world({"InlinePreviews": previews, "RepeatFolding": "off"}) as world:
        world.put_mail("incoming/log.eml", raw)
        lambda_handler(world.event("incoming/log.eml"), None)
        [sent] = world.sent()
        return len(sent.raw)


def mail_line(caplog: pytest.LogCaptureFixture) -> Any:
    [line] = [r for r in caplog.records if r.name == "iot_mail_relay" and hasattr(r, "outcome")]
    return line


def test_a_mail_over_the_limit_with_its_preview_goes_without_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    jpeg = images.camera_jpeg((1280, 720))
    raw = log_mail(jpeg)
    without, with_preview = relayed_size(raw, "off"), relayed_size(raw, "on")
    assert with_preview > 1.8 * without  # the text twice, and the preview
    monkeypatch.setattr(relay, "SES_MAX_MESSAGE_BYTES", (without + with_preview) // 2)
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    caplog.clear()  # the two mails measured above
    with local_world({"RepeatFolding": "off"}) as world:
        world.put_mail("incoming/log.eml", raw)
        assert lambda_handler(world.event("incoming/log.eml"), None) == {"batchItemFailures": []}
        assert world.notices() == []
        [sent] = world.sent()
        assert abs(len(sent.raw) - without) < 200  # the mail as previews off sends it (but its IDs)
        relayed = images.read_relayed(sent.raw)
        assert relayed.message.get_content_type() == "text/plain"  # no preview, so no HTML copy
        text = relayed.message.get_content()
        assert LINE.strip() in text
        [link] = attachment_links(text)
        assert world.download(link) == jpeg
    line = mail_line(caplog)
    assert (line.outcome, line.previews, line.preview_skips) == ("distributed", 0, {"mail_too_large": 1})


def test_a_mail_over_the_limit_without_previews_is_refused_and_its_line_counts_them(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(relay, "SES_MAX_MESSAGE_BYTES", 20_000)
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    world.put_mail("incoming/log.eml", log_mail(images.camera_jpeg((1280, 720))))
    assert lambda_handler(world.event("incoming/log.eml"), None) == {"batchItemFailures": []}
    assert world.sent() == []
    assert [n["reason"] for n in world.notices()] == ["too_large"]
    line = mail_line(caplog)
    assert (line.outcome, line.reason, line.previews, line.preview_skips) == (
        "fallback",
        "too_large",
        0,
        {"mail_too_large": 1},
    )


def test_a_mail_ses_refuses_keeps_its_previews_in_its_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.account.client("sesv2").delete_email_identity(EmailIdentity=SENDER)
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    world.put_mail("incoming/cam.eml", images.camera_mail(("cam.jpg", "image/jpeg", images.camera_jpeg())))
    assert lambda_handler(world.event("incoming/cam.eml"), None) == {"batchItemFailures": []}
    assert [n["reason"] for n in world.notices()] == ["rejected"]
    line = mail_line(caplog)
    assert (line.outcome, line.reason, line.previews, line.preview_skips) == ("fallback", "rejected", 1, {})
