"""The relay's own mails about an alarm: headers like every mail it sends, exact counts, at most 100 rows,
escaped HTML, one-line subjects, the mute links, and the line added to a recovery."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from app.alarms import mails
from app.alarms.mails import MAX_ROWS, ListedRow, MuteLinks
from app.alarms.timeline import Closing, Digest, DigestKind, MuteEnd, Recovery
from app.mail.rewrite import Link

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OPENED = NOW - timedelta(hours=2)
DIGEST = Digest(
    id="f00d-1796371200-3",
    kind=DigestKind.REPEATS,
    fingerprint="f00d",
    sender="plc-7@plant.example.com",
    recipients=("ops@example.com",),
    subject="ALARM: Pump 3 at 9.4 bar",
    incident="f00d-1796364000",
    after=10,
    through=13,
    first_at=NOW - timedelta(minutes=30),
    last_at=NOW - timedelta(minutes=1),
    created_at=NOW,
    opened_at=OPENED,
)
URL = "https://dl.example.com/abc/1/snap.jpg?exp=1&kid=k0&sig=x&y=<z>"
LINKS = MuteLinks(
    one_hour="https://mute.example.com/m?d=1h&t=a&b",
    eight_hours="https://mute.example.com/m?d=8h",
    one_day="https://mute.example.com/m?d=24h",
)


def rows(count: int, links: tuple[Link, ...] = ()) -> list[ListedRow]:
    return [
        ListedRow(
            NOW - timedelta(minutes=count - i),
            f"ALARM: Pump 3 at 9.{i % 10} bar",
            links,
            NOW + timedelta(days=7),
        )
        for i in range(count)
    ]


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(raw: bytes) -> tuple[str, str]:
    message = parsed(raw)
    plain, markup = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert markup is not None
    return plain.get_content(), markup.get_content()


def test_a_digest_is_sent_like_every_mail_of_the_relay() -> None:
    raw = mails.build(DIGEST, rows(3), "relay@relay.example.com", NOW)
    message = parsed(raw)
    assert message["From"] == "IoT Mail Relay <relay@relay.example.com>"
    assert message["To"] == "undisclosed-recipients:;"
    assert message["Reply-To"] == "plc-7@plant.example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Subject"] == "Digest, 3 repeats: ALARM: Pump 3 at 9.4 bar"
    assert message["Message-ID"].endswith("@relay.example.com>")
    assert message["Date"] == "Fri, 04 Dec 2026 12:00:00 +0000"
    assert "ops@example.com" not in raw.decode()  # recipients travel in the send call only
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()


def test_a_digest_lists_time_subject_and_links_and_states_its_span() -> None:
    link = Link("snap.jpg", 123_456, "image/jpeg", None, URL)
    text, markup = bodies(mails.build(DIGEST, rows(3, (link,)), "relay@relay.example.com", NOW))
    assert (
        "3 repeats of this alarm folded between 2026-12-04 11:30:00 UTC and 2026-12-04 11:59:00 UTC." in text
    )
    assert "Open since: 2026-12-04 10:00:00 UTC" in text
    assert "1. 2026-12-04 11:57:00 UTC  ALARM: Pump 3 at 9.0 bar" in text
    assert f"   - snap.jpg (120.6 KB): {URL}" in text
    assert "(download links expire 2026-12-11 12:00 UTC)" in text
    assert "more: relayctl" not in text  # nothing left out
    assert 'href="https://dl.example.com/abc/1/snap.jpg?exp=1&amp;kid=k0&amp;sig=x&amp;y=&lt;z&gt;"' in markup


def test_the_count_is_the_timelines_and_at_most_100_rows_are_listed() -> None:
    big = replace(DIGEST, after=0, through=250)
    text, markup = bodies(mails.build(big, rows(150), "relay@relay.example.com", NOW))
    assert text.startswith("250 repeats of this alarm folded")
    assert len(re.findall(r"^\d+\. ", text, re.MULTILINE)) == MAX_ROWS
    assert "and 150 more: relayctl alarms show f00d-1796364000" in text
    assert markup.count("<tr><td>") == MAX_ROWS
    assert "and 150 more: <code>relayctl alarms show f00d-1796364000</code>" in markup
    assert mails.subject(big) == "Digest, 250 repeats: ALARM: Pump 3 at 9.4 bar"


def test_a_digest_without_an_incident_names_its_alarm_in_the_command() -> None:
    muted = replace(DIGEST, kind=DigestKind.MUTE_END, incident=None, opened_at=None, through=200)
    assert "relayctl alarms show f00d" in mails.text(muted, rows(1))


def test_what_the_sender_wrote_is_escaped_and_subjects_stay_one_line() -> None:
    hostile = replace(
        DIGEST, subject="<script>alert(1)</script>\r\nBcc: victim@example.com\u2028x" + "y" * 400
    )
    link = Link('a"b<c>.jpg', 10, "image/jpeg", None, 'https://x.example/"onmouseover=alert(1)')
    listed = [ListedRow(NOW, "<img src=x onerror=alert(1)>", (link,))]
    raw = mails.build(hostile, listed, "relay@relay.example.com", NOW)
    _, markup = bodies(raw)
    assert "<script>" not in markup
    assert "<img" not in markup
    assert 'a"b<c>' not in markup
    assert "&lt;script&gt;" in markup
    assert 'href="https://x.example/&quot;onmouseover=alert(1)"' in markup
    subject = parsed(raw)["Subject"]
    assert "\n" not in subject
    assert "\u2028" not in subject
    assert len(subject) < 200
    assert subject.endswith("…")
    assert parsed(raw)["Bcc"] is None


@pytest.mark.parametrize(
    ("changes", "subject", "says"),
    [
        (
            {
                "kind": DigestKind.FLAPPING,
                "cycles": 5,
                "window": 3600,
                "after": 12,
                "first_at": NOW,
                "last_at": NOW,
            },
            "Flapping: ALARM: Pump 3 at 9.4 bar",
            "This alarm opened 5 times within 1 h: it is flapping.",
        ),
        (
            {"kind": DigestKind.STABLE, "window": 3600, "closing": Closing.STABLE},
            "Stable again: ALARM: Pump 3 at 9.4 bar",
            "This alarm stopped flapping: 1 h without a change between problem and recovery.",
        ),
        (
            {"kind": DigestKind.LAST, "window": 1800, "closing": Closing.QUIET},
            "Closed, 3 repeats in a last digest: ALARM: Pump 3 at 9.4 bar",
            "No mail of this alarm for 30 min: it is closed.",
        ),
        (
            {"kind": DigestKind.LAST, "closing": Closing.RECOVERY},
            "Recovered, 3 repeats in a last digest: ALARM: Pump 3 at 9.4 bar",
            "This alarm recovered; its recovery mail follows this one.",
        ),
        (
            {"kind": DigestKind.REPEATS, "flapping": True, "after": 12},
            "Digest, 1 repeat: ALARM: Pump 3 at 9.4 bar",
            "1 repeat of this alarm folded between",
        ),
    ],
)
def test_each_kind_says_what_happened(changes: dict[str, object], subject: str, says: str) -> None:
    digest = replace(DIGEST, **changes)  # type: ignore[arg-type]
    assert mails.subject(digest) == subject
    text, markup = bodies(mails.build(digest, rows(digest.count), "relay@relay.example.com", NOW))
    assert says in text
    assert says.replace("'", "&#x27;") in markup


def test_the_mute_end_digest_says_who_muted_when_and_counts_exactly() -> None:
    ended = MuteEnd(
        by="guard@example.com",
        at=NOW - timedelta(hours=1),
        until=NOW + timedelta(hours=7),
        last_by="alice@example.com",
        last_at=NOW - timedelta(minutes=30),
        ended_by="operator",
        folded=42,
    )
    digest = replace(DIGEST, kind=DigestKind.MUTE_END, after=0, through=45, mute=ended)
    text, _ = bodies(mails.build(digest, rows(45), "relay@relay.example.com", NOW))
    assert mails.subject(digest) == "Mute ended, 42 mails folded: ALARM: Pump 3 at 9.4 bar"
    assert "Muted by guard@example.com at 2026-12-04 11:00:00 UTC: 42 mails folded." in text
    assert "Last muted again by alice@example.com at 2026-12-04 11:30:00 UTC." in text
    assert "Unmuted by operator at 2026-12-04 12:00:00 UTC." in text
    assert "Also listed: 3 repeats folded before the mute and not yet in a digest." in text
    ran_out = replace(
        digest, through=42, mute=replace(ended, ended_by=None, last_by=ended.by, last_at=ended.at)
    )
    text = mails.text(ran_out, rows(42))
    assert "The mute ended at 2026-12-04 19:00:00 UTC." in text
    assert "Also listed" not in text
    assert "Last muted again" not in text


def test_mute_links_appear_in_text_and_html_when_given() -> None:
    text, markup = bodies(mails.build(DIGEST, rows(3), "relay@relay.example.com", NOW, LINKS))
    assert "Mute this alarm for all its recipients:" in text
    assert f"  1 hour: {LINKS.one_hour}" in text
    assert f"  8 hours: {LINKS.eight_hours}" in text
    assert f"  24 hours: {LINKS.one_day}" in text
    assert '<a href="https://mute.example.com/m?d=1h&amp;t=a&amp;b">1 hour</a>' in markup
    assert '<a href="https://mute.example.com/m?d=24h">24 hours</a>' in markup
    plain, markup = bodies(mails.build(DIGEST, rows(3), "relay@relay.example.com", NOW))
    assert "Mute" not in plain
    assert "mute.example.com" not in markup


@pytest.mark.parametrize(
    ("recovery", "line"),
    [
        (
            Recovery("i", OPENED, NOW, folded=131, in_last_digest=11, held=0),
            "IoT Mail Relay: this alarm lasted 2 h (since 2026-12-04 10:00:00 UTC); 131 repeats were folded,"
            " the last 11 in a digest sent just before this mail.",
        ),
        (
            Recovery("i", NOW - timedelta(minutes=13, seconds=5), NOW, folded=0, in_last_digest=0, held=0),
            "IoT Mail Relay: this alarm lasted 13 min 5 s (since 2026-12-04 11:46:55 UTC); no repeats were folded.",
        ),
        (
            Recovery("i", OPENED, NOW, folded=1, in_last_digest=0, held=0),
            "IoT Mail Relay: this alarm lasted 2 h (since 2026-12-04 10:00:00 UTC); 1 repeat was folded into"
            " earlier digests.",
        ),
        (
            Recovery("i", OPENED, NOW, folded=20, in_last_digest=0, held=7),
            "IoT Mail Relay: this alarm lasted 2 h (since 2026-12-04 10:00:00 UTC); 20 repeats were folded,"
            " 7 of them listed when the mute ends.",
        ),
    ],
)
def test_the_line_added_to_a_recovery(recovery: Recovery, line: str) -> None:
    note = mails.recovery_note(recovery)
    assert note.text == line
    assert note.html == f"<p>{line}</p>"


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=13), "13 min"),
        (timedelta(hours=2, minutes=13, seconds=59), "2 h 13 min"),
        (timedelta(days=3, hours=4, minutes=5), "3 d 4 h"),
        (timedelta(days=1, minutes=5), "1 d"),
    ],
)
def test_durations(length: timedelta, text: str) -> None:
    assert mails.duration_text(length) == text
