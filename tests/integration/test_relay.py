"""lambda_handler against moto: what gets sent, stored and notified for each kind of mail."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from app.handler import lambda_handler
from localaws.events import sqs_event
from tests.support import fixture_mail
from tests.support.mails import attachment_links
from tests.support.world import RELAY_ADDRESS as RELAY
from tests.support.world import SENDER, World, local_world

# The template gives links to the download function; without DOWNLOAD_BASE_URL the relay signs S3 links
# with its role (tests of that fallback say so by this override).
S3_LINKS = {"DOWNLOAD_BASE_URL": "", "LINK_KEY_SECRET_ARN": ""}


def run(world: World, name: str, raw: bytes | None = None) -> dict[str, list[dict[str, str]]]:
    key = f"incoming/{name}"
    world.put_mail(key, fixture_mail(name) if raw is None else raw)
    return lambda_handler(world.event(key), None)


def links_in(text: str) -> list[str]:
    return attachment_links(text)


def test_openssl_transcript_is_distributed_with_a_working_link(world: World) -> None:
    assert run(world, "openssl-missing-blank-line.eml") == {"batchItemFailures": []}
    [sent] = world.sent()
    assert sorted(sent.destinations) == ["alice@example.com", "bob@example.org", "carol@example.net"]
    message = sent.message
    assert message["Subject"] == "Demo from openssl"
    assert str(message["To"]) == "undisclosed-recipients:;"
    text = message.get_content()
    assert "Email_Rxers_Code" not in text
    [link] = links_in(text)
    assert world.download(link) == b"content\n"
    assert world.notices() == []


def test_links_lead_to_the_download_function(world: World) -> None:
    run(world, "camera-jpeg-name-param-no-disposition.eml")
    links = links_in(world.sent()[0].message.get_content())
    assert len(links) == 2
    assert world.blueprint.download_url is not None
    assert all(link.startswith(world.blueprint.download_url) for link in links)


def test_without_a_download_url_links_are_sigv4_with_the_configured_expiry() -> None:
    with local_world(environment=S3_LINKS) as world:
        run(world, "camera-jpeg-name-param-no-disposition.eml")
        links = links_in(world.sent()[0].message.get_content())
        assert len(links) == 2
        for link in links:
            query = parse_qs(urlsplit(link).query)
            assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
            assert query["X-Amz-Expires"] == [world.environment["URL_EXPIRY_SECONDS"]]
            assert "Signature" not in query  # not the legacy SigV2 form
            assert world.download(link)


@pytest.mark.parametrize("expiry", ["600"])
def test_expiry_follows_the_setting(expiry: str) -> None:
    with local_world({"UrlExpirySeconds": expiry}, S3_LINKS) as world:
        run(world, "openssl-missing-blank-line.eml")
        [link] = links_in(world.sent()[0].message.get_content())
        assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == [expiry]


def test_attachment_objects_carry_type_name_and_origin(world: World) -> None:
    run(world, "rfc2231-and-encoded-word-filenames.eml")
    links = links_in(world.sent()[0].message.get_content())
    keys = ["attachments/" + unquote(urlsplit(link).path).lstrip("/") for link in links]
    heads = [world.s3.head_object(Bucket=world.attachments, Key=key) for key in keys]
    assert heads[0]["ContentType"] == "application/octet-stream"
    assert heads[1]["ContentType"] == "application/pdf"
    assert "filename*=UTF-8''%E2%82%AC%20Tagesbericht%20M%C3%A4rz.csv" in heads[0]["ContentDisposition"]
    assert heads[1]["ContentDisposition"].startswith('attachment; filename="_bersicht.pdf"')
    assert unquote(heads[0]["Metadata"]["incoming-key"]) == "incoming/rfc2231-and-encoded-word-filenames.eml"
    assert unquote(heads[0]["Metadata"]["message-id"]) == "<names-1@plant.example.com>"
    assert world.download(links[0]) == b"date;value\n2026-03-01;42\n"


def test_hostile_and_duplicate_names_stay_distinct_and_inside_the_prefix(world: World) -> None:
    run(world, "traversal-and-duplicate-filenames.eml")
    stored = [key for key in world.keys(world.attachments) if not key.endswith("manifest.json")]
    assert len(stored) == 6
    assert all(key.startswith("attachments/") and ".." not in key.split("/") for key in stored)
    names = [key.rsplit("/", 1)[1] for key in stored]
    assert names.count("report.txt") == 2
    contents = sorted(world.s3.get_object(Bucket=world.attachments, Key=k)["Body"].read() for k in stored)
    assert contents == sorted([b"first", b"second", b"third", b"fourth", b"fifth", b"sixth"])


def test_html_only_mail_with_code_in_markup_and_inline_image(world: World) -> None:
    run(world, "html-only-code-in-markup-inline-image.eml")
    [sent] = world.sent()
    assert sorted(sent.destinations) == ["dba@example.com", "ops@example.org"]
    html = sent.message.get_content()
    assert sent.message.get_content_type() == "text/html"
    assert "Email_Rxers_Code" not in html
    assert "cid:graph1@zbx" not in html


def test_qp_soft_breaks_do_not_hide_the_code(world: World) -> None:
    run(world, "qp-soft-breaks-in-recipient-code.eml")
    [sent] = world.sent()
    assert sorted(sent.destinations) == ["operator-one@example.com", "operator-two@example.org"]
    assert sent.message["Subject"] == "Temperatur überschritten"
    assert "97.5 °C" in sent.message.get_content()


def test_nested_mail_keeps_alternative_and_offloads_forwarded_message(world: World) -> None:
    run(world, "nested-alternative-forwarded-message.eml")
    message = world.sent()[0].message
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    plain_links = links_in(plain.get_content())
    assert len(plain_links) == 2
    assert any(link.split("?")[0].endswith(".eml") for link in plain_links)
    assert html.get_content().count("<li>") == 2


@pytest.mark.parametrize(
    ("verdict", "reason"), [("X-SES-Spam-Verdict", "spam"), ("X-SES-Virus-Verdict", "virus")]
)
def test_failed_verdicts_become_notices_and_nothing_is_distributed(
    world: World, verdict: str, reason: str
) -> None:
    raw = fixture_mail("camera-jpeg-name-param-no-disposition.eml").replace(
        f"{verdict}: PASS".encode(), f"{verdict}: FAIL".encode()
    )
    assert run(world, "camera.eml", raw) == {"batchItemFailures": []}
    assert world.sent() == []
    [notice] = world.notices()
    assert notice["reason"] == reason
    assert notice["key"] == "incoming/camera.eml"
    assert notice["message_id"] == "<nvr-0001@cameras.example.com>"
    assert notice["from"] == "nvr@cameras.example.com"
    assert world.keys(world.attachments) == []


def test_allowed_senders_is_enforced() -> None:
    # The fixtures carry no authentication results: this test is about the From match alone.
    with local_world({"AllowedSenders": "@plant.example.com", "SenderAuth": "off"}) as world:
        run(world, "camera-jpeg-name-param-no-disposition.eml")
        run(world, "qp-soft-breaks-in-recipient-code.eml")
        assert len(world.sent()) == 1
        assert [n["reason"] for n in world.notices()] == ["sender_not_allowed"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "no_recipients"),
        ("Email_Rxers_Code:[]:Email_Rxers_Code:", "no_recipients"),
        ("Email_Rxers_Code:[not an address, not-a-group]:Email_Rxers_Code:", "invalid_recipients"),
    ],
)
def test_undeliverable_recipient_lists(world: World, code: str, reason: str) -> None:
    raw = simple_mail(code)
    assert run(world, "m.eml", raw) == {"batchItemFailures": []}
    assert world.sent() == []
    [notice] = world.notices()
    assert notice["reason"] == reason
    assert notice["title"].startswith("IoT Mail Relay")
    if reason == "invalid_recipients":
        assert notice["invalid_recipients"] == ["not an address", "not-a-group (unknown group)"]
    else:
        assert "invalid_recipients" not in notice


def test_partly_invalid_list_sends_to_the_valid_and_reports_the_rest(world: World) -> None:
    run(
        world,
        "m.eml",
        simple_mail("Email_Rxers_Code:[ok@example.com, broken@, also-ok@example.org]:Email_Rxers_Code:"),
    )
    [sent] = world.sent()
    assert sorted(sent.destinations) == ["also-ok@example.com".replace(".com", ".org"), "ok@example.com"]
    [notice] = world.notices()
    assert notice["reason"] == "invalid_recipients"
    assert notice["invalid_recipients"] == ["broken@"]


def test_too_many_recipients_sends_nothing() -> None:
    with local_world({"MaxRecipients": "2"}) as world:
        run(world, "m.eml", simple_mail("Email_Rxers_Code:[a@x.com,b@x.com,c@x.com]:Email_Rxers_Code:"))
        assert world.sent() == []
        assert [n["reason"] for n in world.notices()] == ["too_many_recipients"]


def test_120_recipients_go_out_in_chunks_of_50_without_repeats() -> None:
    addresses = [f"r{n}@example.com" for n in range(120)]
    with local_world({"MaxRecipients": "200"}) as world:
        run(world, "m.eml", simple_mail(f"Email_Rxers_Code:[{','.join(addresses)}]:Email_Rxers_Code:"))
        sizes = [len(sent.destinations) for sent in world.sent()]
        assert sizes == [50, 50, 20]
        everyone = [address for sent in world.sent() for address in sent.destinations]
        assert sorted(everyone) == sorted(addresses)


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 512, b"just some words, no headers\r\n"])
def test_what_is_not_a_mail_becomes_a_malformed_notice(world: World, raw: bytes) -> None:
    assert run(world, "junk", raw) == {"batchItemFailures": []}
    assert [n["reason"] for n in world.notices()] == ["malformed"]
    assert world.sent() == []


def test_too_large_after_rewrite(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import relay

    monkeypatch.setattr(relay, "SES_MAX_MESSAGE_BYTES", 200)
    run(world, "openssl-missing-blank-line.eml")
    assert world.sent() == []
    assert [n["reason"] for n in world.notices()] == ["too_large"]


def test_raw_mail_over_the_limit_is_not_downloaded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import relay

    monkeypatch.setattr(relay, "MAX_RAW_BYTES", 100)
    run(world, "openssl-missing-blank-line.eml")
    assert [n["reason"] for n in world.notices()] == ["too_large"]


def test_mixed_batch_reports_only_the_missing_object(world: World) -> None:
    world.put_mail("incoming/a.eml", fixture_mail("openssl-missing-blank-line.eml"))
    world.put_mail("incoming/c.eml", simple_mail(""))
    event = world.event("incoming/a.eml", "incoming/missing.eml", "incoming/c.eml")
    event["Records"].append({"messageId": "test", "body": json.dumps({"Event": "s3:TestEvent"})})
    other = sqs_event("incoming/x.eml", bucket="another-bucket", first_id=9)
    event["Records"].append(other["Records"][0])
    assert lambda_handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert len(world.sent()) == 1
    assert [n["reason"] for n in world.notices()] == ["no_recipients"]


def test_redelivered_record_and_duplicate_event_send_once(world: World) -> None:
    for _ in range(3):
        assert run(world, "openssl-missing-blank-line.eml") == {"batchItemFailures": []}
    run(world, "m.eml", simple_mail(""))
    run(world, "m.eml", simple_mail(""))
    assert len(world.sent()) == 1
    assert len(world.notices()) == 1


def test_a_failure_between_chunks_resends_only_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.aws import mailer
    from app.errors import RetryableError

    real_send = mailer.send
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RetryableError("SES send failed: Throttling")
        return real_send(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mailer, "send", flaky)
    addresses = [f"r{n}@example.com" for n in range(120)]
    with local_world({"MaxRecipients": "200"}) as world:
        raw = simple_mail(f"Email_Rxers_Code:[{','.join(addresses)}]:Email_Rxers_Code:")
        assert run(world, "m.eml", raw) == {"batchItemFailures": [{"itemIdentifier": "1"}]}
        assert [len(s.destinations) for s in world.sent()] == [50]
        assert lambda_handler(world.event("incoming/m.eml"), None) == {"batchItemFailures": []}
        everyone = [address for sent in world.sent() for address in sent.destinations]
        assert sorted(everyone) == sorted(addresses)  # each exactly once


def test_one_log_line_per_mail_without_secrets(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    run(world, "openssl-missing-blank-line.eml")
    records = [r for r in caplog.records if r.name == "iot_mail_relay"]
    [line] = [r for r in records if hasattr(r, "outcome")]
    # Besides it only the cold start's warning that this (unfenced) test relay is open.
    assert [r.levelname for r in records if r is not line] == ["WARNING"]
    assert line.outcome == "distributed"  # type: ignore[attr-defined]
    assert line.recipients == 3  # type: ignore[attr-defined]
    assert line.attachments == 1  # type: ignore[attr-defined]
    assert line.key == "incoming/openssl-missing-blank-line.eml"  # type: ignore[attr-defined]
    everything = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert RELAY not in everything
    assert "sig=" not in everything  # the link's signature
    assert "X-Amz-Signature" not in everything


def test_config_error_names_the_variable() -> None:
    from app.config import ConfigError

    # A value the template refuses, as a function edited by hand could hold.
    with local_world(environment={"URL_EXPIRY_SECONDS": "forever"}) as world:
        world.put_mail("incoming/a.eml", simple_mail(""))
        with pytest.raises(ConfigError, match=r"^URL_EXPIRY_SECONDS"):
            lambda_handler(world.event("incoming/a.eml"), None)


def simple_mail(code: str) -> bytes:
    return (
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: s@plant.example.com\r\n"
        f"To: {RELAY}\r\nSubject: Alarm\r\nMessage-ID: <simple@plant.example.com>\r\n\r\nBoiler alarm. {code}\r\n"
    ).encode()


def test_ses_rejection_becomes_a_notice_not_a_retry_loop(world: World) -> None:
    world.account.client("sesv2").delete_email_identity(EmailIdentity=SENDER)
    assert run(world, "openssl-missing-blank-line.eml") == {"batchItemFailures": []}
    assert world.sent() == []
    [notice] = world.notices()
    assert notice["reason"] == "rejected"
    assert "MessageRejected" in notice["detail"]
    # A redelivery neither sends nor notifies again.
    assert lambda_handler(world.event("incoming/openssl-missing-blank-line.eml"), None) == {
        "batchItemFailures": []
    }
    assert len(world.notices()) == 1


def test_abuse_limits_end_in_notices(world: World) -> None:
    many = "".join(
        f"--b\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\nx\r\n" for i in range(150)
    )
    raw = simple_mail("").replace(b"\r\n\r\n", b"\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", 1)
    run(world, "many.eml", raw + many.encode() + b"--b--\r\n")
    deep = "".join(f"--b{d}\r\nContent-Type: multipart/mixed; boundary=b{d + 1}\r\n\r\n" for d in range(30))
    raw = b"From: s@plant.example.com\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    run(world, "deep.eml", raw + deep.encode())
    run(world, "headers.eml", b"From: s@plant.example.com\r\nX-Junk: " + b"a" * 300_000 + b"\r\n\r\nbody")
    assert [n["reason"] for n in world.notices()] == ["too_large", "malformed", "malformed"]
    assert world.keys(world.attachments) == []
    assert world.sent() == []
