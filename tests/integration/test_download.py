"""The download function against moto: a relayed mail's links, answered for each state of the object."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app import download, links
from app.handler import lambda_handler
from localaws.events import function_url_event
from tests.support import fixture_mail
from tests.support.mails import attachment_links
from tests.support.world import World


@pytest.fixture
def linked(world: World) -> World:
    """The template's account: the relay signs download links with the stack's generated secret."""
    return world


def base_url(world: World) -> str:
    assert world.blueprint.download_url is not None
    return world.blueprint.download_url


def relay(world: World, name: str = "openssl-missing-blank-line.eml") -> list[str]:
    key = f"incoming/{name}"
    world.put_mail(key, fixture_mail(name))
    assert lambda_handler(world.event(key), None) == {"batchItemFailures": []}
    text = world.sent()[-1].message.get_content()
    return [link for link in attachment_links(text) if link.startswith(base_url(world))]


def get(url: str, method: str = "GET") -> dict[str, Any]:
    return download.lambda_handler(function_url_event(method, url), None)


def object_key(url: str) -> str:
    request = links.parse_request(urlsplit(url).path, urlsplit(url).query)
    assert request is not None
    return request.object_key


def test_relayed_link_is_a_download_link_until_the_mails_expiry(linked: World) -> None:
    [link] = relay(linked)
    assert link.startswith(base_url(linked))
    query = parse_qs(urlsplit(link).query)
    assert query["kid"] == ["k0"]
    manifest_key = next(k for k in linked.keys(linked.attachments) if k.endswith("manifest.json"))
    manifest = json.loads(linked.s3.get_object(Bucket=linked.attachments, Key=manifest_key)["Body"].read())
    from datetime import datetime

    assert int(query["exp"][0]) == int(datetime.fromisoformat(manifest["expires_at"]).timestamp())


def test_valid_link_redirects_to_a_60_second_url_keeping_the_file_name(
    linked: World, capsys: pytest.CaptureFixture[str]
) -> None:
    [link] = relay(linked)
    capsys.readouterr()
    answer = get(link)
    assert answer["statusCode"] == 302
    location = answer["headers"]["Location"]
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["60"]
    fetched = requests.get(location, timeout=5)
    assert fetched.content == b"content\n"
    stored = linked.s3.head_object(Bucket=linked.attachments, Key=object_key(link))
    assert fetched.headers["Content-Disposition"] == stored["ContentDisposition"]
    assert stored["ContentDisposition"].startswith("attachment;")
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["Outcome"] == "served"
    assert record["Downloads"] == 1
    assert record["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "Downloads", "Unit": "Count"}]
    assert record["digest"] == object_key(link).split("/")[1]
    assert record["source_ip"] == "198.51.100.7"
    assert record["user_agent"] == "curl/8.5.0"
    assert parse_qs(urlsplit(link).query)["sig"][0] not in line


def test_the_relays_log_never_carries_a_link_signature(
    linked: World, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO)
    [link] = relay(linked)
    signature = parse_qs(urlsplit(link).query)["sig"][0]
    everything = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert "mail distributed" in everything
    assert signature not in everything
    secret = linked.account.client("secretsmanager").get_secret_value(
        SecretId=linked.environment["LINK_KEY_SECRET_ARN"]
    )
    key = json.loads(secret["SecretString"])["current"]
    assert len(key) == 64
    assert key not in everything  # nor the key


def test_head_redirects_to_a_presigned_head(linked: World) -> None:
    [link] = relay(linked)
    answer = get(link, "HEAD")
    assert answer["statusCode"] == 302
    assert answer["body"] == ""
    assert urlsplit(answer["headers"]["Location"]).path.endswith(urlsplit(link).path.rsplit("/", 1)[-1])


def test_tampered_link_is_forbidden_without_naming_bucket_or_key(linked: World) -> None:
    [link] = relay(linked)
    answer = get(link.replace("exp=", "exp=9"))
    assert answer["statusCode"] == 403
    assert "not valid" in answer["body"]
    assert linked.attachments not in answer["body"]
    assert "attachments/" not in answer["body"]


def test_expired_link_is_gone_with_its_expiry_date(linked: World, monkeypatch: pytest.MonkeyPatch) -> None:
    [link] = relay(linked)
    expires = int(parse_qs(urlsplit(link).query)["exp"][0])
    monkeypatch.setattr(download.time, "time", lambda: expires + 1.0)
    answer = get(link)
    assert answer["statusCode"] == 410
    assert time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires)) in answer["body"]
    assert "expired" in answer["body"]


def test_revoked_attachment_is_withdrawn_and_comes_back(linked: World) -> None:
    [link] = relay(linked)
    tagging = {"TagSet": [{"Key": "revoked", "Value": "true"}]}
    linked.s3.put_object_tagging(Bucket=linked.attachments, Key=object_key(link), Tagging=tagging)
    answer = get(link)
    assert answer["statusCode"] == 410
    assert "withdrawn" in answer["body"]
    linked.s3.delete_object_tagging(Bucket=linked.attachments, Key=object_key(link))
    assert get(link)["statusCode"] == 302


def test_deleted_attachment_is_not_found(linked: World) -> None:
    [link] = relay(linked)
    linked.s3.delete_object(Bucket=linked.attachments, Key=object_key(link))
    answer = get(link)
    assert answer["statusCode"] == 404
    assert linked.attachments not in answer["body"]


def test_links_survive_one_rotation_and_new_kids_are_picked_up(linked: World) -> None:
    [old] = relay(linked)
    secretsmanager = linked.account.client("secretsmanager")
    arn = linked.environment["LINK_KEY_SECRET_ARN"]
    keyring = links.parse_keyring(secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
    assert get(old)["statusCode"] == 302  # the download function has cached the k0 keyring
    once = links.rotated(keyring)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=once.to_json())
    fresh = links.sign(once, base_url(linked), object_key(old), int(time.time()) + 600)
    assert get(fresh)["statusCode"] == 302  # an unknown kid makes it re-read the secret
    assert get(old)["statusCode"] == 302  # k0 is now the previous key
    secretsmanager.put_secret_value(SecretId=arn, SecretString=links.rotated(once).to_json())
    download._keys.cache_clear()
    assert get(old)["statusCode"] == 403  # two rotations old


@pytest.mark.parametrize(
    "mangle",
    [
        lambda path: path.rsplit("/", 1)[0] + "/..",
        lambda path: path.rsplit("/", 1)[0] + "/a%2Fb",
        lambda path: path.rsplit("/", 2)[0] + "/manifest.json",
        lambda path: "/" + path.split("/")[1] + "/%2e%2e/%2e%2e",
    ],
)
def test_odd_paths_are_forbidden(linked: World, mangle: Any) -> None:
    [link] = relay(linked)
    parts = urlsplit(link)
    answer = get(f"{mangle(parts.path)}?{parts.query}")
    assert answer["statusCode"] == 403


def test_other_methods_are_not_allowed(linked: World) -> None:
    [link] = relay(linked)
    answer = get(link, "POST")
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, HEAD"


def test_unreadable_secret_answers_503_and_logs_no_key(
    linked: World, capsys: pytest.CaptureFixture[str]
) -> None:
    [link] = relay(linked)
    arn = linked.environment["LINK_KEY_SECRET_ARN"]
    linked.account.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"current_kid": "k0", "current": "short-key"})
    )
    download._keys.cache_clear()
    capsys.readouterr()
    answer = get(link)
    assert answer["statusCode"] == 503
    out = capsys.readouterr().out
    assert "short-key" not in out
    assert "LINK_KEY_SECRET_ARN" in out
