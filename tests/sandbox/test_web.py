"""The sandbox's web view in a real browser: Debian's headless Chromium driven by Selenium, against
`python -m sandbox` on free ports. One sandbox and one browser for the module; the screenshots the README
shows are taken here (docs/sandbox-mails.png, docs/sandbox-mail.png)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.launch import ROOT, Running, launch
from sandbox.smtp import EICAR, ses_headers
from tests.support.sandbox import mail

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS = ROOT / "docs"
ATTACHMENT = bytes(range(256)) * 64 + b"end of the reading"
CODE = "Email_Rxers_Code:[alice@example.com,bob@example.org]:Email_Rxers_Code:"
WAIT = 60


def _browser_or_skip() -> None:
    if CHROMEDRIVER.exists() and CHROMIUM.exists():
        return
    if shutil.which("apt-get"):
        pytest.fail(
            f"no {CHROMEDRIVER}: `make browser` installs Debian's chromium and chromium-driver with apt"
        )
    pytest.skip(
        f"no {CHROMEDRIVER} and no apt-get to install it: the browser tests need Chromium and its driver"
    )


class Canary:
    """A host that is not the view: any request it gets is one the hostile mail made leave."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Record(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.server.shutdown()
    c.server.server_close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    _browser_or_skip()
    data = tmp_path_factory.mktemp("sandbox-web")
    with launch(data, "--visibility-timeout", "2", "--batch-window", "0.2") as running:
        yield running


@pytest.fixture(scope="module")
def browser(running: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1500"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # The driver's path given: Selenium Manager (which would download one) does not run.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def with_html(message: EmailMessage, html: str) -> EmailMessage:
    """The mail's text body with an HTML alternative, its attachment kept."""
    body = message.get_body(("plain",))
    assert body is not None
    body.add_alternative(html, subtype="html")
    return message


def hostile(canary: Canary, recipient: str) -> EmailMessage:
    message = mail("web-hostile", f"Tank 2 level low.\n{CODE}\n", None, recipient)
    message.add_alternative(
        f'<p id="hostile">Tank 2 level <b>low</b>.</p>{CODE}'
        f'<script>document.body.setAttribute("data-pwned", "script"); fetch("{canary.url}/script");</script>'
        f"<img src=\"{canary.url}/image.png\" onerror=\"document.body.setAttribute('data-pwned', 'onerror');"
        f" new Image().src='{canary.url}/onerror'\">"
        f'<link rel="stylesheet" href="{canary.url}/style.css"><a href="javascript:alert(1)">click</a>',
        subtype="html",
    )
    return message


@pytest.fixture(scope="module")
def sent(running: Running, canary: Canary, browser: Any) -> dict[str, EmailMessage]:
    """The four mails, sent with the mails page already open (it must update itself)."""
    browser.get(running.state["web"])
    recipient = running.state["smtp"]["recipients"][0]
    mails = {
        "web-attachment": with_html(
            mail("web-attachment", f"Pump 3 pressure high.\n{CODE}\n", ATTACHMENT, recipient),
            f"<p>Pump 3 pressure <b>high</b>: 9.1 bar.</p><p>{CODE}</p>",
        ),
        "web-no-code": mail("web-no-code", "Nobody is named in this mail.\n", None, recipient),
        "web-virus": mail("web-virus", EICAR.decode() + f"\n{CODE}\n", None, recipient),
        "web-hostile": hostile(canary, recipient),
    }
    with running.smtp(timeout=30) as client:
        for message in mails.values():
            client.send_message(message)
    return mails


def outcomes(browser: Any) -> dict[str, tuple[str, str]]:
    """Subject -> (outcome kind, label), as the mails page shows them now."""
    from selenium.webdriver.common.by import By

    found = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "tr.mail"):
        subject = row.find_element(By.CSS_SELECTOR, "td a").text
        found[subject] = (
            row.get_attribute("data-outcome"),
            row.find_element(By.CSS_SELECTOR, ".outcome").text,
        )
    return found


