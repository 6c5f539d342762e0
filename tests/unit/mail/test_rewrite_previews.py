"""app/mail/rewrite.py places previews: inline parts of a multipart/related beside the HTML, each shown
with its attachment's link; the text part never changes; HTML made for a text-only mail only to show one."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.mail.parse import Mail, TextBody
from app.mail.rewrite import HTML_LIMIT, Link, build
from app.mail.ses_block import SesReport
from app.previews import Preview, make
from tests.support import images

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=1)


def url(n: int) -> str:
    return f"https://dl.example.com/d/{n}/cam.jpg?exp=1&kid=k&sig=s{n}"


def preview(size: tuple[int, int] = (320, 240)) -> Preview:
    made = make(images.encode(images.halves(size), "JPEG"))
    assert isinstance(made, Preview)
    return made


def mail(*bodies: TextBody) -> Mail:
    return Mail(
        message_id="<m1@plant.example.com>",
        sender="nvr@plant.example.com",
        from_header="NVR <nvr@plant.example.com>",
        subject="Motion",
        ses=SesReport(spam_verdict="PASS", virus_verdict="PASS"),
        bodies=bodies,
        attachments=(),
    )


def link(n: int, name: str = "cam.jpg", shown: Preview | None = None, content_id: str | None = None) -> Link:
    return Link(name, 123_456, "image/jpeg", content_id, url(n), shown)


def relayed(message: Mail, links: list[Link]) -> images.Relayed:
    return images.read_relayed(build(message, links, EXPIRES, "relay@example.com", NOW))


TEXT = TextBody("plain", "Motion on channel 4 <gate> & yard\nsecond line")


def test_a_text_only_mail_gets_html_only_to_show_its_preview() -> None:
    shot = preview()
    result = relayed(mail(TEXT), [link(1, shown=shot)])
    assert result.message.get_content_type() == "multipart/alternative"
    plain, related = result.message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert result.html is not None
    assert "Motion on channel 4 &lt;gate&gt; &amp; yard\r\nsecond line" in result.html  # escaped, as it reads
    assert result.html.index("second line") < result.html.index("<img")  # the previews after the text
    [(cid, decoded)] = result.previews.items()
    assert decoded.size == (shot.width, shot.height)
    assert f'<a href="{html.escape(url(1))}"><img src="cid:{cid}" alt="cam.jpg" width="320" height="240"' in (
        result.html
    )


def test_the_text_part_is_the_same_with_or_without_previews() -> None:
    without = relayed(mail(TEXT), [link(1), link(2, "b.png")])
    with_previews = relayed(mail(TEXT), [link(1, shown=preview()), link(2, "b.png", preview())])
    assert without.message.get_content_type() == "text/plain"  # no preview, no HTML made
    plain = with_previews.message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content() == without.message.get_content()


def test_an_html_only_mail_becomes_related_with_its_preview() -> None:
    markup = TextBody("html", "<html><body><p>Motion</p></body></html>")
    result = relayed(mail(markup), [link(1, shown=preview())])
    assert result.message.get_content_type() == "multipart/related"
    assert result.html is not None
    assert result.html.index("<img") < result.html.index("</body>")
    assert len(result.previews) == 1


def test_an_alternative_mail_keeps_its_text_and_gets_related_html() -> None:
    markup = TextBody("html", "<p>Motion</p>")
    result = relayed(mail(TEXT, markup), [link(1, shown=preview()), link(2, "log.txt")])
    assert [p.get_content_type() for p in result.message.iter_parts()] == ["text/plain", "multipart/related"]
    assert result.html is not None
    assert result.html.startswith("<p>Motion</p>")
    assert result.html.count("<li>") == 2
    assert result.html.count("<img") == 1


def test_each_preview_sits_in_its_own_link_s_item_in_order() -> None:
    shots = [preview((300 + n, 200)) for n in range(3)]
    links = [link(n, f"cam{n}.jpg", shot) for n, shot in enumerate(shots)]
    result = relayed(mail(TEXT), [*links[:2], link(9, "log.txt"), links[2]])
    assert result.html is not None
    items = re.findall(r"<li>.*?</li>", result.html)
    assert len(items) == 4
    for item, number, width in zip([items[0], items[1], items[3]], [0, 1, 2], [300, 301, 302], strict=True):
        assert item.count(html.escape(url(number))) == 2  # the picture and the name link to the same file
        assert f'alt="cam{number}.jpg" width="{width}" height="200"' in item
    assert "<img" not in items[2]
    cids = re.findall(r'src="cid:([^"]+)"', result.html)
    assert len(set(cids)) == 3
    assert [result.previews[cid].width for cid in cids] == [300, 301, 302]


def test_a_hostile_file_name_is_escaped_in_the_alt_text() -> None:
    name = '"><script>alert(1)</script>.jpg'
    result = relayed(mail(TEXT), [link(1, name, preview())])
    assert result.html is not None
    assert "<script>" not in result.html
    assert f'alt="{html.escape(name, quote=True)}"' in result.html


def test_the_sender_s_own_inline_image_shows_its_preview_instead_of_a_remote_link() -> None:
    markup = TextBody("html", '<p>Gate</p><img src="cid:snap1@nvr"><p>end</p>')
    result = relayed(mail(markup), [link(1, shown=preview(), content_id="snap1@nvr")])
    assert result.html is not None
    assert "cid:snap1@nvr" not in result.html
    [cid] = result.previews
    assert result.html.startswith(f'<p>Gate</p><img src="cid:{cid}">')


def test_without_a_preview_the_sender_s_inline_image_becomes_a_link_not_a_remote_image() -> None:
    markup = TextBody(
        "html", '<p>Gate</p><IMG alt="x" SRC="cid:snap1@nvr" width=10><p>see <a href="cid:snap1@nvr">it</a>'
    )
    result = relayed(mail(markup), [link(1, "snap.jpg", content_id="snap1@nvr")])
    assert result.html is not None
    anchor = f'<a href="{html.escape(url(1))}">snap.jpg</a>'
    assert result.html.startswith(f'<p>Gate</p>{anchor}<p>see <a href="{html.escape(url(1))}">it</a>')
    assert "<IMG" not in result.html
    assert result.previews == {}  # read_relayed: no remote <img> anywhere


# The sender's references to its inline image that a client would load by itself: with no preview to
# point them at, none may carry the file's link (read_relayed checks src, srcset, background, url()).
SELF_LOADING = {
    "quoted-gt-in-img": ('<img alt="gate > yard" src="cid:snap1">', "{anchor}"),
    "td-background": ('<table><tr><td background="cid:snap1">x</td></tr></table>', '<td background="">'),
    "css-url": ('<div style="background-image:url(cid:snap1)">x</div>', "url()"),
    "source-srcset": (
        '<picture><source srcset="cid:snap1"><img src="x.png"></picture>',
        '<source srcset="">',
    ),
    "img-srcset": ('<img srcset="cid:snap1 1x" alt="a">', "{anchor}"),
    "link-href": ('<link rel="stylesheet" href="cid:snap1">', '<link rel="stylesheet" href="">'),
    "css-url-in-an-anchor": (
        """<a title="a > b" href=CID:snap1 style="background:url('cid:snap1')">see</a>""",
        """<a title="a > b" href={url} style="background:url('')">see</a>""",
    ),
    "lt-in-a-quoted-value": ('<img alt="a<b" src="cid:snap1">', '<img alt="a<b" src="">'),
}


@pytest.mark.parametrize("case", list(SELF_LOADING))
def test_without_a_preview_only_an_href_carries_the_file_s_link(case: str) -> None:
    markup, expected = SELF_LOADING[case]
    escaped = html.escape(url(1))
    result = relayed(mail(TextBody("html", markup)), [link(1, "snap.jpg", content_id="snap1")])
    assert result.html is not None
    document = result.html.split("<hr>")[0]  # the sender's part, before the list of attachments
    assert expected.format(anchor=f'<a href="{escaped}">snap.jpg</a>', url=escaped) in document
    assert "cid:snap1" not in document.lower()
    assert document.count(escaped) == document.count(f"href={escaped}") + document.count(f'href="{escaped}"')


def test_an_unclosed_tag_or_quote_ends_at_the_next_tag() -> None:
    # '<' ends a tag's attributes: matching stays linear on hostile markup, and what follows is intact
    markup = '<img "' * 3 + "<img src='cid:snap1' " + '<a href="cid:snap1">x</a>'
    result = relayed(mail(TextBody("html", markup)), [link(1, "snap.jpg", content_id="snap1")])
    assert result.html is not None
    assert result.html.startswith(
        '<img "<img "<img "<img src=\'\' <a href="' + html.escape(url(1)) + '">x</a>'
    )


def test_a_long_text_puts_the_links_and_previews_before_gmail_clips() -> None:
    long_text = TextBody("plain", "log line 0123456789 abcdefghij\n" * 5000)  # 155 KB
    result = relayed(mail(long_text), [link(1, shown=preview())])
    assert result.html is not None
    markup = result.html.encode()
    assert len(markup) > HTML_LIMIT
    assert markup.index(b"<img") < markup.index(b"log line") < HTML_LIMIT  # read_relayed checks the cid


def test_long_sender_html_gets_the_links_right_after_its_body_tag() -> None:
    document = '<html><body class="x"><p>' + "row<br>" * 20000 + "</p></body></html>"
    result = relayed(mail(TextBody("html", document)), [link(1, shown=preview()), link(2, "log.txt")])
    assert result.html is not None
    assert result.html.startswith('<html><body class="x"><hr><p>Attachments')
    assert result.html.index("log.txt") < HTML_LIMIT


def test_short_html_keeps_the_links_at_the_end() -> None:
    result = relayed(mail(TextBody("html", "<html><body><p>x</p></body></html>")), [link(1, shown=preview())])
    assert result.html is not None
    assert result.html.startswith("<html><body><p>x</p><hr><p>Attachments")
    assert len(result.html.encode()) < 2_000  # the previews' markup is small; their bytes are parts


def test_a_sender_reference_is_replaced_whole_never_as_the_prefix_of_another() -> None:
    markup = TextBody("html", '<img src="cid:pic1"><img src="cid:pic10">')
    links = [link(1, "one.jpg", preview(), content_id="pic1"), link(2, "ten.jpg", content_id="pic10")]
    result = relayed(mail(markup), links)
    assert result.html is not None
    [cid] = result.previews
    ten = f'<a href="{html.escape(url(2))}">ten.jpg</a>'
    assert result.html.startswith(f'<img src="cid:{cid}">{ten}')
