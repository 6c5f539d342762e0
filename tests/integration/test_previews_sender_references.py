"""An NVR's HTML that shows its snapshot by `cid:` five ways (an <img> whose alt holds a '>', a table
cell's background, a CSS url(), a <picture> srcset, a link): with a preview, every reference shows the
preview; without (previews off), none makes a client load the full-size file by itself, and the link
to it is only where a recipient clicks."""

from __future__ import annotations

import html
import re

import pytest

from app.handler import lambda_handler
from tests.support import fixture_mail, images
from tests.support.world import local_world

NAME = "html-cid-references-in-background-css-and-srcset.eml"


def snapshot() -> bytes:
    [part] = [p for p in images.parsed(fixture_mail(NAME)).walk() if p.get_content_type() == "image/jpeg"]
    data = part.get_content()
    assert isinstance(data, bytes)
    return data


@pytest.mark.parametrize("setting", ["on", "off"])
def test_the_sender_s_references_show_the_preview_or_only_link_the_file(setting: str) -> None:
    with local_world({"InlinePreviews": setting}) as world:
        world.put_mail("incoming/nvr.eml", fixture_mail(NAME))
        assert lambda_handler(world.event("incoming/nvr.eml"), None) == {"batchItemFailures": []}
        [sent] = world.sent()
        relayed = images.read_relayed(sent.raw)  # nothing remote in src, srcset, background, url()
        assert relayed.html is not None
        sender_part, attachments = relayed.html.split("<hr>")
        [url] = set(re.findall(r'<a href="([^"]+)">snap1\.jpg</a>', attachments))
        assert world.download(html.unescape(url)) == snapshot()
        assert "cid:snap1@nvr-4" not in sender_part
        if setting == "on":
            [cid] = relayed.previews
            assert sender_part.count(f"cid:{cid}") == 6  # img, background, url(), srcset, img, a href
            assert url not in sender_part
        else:
            assert relayed.previews == {}
            assert sender_part.count(url) == 3  # the two <img> as links, and the sender's own link
            assert sender_part.count(f'href="{url}"') == 3
            for emptied in ('background=""', "url()", 'srcset=" 1x"'):
                assert emptied in sender_part