def wait_for(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # an element replaced by the page's refresh while being read
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def open_mail(browser: Any, running: Running, subject: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(running.state["web"])
    wait_for(lambda: browser.find_element(By.LINK_TEXT, subject), f"the row of {subject!r}").click()
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == subject, f"the page of {subject!r}")


@pytest.fixture(scope="module")
def settled(browser: Any, sent: dict[str, EmailMessage]) -> dict[str, tuple[str, str]]:
    """Subject -> (outcome, label) once all four are distributed or notified, read without a reload."""
    final = {"distributed", "notice"}
    subjects = {f"reading {name}" for name in sent}

    def done() -> dict[str, tuple[str, str]] | None:
        now = outcomes(browser)
        return now if subjects <= set(now) and all(now[s][0] in final for s in subjects) else None

    shown: dict[str, tuple[str, str]] = wait_for(done, "the four mails' outcomes on the mails page")
    return shown


def test_the_mails_page_shows_every_mail_with_what_became_of_it(
    browser: Any, settled: dict[str, tuple[str, str]]
) -> None:
    assert settled["reading web-attachment"] == ("distributed", "distributed to 2, 1 link")
    assert settled["reading web-no-code"][0] == "notice"
    assert "no_recipients" in settled["reading web-no-code"][1]
    assert settled["reading web-virus"][0] == "notice"
    assert "virus" in settled["reading web-virus"][1]
    assert settled["reading web-hostile"] == ("distributed", "distributed to 2, 0 links")
    browser.save_screenshot(str(DOCS / "sandbox-mails.png"))


def test_the_attachment_link_downloads_the_original_bytes_and_the_trace_shows_the_calls(
    running: Running, browser: Any, settled: dict[str, tuple[str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    open_mail(browser, running, "reading web-attachment")
    rows = browser.find_elements(By.CSS_SELECTOR, "#trace table.waterfall tr[data-name]")
    calls = {(row.get_attribute("data-name"), row.get_attribute("data-operation")) for row in rows}
    assert {("s3", "GetObject"), ("s3", "PutObject"), ("email", "SendEmail")} <= calls
    (mine,) = [
        r for r in rows if r.get_attribute("data-name") == "relay_mail" and "mine" in r.get_attribute("class")
    ]
    assert "incoming_key = incoming/" in mine.text
    assert "outcome = distributed" in mine.text
    headers = browser.find_elements(By.CSS_SELECTOR, "table.headers tr.ses th")
    assert [h.text for h in headers][:2] == ["Return-Path", "Received"]
    browser.save_screenshot(str(DOCS / "sandbox-mail.png"))

    link = browser.find_element(By.CSS_SELECTOR, "a.attachment")
    # The sandbox's download server, as the relay's links point at the download function in AWS.
    assert urlsplit(link.get_attribute("href")).netloc == urlsplit(running.state["download"]["url"]).netloc
    link.click()
    target = browser.downloads / "reading.bin"
    wait_for(lambda: target.exists() and target.read_bytes() == ATTACHMENT, "the downloaded attachment")


def test_the_hostile_mail_runs_no_script_and_loads_nothing_remote(
    running: Running, browser: Any, canary: Canary, settled: dict[str, tuple[str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    browser.get_log("performance")  # what earlier pages requested
    open_mail(browser, running, "reading web-hostile")
    time.sleep(1)  # time for anything the mail could start
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.html")
    assert "allow-scripts" not in frame.get_attribute("sandbox")
    browser.switch_to.frame(frame)
    try:
        assert "Tank 2 level low." in browser.find_element(By.ID, "hostile").text  # the HTML is shown
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None
    finally:
        browser.switch_to.default_content()
    assert browser.title.startswith("reading web-hostile")
    assert canary.hits == []
    view = urlsplit(running.state["web"]).netloc
    requested = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    assert requested, "the performance log recorded no request"
    elsewhere = [
        url for url in requested if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != view
    ]
    assert elsewhere == []


def test_the_redrive_button_moves_a_dead_lettered_mail_back_and_it_is_relayed(
    running: Running, browser: Any, settled: dict[str, tuple[str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    s3, sqs = running.client("s3"), running.client("sqs")
    bucket = running.state["environment"]["INCOMING_BUCKET"]
    key = "incoming/dead-lettered-by-the-test"
    raw = mail("web-dlq", f"Stored while the notification was off.\n{CODE}\n", None, "inbox@x").as_bytes()
    headers = ses_headers(
        "sensor@plant.example.com",
        "inbox@x",
        "test",
        "127.0.0.1",
        "dlq",
        "PASS",
        domain="plant.example.com",
        authenticated=True,
    )
    # Stored without a notification, and its record put in the DLQ: as if it had failed maxReceiveCount times.
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    s3.put_object(Bucket=bucket, Key=key, Body=headers + raw)
    kept = {k: v for k, v in notifications.items() if k != "ResponseMetadata"}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=kept)
    record = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": running.state["region"],
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": len(headers + raw)}},
            }
        ]
    }
    sqs.send_message(QueueUrl=running.state["dead_letter_queue_url"], MessageBody=json.dumps(record))

    browser.get(running.state["web"])
    wait_for(lambda: outcomes(browser).get("reading web-dlq", ("",))[0] == "dlq", "the mail shown in the DLQ")
    browser.get(running.state["web"] + "status")
    assert browser.find_element(By.ID, "dlq-depth").text == "1"
    assert "notice: virus 1" in browser.find_element(By.TAG_NAME, "main").text  # mails by outcome and reason
    browser.find_element(By.ID, "redrive").click()
    moved = wait_for(lambda: browser.find_element(By.ID, "moved").text, "the redrive's result")
    assert moved.startswith("Moved 1 message(s)")
    browser.get(running.state["web"])
    wait_for(
        lambda: outcomes(browser).get("reading web-dlq", ("",))[0] == "distributed",
        "the redriven mail relayed",
    )


def test_the_annotation_search_finds_the_virus(
    running: Running, browser: Any, settled: dict[str, tuple[str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(running.state["web"])
    search = browser.find_element(By.CSS_SELECTOR, "header input[name=q]")
    search.send_keys('annotation.outcome = "fallback" AND annotation.reason = "virus"\n')
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == "Traces", "the search's page")
    hits = browser.find_elements(By.CSS_SELECTOR, "table.hits tbody tr a")
    assert len(hits) == 1
    hits[0].click()
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == "reading web-virus", "the virus mail")


def test_no_state_changes_without_the_views_own_form(running: Running) -> None:
    url = running.state["web"] + "redrive"
    with pytest.raises(urllib.error.HTTPError) as get:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - the sandbox's own view
    assert get.value.code == 405
    forged = urllib.request.Request(  # noqa: S310 - the sandbox's own view
        url, data=b"token=guessed", headers={"Origin": "http://evil.example"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as post:
        urllib.request.urlopen(forged, timeout=10)  # noqa: S310
    assert post.value.code == 403
    rebound = urllib.request.Request(running.state["web"], headers={"Host": "evil.example"})  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as host:
        urllib.request.urlopen(rebound, timeout=10)  # noqa: S310
    assert host.value.code == 421
