"""A sandbox started with `--param UrlExpirySeconds=5`: the mail's link works, then answers 410 with
the expiry time once the five seconds are over, as the mail said."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.launch import launch
from tests.support.sandbox import SETTLE_TIMEOUT, mail, outbox

pytestmark = pytest.mark.integration


def test_a_link_expires_when_the_mail_says(tmp_path: Path) -> None:
    with launch(tmp_path, "--param", "UrlExpirySeconds=5", "--batch-window", "0") as running:
        recipient = running.state["smtp"]["recipients"][0]
        body = "Short-lived reading\nEmail_Rxers_Code:[ops@example.com]:Email_Rxers_Code:\n"
        with running.smtp(timeout=30) as client:
            client.send_message(mail("short", body, b"brief bytes", recipient))
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not outbox(tmp_path):
            assert time.monotonic() < deadline, running.output()[-4000:]
            time.sleep(0.1)
        ((link,),) = [m["links"] for m in outbox(tmp_path)]
        expires = int(parse_qs(urlsplit(link).query)["exp"][0])
        with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's endpoint
            assert response.read() == b"brief bytes"
        time.sleep(max(0.0, expires - time.time()) + 0.5)
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(link, timeout=10)  # noqa: S310
        assert gone.value.code == 410
        page = gone.value.read().decode()
        assert datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC") in page
        assert running.state["environment"]["ATTACHMENTS_BUCKET"] not in page
