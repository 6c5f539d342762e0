"""The sandbox's web view in a real browser: Debian's headless Chromium driven by Selenium, against
`python -m sandbox` on free ports. One sandbox and one browser for the module; the screenshots the README
shows are taken here (docs/sandbox-mails.png, docs/sandbox-mail.png, docs/sandbox-camera-mail.png,
docs/sandbox-mute.png, docs/sandbox-alarms.png, docs/sandbox-incident.png). An alarm storm runs in a
sandbox of its own, so that its Alarms page shows its alarms alone (every mail relayed first opens an
incident); a recipient mutes it from its mail's link. The tests that change the mailbox (revoke, delete,
clear) come last, in file order; the last one starts a sandbox of its own, with previews off."""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from sandbox.launch import ROOT, Running, launch
from sandbox.smtp import EICAR, ses_headers
from tests.support import images, tools
from tests.support.muting import fingerprint_of, log_lines, mute_links
from tests.support.sandbox import SETTLE_TIMEOUT, mail, outbox, relayctl
from tests.support.tools import CHROMEDRIVER, CHROMIUM

pytestmark = pytest.mark.integration

DOCS = ROOT / "docs"
ATTACHMENT = bytes(range(256)) * 64 + b"end of the reading"
CODE = "Email_Rxers_Code:[alice@example.com,bob@example.org]:Email_Rxers_Code:"
WAIT = 60
SUBJECTS = {
    "web-attachment",
    "web-no-code",
    "web-virus",
    "web-hostile",
    "web-no-id",
    "web-html-only",
    "web-shared-a",
    "web-shared-b",
    "web-camera",
}
SNAPSHOT_NAME = "gate-cam4.jpg"
STORM_SENDER = "plc-7@plant.example.com"
STORM_RECIPIENTS = ("ops@example.com", "alice@example.com", "bob@example.org")
PUMP = "PROBLEM: Pump 3 pressure 9.{} bar"
REPEATS = 5
MUTED_REPEATS = 3  # the pump's repeats sent while a recipient's mute holds
TANK = ("ALARM: Tank 4 level 81%", "ALARM: Tank 4 level 82%", "RESOLVED: Tank 4 level 60%")


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
    tools.require(str(CHROMIUM), str(CHROMEDRIVER))
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


def snapshot() -> bytes:
    """An NVR's 1080p motion still: a scene with the camera's time stamp burnt in, and the EXIF (GPS,
    serial number) a camera writes around it."""
    from PIL import ImageDraw, ImageFont

    still = images.scene((1920, 1080))
    ImageDraw.Draw(still).text(
        (48, 40), "2026-12-04 02:14:07  CAM4 GATE", fill=(255, 255, 255), font=ImageFont.load_default(64)
    )
    return images.camera_jpeg(image=still)


SNAPSHOT = snapshot()


def camera(recipient: str) -> EmailMessage:
    """A motion alarm as NVRs send it: a line of text and the snapshot attached as image/jpeg."""
    message = mail(
        "web-camera",
        "Motion detected on CAM4 (gate) at 02:14:07.\nEmail_Rxers_Code:[guard@example.com]:Email_Rxers_Code:\n",
        None,
        recipient,
        sender="nvr-4@plant.example.com",
    )
    message.add_attachment(SNAPSHOT, maintype="image", subtype="jpeg", filename=SNAPSHOT_NAME)
    return message


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


def without_message_id(message: EmailMessage) -> EmailMessage:
    """As Python's smtplib example (and much sensor firmware) sends it: no Message-ID at all."""
    del message["Message-ID"]
    return message


def html_only(recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sensor@plant.example.com"
    message["To"] = recipient
    message["Subject"] = "reading web-html-only"
    message["Message-ID"] = "<web-html-only@plant.example.com>"
    message.set_content(
        "<p>Tank 7 <b>overflow</b> alarm.</p><p>Email_Rxers_Code:[carol@example.com]:Email_Rxers_Code:</p>",
        subtype="html",
    )
    return message


def shared(name: str, to: str, recipient: str) -> EmailMessage:
    """Two mails with one Message-ID, as a sensor that counts from 1 after every reboot sends them."""
    message = mail(name, f"Shared id.\nEmail_Rxers_Code:[{to}]:Email_Rxers_Code:\n", None, recipient)
    message.replace_header("Message-ID", "<1@cam-9.plant.example.com>")
    return message


@pytest.fixture(scope="module")
def sent(running: Running, canary: Canary, browser: Any) -> dict[str, EmailMessage]:
    """The mails, sent with the mails page already open (it must update itself)."""
    browser.get(running.state["web"])
    recipient = running.state["smtp"]["recipients"][0]
    mails = {
        "web-attachment": with_html(
            mail(
                "web-attachment",
                f"Pump 3 pressure high. Trend: http://evil.example.net/trend\n{CODE}\n",
                ATTACHMENT,
                recipient,
            ),
            f"<p>Pump 3 pressure <b>high</b>: 9.1 bar.</p><p>{CODE}</p>",
        ),
        "web-no-code": mail("web-no-code", "Nobody is named in this mail.\n", None, recipient),
        "web-virus": mail("web-virus", EICAR.decode() + f"\n{CODE}\n", None, recipient),
        "web-hostile": hostile(canary, recipient),
        "web-no-id": without_message_id(
            mail(
                "web-no-id",
                "Level 4.2 m.\nEmail_Rxers_Code:[dave@example.com]:Email_Rxers_Code:\n",
                None,
                recipient,
                sender="tank-level@plant.example.com",
            )
        ),
        "web-html-only": html_only(recipient),
        "web-shared-a": shared("web-shared-a", "erin@example.com", recipient),
        "web-shared-b": shared("web-shared-b", "frank@example.com", recipient),
        "web-camera": camera(recipient),
    }
    with running.smtp(timeout=30) as client:
        for message in mails.values():
            client.send_message(message)
    return mails


def outcomes(browser: Any) -> dict[str, tuple[str, str, str]]:
    """Subject -> (state kind, label, To column), as the mails page shows them now."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(10):  # the list replaces its rows every two seconds
        try:
            return {
                row.find_element(By.CSS_SELECTOR, "td a").text: (
                    row.get_attribute("data-state"),
                    row.find_element(By.CSS_SELECTOR, ".state").text,
                    row.find_element(By.CSS_SELECTOR, "td.recipients").text,
                )
                for row in browser.find_elements(By.CSS_SELECTOR, "tr.mail")
            }
        except StaleElementReferenceException:
            time.sleep(0.1)
    pytest.fail("the mails page kept replacing its rows")


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


def get(running: Running, path: str) -> bytes:
    with urllib.request.urlopen(running.state["web"] + path.lstrip("/"), timeout=30) as response:  # noqa: S310
        return bytes(response.read())


def api(running: Running, path: str) -> Any:
    return json.loads(get(running, path))


def key_of(running: Running, subject: str) -> str:
    (found,) = [m["key"] for m in api(running, "/api/mails")["mails"] if m["subject"] == subject]
    return str(found)


@pytest.fixture(scope="module")
def settled(browser: Any, sent: dict[str, EmailMessage]) -> dict[str, tuple[str, str, str]]:
    """Subject -> (state, label, To) once every mail is distributed or notified, read without a reload."""
    final = {"distributed", "notice"}
    subjects = {f"reading {name}" for name in sent}

    def done() -> dict[str, tuple[str, str, str]] | None:
        now = outcomes(browser)
        return now if subjects <= set(now) and all(now[s][0] in final for s in subjects) else None

    shown: dict[str, tuple[str, str, str]] = wait_for(done, "the mails' outcomes on the mails page")
    return shown


STORM_CODE = f"Email_Rxers_Code:[{','.join(STORM_RECIPIENTS)}]:Email_Rxers_Code:"


def alarm(subject: str, recipient: str, reading: bytes | None = None) -> EmailMessage:
    """A PLC's alarm to three recipients, its reading attached; no Message-ID, as much firmware sends."""
    message = mail("alarm", f"Reading attached.\n{STORM_CODE}\n", reading, recipient, sender=STORM_SENDER)
    message.replace_header("Subject", subject)
    del message["Message-ID"]
    return message


def send(running: Running, *messages: EmailMessage) -> None:
    """Send the mails and wait until the view shows each of them done (relayed, notified or folded), in
    order: the first mail of an alarm must be decided before its repeats arrive."""
    for message in messages:
        before = api(running, "/api/mails")["total"]
        with running.smtp(timeout=30) as client:
            client.send_message(message)

        def done(before: int = before) -> bool:
            listed = api(running, "/api/mails")
            return bool(
                listed["total"] == before + 1
                and all(m["state"]["kind"] in {"distributed", "notice", "folded"} for m in listed["mails"])
            )

        wait_for(done, f"{message['Subject']!r} done")


@dataclass
class Storm:
    running: Running


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storm]:
    """A sandbox of its own (the template's numbers: the first digest is due ten minutes after an alarm,
    after these tests): a pump's storm (the first alarm and five repeats, each with its reading attached;
    the first with an HTML part too, so that recipients get its mute links as links to click), and a tank
    alarm that recovers after one repeat (which goes out in a last digest just before the recovery)."""
    tools.require(str(CHROMIUM), str(CHROMEDRIVER))
    data = tmp_path_factory.mktemp("sandbox-storm")
    with launch(data, "--batch-window", "0") as running:
        recipient = running.state["smtp"]["recipients"][0]
        pump = [alarm(PUMP.format(n), recipient, f"t,bar\n{n},9.{n}\n".encode()) for n in range(REPEATS + 1)]
        with_html(pump[0], f"<p>Pump 3 pressure <b>9.0 bar</b>: reading attached.</p><p>{STORM_CODE}</p>")
        send(running, *pump, *(alarm(subject, recipient) for subject in TANK))
        yield Storm(running)


def pump_incident(running: Running) -> str:
    (first,) = [m for m in api(running, "/api/mails")["mails"] if m["subject"] == PUMP.format(0)]
    return str(first["folding"]["incident"])


def whole_page_screenshot(browser: Any, path: Path, width: int | None = None) -> None:
    """The page at the browser's width (or `width`) and its own height (the README's pictures)."""
    size = browser.get_window_size()
    try:
        if width is not None:
            browser.set_window_size(width, size["height"])
        chrome = size["height"] - browser.execute_script("return window.innerHeight")
        height = browser.execute_script(
            "const b = document.body; return Math.ceil(b.getBoundingClientRect().bottom"
            " + parseFloat(getComputedStyle(b).marginBottom))"
        )
        browser.set_window_size(width or size["width"], min(height + chrome, 3000))
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_the_mails_page_shows_every_mail_with_what_became_of_it(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    assert settled["reading web-attachment"] == (
        "distributed",
        "distributed to 2, 1 link",
        "alice@example.com, bob@example.org",
    )
    assert settled["reading web-no-code"][:2] == ("notice", "notice: no_recipients")
    assert settled["reading web-virus"][:2] == ("notice", "notice: virus")
    assert settled["reading web-hostile"][:2] == ("distributed", "distributed to 2, 0 links")
    assert settled["reading web-html-only"] == (
        "distributed",
        "distributed to 1, 0 links",
        "carol@example.com",
    )
    # The console counts the relay's links as the view does: the URL in the body is the sender's.
    (line,) = [x for x in running.output().splitlines() if x.startswith("sent     'reading web-attachment'")]
    assert "(1 link) -> outbox/" in line
    browser.save_screenshot(str(DOCS / "sandbox-mails.png"))


def test_a_storms_repeats_are_folded_and_each_mail_shows_its_incident(browser: Any, storm: Storm) -> None:
    from selenium.webdriver.common.by import By

    running = storm.running
    incident = pump_incident(running)
    listed = {m["subject"]: m for m in api(running, "/api/mails")["mails"]}
    assert listed[PUMP.format(0)]["folding"]["decision"] == "first"
    assert listed[PUMP.format(0)]["state"]["kind"] == "distributed"
    for n in range(1, REPEATS + 1):
        assert listed[PUMP.format(n)]["state"]["label"] == f"folded into {incident}"
        assert listed[PUMP.format(n)]["folding"] == {
            "decision": "fold",
            "incident": incident,
            "urls": {
                "page": f"/incident?id={incident}",
                "api": f"/api/incident?id={incident}",
                "mails": f"/?q={incident}",
            },
        }
    assert listed[TANK[2]]["folding"]["decision"] == "recovery"
    assert listed[TANK[2]]["state"]["kind"] == "distributed"

    browser.get(running.state["web"])
    shown = wait_for(lambda: outcomes(browser), "the storm's mails on the mails page")
    for n in range(1, REPEATS + 1):  # sent to no one; folded into the pump's incident
        assert shown[PUMP.format(n)] == ("folded", f"folded into {incident}", "none")
    (tag,) = browser.find_elements(
        By.CSS_SELECTOR, f'tr.mail a.incident[data-fold="first"][href$="{incident}"]'
    )
    assert tag.text == f"first mail of {incident}"
    assert search_for(browser, running, "state:folded") == {*(PUMP.format(n) for n in range(1, 6)), TANK[1]}
    assert search_for(browser, running, incident) == {PUMP.format(n) for n in range(REPEATS + 1)}

    open_mail(browser, running, PUMP.format(3))
    assert browser.find_element(By.ID, "state").text == f"folded into {incident}"
    assert browser.find_elements(By.CSS_SELECTOR, "section.relayed") == []  # nothing was sent for it
    browser.find_element(By.CSS_SELECTOR, "#folding a.incident").click()
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == PUMP.format(0), "the incident's page")
    assert browser.find_element(By.ID, "incident-id").text == incident
    events = browser.find_elements(By.CSS_SELECTOR, "table.timeline tr.event")
    assert [e.get_attribute("data-kind") for e in events] == ["first"] + ["folded"] * REPEATS
    events[3].find_element(By.CSS_SELECTOR, "td a").click()  # a folded mail's page, from its incident
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == PUMP.format(3), "the folded mail's page")


def test_a_mail_without_a_message_id_and_two_sharing_one_each_show_their_own_outcome(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    assert settled["reading web-no-id"] == ("distributed", "distributed to 1, 0 links", "dave@example.com")
    assert settled["reading web-shared-a"] == ("distributed", "distributed to 1, 0 links", "erin@example.com")
    assert settled["reading web-shared-b"] == (
        "distributed",
        "distributed to 1, 0 links",
        "frank@example.com",
    )
    open_mail(browser, running, "reading web-no-id")
    assert browser.find_element(By.ID, "state").text == "distributed to 1, 0 links"
    assert "none" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text  # no Message-ID, said so
    (section,) = browser.find_elements(By.CSS_SELECTOR, "section.relayed")
    assert section.find_element(By.CSS_SELECTOR, ".recipients").text == "dave@example.com"
    browser.get(running.state["web"] + "status")
    shown = browser.find_element(By.CSS_SELECTOR, "ul.counts").text
    assert "accepted" not in shown  # nothing stays "being processed"


def search_for(browser: Any, running: Running, query: str) -> set[str]:
    """Types the query into the header's labelled box; the subjects the list then shows."""
    from selenium.webdriver.common.by import By

    browser.get(running.state["web"] + "status")  # any page: the box is in the header
    box = browser.find_element(By.ID, "search")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=search]").text == "Search mails"
    box.send_keys(query + "\n")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text.startswith("Mails matching"), "the results")
    return set(outcomes(browser))


def test_the_search_finds_a_mail_by_sender_subject_word_body_word_and_annotation(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    assert search_for(browser, running, "tank-level") == {"reading web-no-id"}  # the sender
    assert search_for(browser, running, "web-hostile") == {"reading web-hostile"}  # a subject word
    assert search_for(browser, running, "overflow") == {"reading web-html-only"}  # a word of the HTML body
    assert search_for(browser, running, "to:erin") == {"reading web-shared-a"}  # a recipient
    assert search_for(browser, running, "pump -virus has:attachment") == {"reading web-attachment"}
    assert search_for(
        browser, running, 'annotation.outcome = "fallback" AND annotation.reason = "virus"'
    ) == {"reading web-virus"}
    assert api(running, "/api/mails?q=" + quote("overflow"))["total"] == 1


def test_the_json_api_and_the_pages_agree(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    listed = api(running, "/api/mails")
    browser.get(running.state["web"])
    rows = outcomes(browser)
    assert rows == {
        m["subject"]: (m["state"]["kind"], m["state"]["label"], ", ".join(m["recipients"]) or "none")
        for m in listed["mails"]
    }
    assert listed["total"] == len(rows) >= len(SUBJECTS)
    keys = [row.get_attribute("data-key") for row in browser.find_elements(By.CSS_SELECTOR, "tr.mail")]
    assert keys == [m["key"] for m in listed["mails"]]  # newest first, both
    one = api(running, f"/api/mail?key={quote(key_of(running, 'reading web-attachment'), safe='')}")
    open_mail(browser, running, "reading web-attachment")
    shown = [
        (
            row.find_element(By.CSS_SELECTOR, "a.attachment").get_attribute("href"),
            row.get_attribute("data-state"),
        )
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.link")
    ]
    assert shown == [(link["url"], link["state"]) for sent in one["relayed"] for link in sent["links"]]
    assert [(link["name"], link["state"], link["status"]) for link in one["relayed"][0]["links"]] == [
        ("reading.bin", "active", 302)
    ]
    assert browser.find_element(By.TAG_NAME, "main").get_attribute("data-version") == one["version"]


def test_the_attachment_link_downloads_the_original_bytes_and_the_trace_shows_the_calls(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
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
    assert "active until " in browser.find_element(By.CSS_SELECTOR, "tr.link .link-state").text
    browser.save_screenshot(str(DOCS / "sandbox-mail.png"))
    browser.find_element(By.CSS_SELECTOR, "label[for=received-headers]").click()
    headers = browser.find_elements(By.CSS_SELECTOR, "section.received table.headers tr.ses th")
    assert [h.text for h in headers][:2] == ["Return-Path", "Received"]

    link = browser.find_element(By.CSS_SELECTOR, "a.attachment")
    # The sandbox's download server, as the relay's links point at the download function in AWS.
    assert urlsplit(link.get_attribute("href")).netloc == urlsplit(running.state["download"]["url"]).netloc
    link.click()
    target = browser.downloads / "reading.bin"
    wait_for(lambda: target.exists() and target.read_bytes() == ATTACHMENT, "the downloaded attachment")


def test_a_camera_snapshot_shows_as_a_preview_that_links_to_the_full_size_file(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    assert settled["reading web-camera"] == ("distributed", "distributed to 1, 1 link", "guard@example.com")
    key = key_of(running, "reading web-camera")
    ((link,),) = [sent["links"] for sent in api(running, f"/api/mail?key={quote(key, safe='')}")["relayed"]]
    assert (link["name"], link["state"]) == (SNAPSHOT_NAME, "active")
    open_mail(browser, running, "reading web-camera")
    frame = browser.find_element(By.CSS_SELECTOR, "section.relayed iframe.html")
    assert frame.is_displayed()  # the HTML tab is the one open
    frame_url = frame.get_attribute("src")
    browser.switch_to.frame(frame)
    try:
        (preview,) = browser.find_elements(By.TAG_NAME, "img")
        natural = wait_for(
            lambda: browser.execute_script(
                "const i = arguments[0]; return i.complete && i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight]",
                preview,
            ),
            "the preview loaded in the frame",
        )
        assert natural == [640, 360]  # 1920 x 1080 at most 640 on the long side: decoded, not broken
        assert (preview.get_attribute("width"), preview.get_attribute("height")) == ("640", "360")
        assert preview.get_attribute("alt") == SNAPSHOT_NAME
        assert preview.is_displayed()
        assert preview.size["width"] > 0
        assert preview.size["height"] > 0
        source = urlsplit(preview.get_attribute("src"))  # cid: resolved by the view, nowhere else
        assert (source.netloc, source.path) == (urlsplit(running.state["web"]).netloc, "/part")
        wrapper = preview.find_element(By.XPATH, "..")
        assert wrapper.tag_name == "a"
        assert wrapper.get_attribute("href") == link["url"]  # the full-size file's download link
    finally:
        browser.switch_to.default_content()
    # Followed as a recipient's mail program follows it: handed to the browser. (Clicked inside the view's
    # frame, the browser would refuse the download: the frame is sandboxed without allow-downloads.)
    browser.get(link["url"])
    target = browser.downloads / SNAPSHOT_NAME
    wait_for(lambda: target.exists() and target.read_bytes() == SNAPSHOT, "the full-size snapshot downloaded")

    # The README's picture: the relayed mail's HTML on its own, as a recipient's mail program shows it.
    size = browser.get_window_size()
    try:
        browser.set_window_size(720, 640)
        browser.get(frame_url)
        img = browser.find_element(By.TAG_NAME, "img")
        wait_for(
            lambda: browser.execute_script("return arguments[0].naturalWidth", img), "the preview, alone"
        )
        chrome = browser.get_window_size()["height"] - browser.execute_script("return window.innerHeight")
        height = browser.execute_script(
            "const b = document.body; return Math.ceil(b.getBoundingClientRect().bottom"
            " + parseFloat(getComputedStyle(b).marginBottom))"
        )
        browser.set_window_size(720, height + chrome)
        browser.save_screenshot(str(DOCS / "sandbox-camera-mail.png"))
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_the_raw_source_downloads_as_eml_and_parses_to_the_mail_sent(
    running: Running, browser: Any, sent: dict[str, EmailMessage], settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    open_mail(browser, running, "reading web-attachment")
    key = key_of(running, "reading web-attachment")
    browser.find_element(By.ID, "eml").click()
    received = browser.downloads / (key.rsplit("/", 1)[-1] + ".eml")
    wait_for(lambda: received.exists() and received.stat().st_size > len(ATTACHMENT), "the .eml")
    parsed = email.message_from_bytes(received.read_bytes(), policy=email.policy.default)
    original = sent["web-attachment"]
    assert list(parsed.keys())[:2] == ["Return-Path", "Received"]  # as SES stored it: its block first
    assert parsed["Subject"] == original["Subject"]
    assert parsed["Message-ID"] == original["Message-ID"]
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.splitlines() == original.get_body(("plain",)).get_content().splitlines()  # type: ignore[union-attr]
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content() == ATTACHMENT
    # What the relay sent: its own .eml, with the original's Message-ID and the link instead of the file.
    browser.find_element(By.CSS_SELECTOR, "section.relayed a.eml").click()
    (entry,) = [
        e
        for e in map(json.loads, (running.data / "outbox" / "index.jsonl").open())
        if e["subject"] == original["Subject"]
    ]
    relayed = browser.downloads / entry["file"]
    wait_for(
        lambda: (
            relayed.exists()
            and relayed.read_bytes() == (running.data / "outbox" / entry["file"]).read_bytes()
        ),
        "the relayed .eml",
    )
    out = email.message_from_bytes(relayed.read_bytes(), policy=email.policy.default)
    assert out["X-Original-Message-ID"] == original["Message-ID"]
    assert list(out.iter_attachments()) == []
    # The source shown as text in the browser, and the page's Source tab, are the same bytes.
    assert get(running, f"/raw?key={quote(key, safe='')}") == received.read_bytes()


def test_a_notice_page_shows_the_mail_it_is_about_and_no_healthy_call_is_painted_as_a_failure(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    open_mail(browser, running, "reading web-no-code")
    assert browser.find_element(By.CSS_SELECTOR, "section.notice h2").text == "Notice: no_recipients"
    assert browser.find_element(By.CSS_SELECTOR, "section.received h2").text == "The mail the notice is about"
    assert (
        "Nobody is named in this mail."
        in browser.find_element(By.CSS_SELECTOR, "section.received pre.text").text
    )
    log = browser.find_element(By.CSS_SELECTOR, "details.log pre.json").get_attribute("textContent")
    assert log.startswith("{\n  ")  # pretty-printed
    assert '"reason": "no_recipients"' in log
    # Every mail here ended well: no waterfall row of theirs is painted as failed; the misses the relay
    # expects (the recipients document that does not exist) are marked as expected.
    expected = 0
    for name in SUBJECTS:
        page = get(running, f"/mail?key={quote(key_of(running, f'reading {name}'), safe='')}").decode()
        assert not re.search(r'<tr class="[^"]*\bfailed\b', page), name
        expected += len(re.findall(r'<span class="expected">expected: no recipients document', page))
    assert expected >= 1
    # An HTML-only mail opens on its HTML; its Text tabs say why they are empty.
    open_mail(browser, running, "reading web-html-only")
    for section in ("relayed", "received"):
        panels = browser.find_elements(By.CSS_SELECTOR, f"section.{section} .panel")
        visible = [panel.find_elements(By.TAG_NAME, "iframe") for panel in panels if panel.is_displayed()]
        assert len(visible) == 1, section
        assert visible[0], section  # the panel shown is the HTML one
        hints = [
            hint.get_attribute("textContent")
            for hint in browser.find_elements(By.CSS_SELECTOR, f"section.{section} p.hint")
        ]
        assert any("HTML only" in hint for hint in hints), section


def test_the_hostile_mail_runs_no_script_and_loads_nothing_remote(
    running: Running, browser: Any, canary: Canary, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    browser.get_log("performance")  # what earlier pages requested
    open_mail(browser, running, "reading web-hostile")
    browser.find_element(By.CSS_SELECTOR, "label[for=received-html]").click()
    time.sleep(1)  # time for anything the mail could start
    frames = browser.find_elements(By.CSS_SELECTOR, "iframe.html")
    assert len(frames) == 2  # as recipients see it, and as received
    for frame in frames:
        assert "allow-scripts" not in frame.get_attribute("sandbox")
        assert "allow-same-origin" not in frame.get_attribute("sandbox")
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
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
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
    assert "notice: virus 1" in browser.find_element(By.TAG_NAME, "main").text  # mails by state and reason
    browser.find_element(By.ID, "redrive").click()
    moved = wait_for(lambda: browser.find_element(By.ID, "moved").text, "the redrive's result")
    assert moved.startswith("Moved 1 message(s)")
    browser.get(running.state["web"])
    wait_for(
        lambda: outcomes(browser).get("reading web-dlq", ("",))[0] == "distributed",
        "the redriven mail relayed",
    )


def test_the_mail_page_follows_relayctl_revoke_and_unrevoke_by_itself(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    open_mail(browser, running, "reading web-attachment")
    link = browser.find_element(By.CSS_SELECTOR, "a.attachment").get_attribute("href")
    bucket = ["--attachments-bucket", running.state["environment"]["ATTACHMENTS_BUCKET"]]

    def shown() -> str:
        return str(browser.find_element(By.CSS_SELECTOR, "tr.link .link-state").text)

    relayctl(running, "revoke", *bucket, "--url", link)
    assert wait_for(lambda: shown().startswith("revoked") and shown(), "the page showing the link revoked")
    assert browser.find_element(By.CSS_SELECTOR, "tr.link td.num").text == "410"
    relayctl(running, "unrevoke", *bucket, "--url", link)
    wait_for(lambda: shown().startswith("active until "), "the page showing the link active again")


def test_the_alarms_page_lists_the_storm_with_its_count_and_the_recovered_alarm_with_its_digest(
    browser: Any, storm: Storm
) -> None:
    from selenium.webdriver.common.by import By

    running = storm.running
    incident = pump_incident(running)
    browser.get(running.state["web"] + "alarms")
    assert browser.find_element(By.CSS_SELECTOR, 'header nav a[aria-current="page"]').text == "Alarms"
    (pump,) = browser.find_elements(By.CSS_SELECTOR, "table.open tr.incident")
    assert pump.get_attribute("data-incident") == incident
    assert pump.get_attribute("data-state") == "open"
    assert pump.find_element(By.TAG_NAME, "a").text == PUMP.format(0)
    assert [pump.find_element(By.CSS_SELECTOR, f"td.{name}").text for name in ("folded", "digests")] == [
        str(REPEATS),
        "0",  # its first digest is due ten minutes after it opened
    ]
    (shown,) = api(running, "/api/alarms")["open"]
    due = datetime.fromisoformat(shown["next_digest"]) - datetime.fromisoformat(shown["opened"])
    assert due == timedelta(minutes=10)
    (tank,) = browser.find_elements(By.CSS_SELECTOR, "table.closed tr.incident")
    assert [
        tank.find_element(By.CSS_SELECTOR, f"td.{name}").text for name in ("folded", "digests", "how")
    ] == [
        "1",
        "1",
        "recovery",
    ]
    (digest,) = [e for e in outbox(running.data) if e["subject"].startswith("Recovered")]
    assert digest["subject"] == f"Recovered, 1 repeat in a last digest: {TANK[0]}"
    assert sorted(digest["destinations"]) == sorted(STORM_RECIPIENTS)

    tank.find_element(By.TAG_NAME, "a").click()
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == TANK[0], "the tank incident's page")
    events = browser.find_elements(By.CSS_SELECTOR, "table.timeline tr.event")
    assert [e.get_attribute("data-kind") for e in events] == ["first", "folded", "digest", "recovery"]
    assert [e.find_element(By.CSS_SELECTOR, "td a").text for e in events] == [
        TANK[0],
        TANK[1],
        digest["subject"],
        TANK[2],
    ]
    href = events[2].find_element(By.CSS_SELECTOR, "td a").get_attribute("href")
    source = get(running, href.removeprefix(running.state["web"]))
    assert source == (running.data / "outbox" / digest["file"]).read_bytes()  # the digest as sent
    text = email.message_from_bytes(source, policy=email.policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    listed = rf"1\. [-0-9]{{10}} [:0-9]{{8}} UTC  {re.escape(TANK[1])}"
    assert [line for line in text.splitlines() if re.fullmatch(listed, line)]  # the repeat it lists


def relayed(running: Running, subject: str) -> EmailMessage:
    """The one mail the relay sent for `subject`, from the outbox."""
    (entry,) = [e for e in outbox(running.data) if e["subject"] == subject]
    raw = (running.data / "outbox" / entry["file"]).read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def mute_from_the_mail(browser: Any, running: Running, pump: dict[str, Any]) -> datetime:
    """A recipient's two clicks: the "1 hour" link in the first mail as recipients see it (the view's
    frame of its HTML; the link opens a tab, as a mail client hands it to the browser), then the mute
    page's button. Returns the mute's end, as the alarm table has it."""
    from selenium.webdriver.common.by import By

    first = relayed(running, PUMP.format(0))
    sent = mute_links(first)
    assert sorted(sent) == [3600, 8 * 3600, 24 * 3600]
    assert mute_links(first, "html") == sent  # the text part and the HTML part carry the same links
    assert fingerprint_of(sent[3600]) == pump["fingerprint"]

    open_mail(browser, running, PUMP.format(0))
    view = browser.current_window_handle
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "section.relayed iframe.html"))
    try:
        link = browser.find_element(By.LINK_TEXT, "1 hour")
        assert link.get_attribute("href") == sent[3600]
        link.click()
    finally:
        browser.switch_to.default_content()
    (tab,) = wait_for(lambda: [h for h in browser.window_handles if h != view], "the mute page's tab")
    browser.switch_to.window(tab)
    try:
        wait_for(
            lambda: browser.find_element(By.TAG_NAME, "h1").text == "Mute this alarm for 1 hour?",
            "the mute page",
        )
        assert browser.current_url == sent[3600]  # the download server, as the function URL in AWS
        paragraphs = [p.text for p in browser.find_elements(By.TAG_NAME, "p")]
        assert sorted(pump["to"]) == sorted(STORM_RECIPIENTS)
        assert paragraphs[:5] == [
            f"Alarm: {PUMP.format(0)}",
            f"From: {STORM_SENDER}",
            "Recipients: 3, not named here (the mails go out as Bcc)",
            f"Open since {datetime.fromisoformat(pump['opened']):%Y-%m-%d %H:%M} UTC",
            "This link went to all the alarm's recipients, in one mail.",  # three recipients: `to=*`
        ]
        assert "for all its 3 recipients, not only you" in paragraphs[5]
        assert api(running, "/api/alarms")["mutes"] == []  # opening the link muted nothing
        button = browser.find_element(By.CSS_SELECTOR, "form button")
        assert button.text == "Mute for 1 hour"
        whole_page_screenshot(browser, DOCS / "sandbox-mute.png", width=760)

        pressed = datetime.now(UTC).replace(microsecond=0)  # the alarm table keeps whole seconds
        button.click()
        title = wait_for(
            lambda: (t := browser.find_element(By.TAG_NAME, "h1").text).startswith("Muted until ") and t,
            "the mute's confirmation",
        )
        confirmed = datetime.now(UTC)
        (mute,) = api(running, "/api/alarms")["mutes"]
        until = datetime.fromisoformat(mute["until"])
        assert pressed + timedelta(hours=1) <= until <= confirmed + timedelta(hours=1)
        assert (mute["fingerprint"], mute["by"], mute["folded"]) == (pump["fingerprint"], "a recipient", 0)
        shown = f"{until:%Y-%m-%d %H:%M} UTC"
        assert title == f"Muted until {shown}"
        assert (
            f"This alarm is muted until {shown}, for all its 3 recipients."
            in browser.find_element(By.TAG_NAME, "body").text
        )
    finally:
        browser.close()
        browser.switch_to.window(view)
    # The audit line the function wrote: the link's recipient (all), the browser that pressed.
    (audit,) = wait_for(  # read again if the log's last line was being written
        lambda: [line for line in log_lines(running.output()) if line.get("message") == "alarm muted"],
        "the mute's audit line",
    )
    assert (audit["fingerprint"], audit["duration_seconds"], audit["recipient"]) == (
        pump["fingerprint"],
        3600,
        "*",
    )
    assert datetime.fromisoformat(audit["until"]) == until
    assert "Chrome" in audit["user_agent"]
    return until


def test_a_recipient_mutes_the_alarm_from_its_mail_and_the_alarms_page_shows_it_until_unmuted(
    browser: Any, storm: Storm
) -> None:
    from selenium.webdriver.common.by import By

    running = storm.running
    (pump,) = api(running, "/api/alarms")["open"]
    until = mute_from_the_mail(browser, running, pump)

    recipient = running.state["smtp"]["recipients"][0]
    repeats = [PUMP.format(n) for n in range(REPEATS + 1, REPEATS + 1 + MUTED_REPEATS)]
    browser.get(running.state["web"])
    send(running, *(alarm(subject, recipient) for subject in repeats))

    def folded() -> dict[str, tuple[str, str, str]] | None:
        now = outcomes(browser)
        return now if all(now.get(s, ("",))[0] == "folded" for s in repeats) else None

    listed = wait_for(folded, "the repeats folded on the mails page")
    for subject in repeats:  # sent to no one while muted
        assert listed[subject] == ("folded", f"folded into {pump['id']}", "none")

    browser.get(running.state["web"] + "alarms")
    (muted,) = browser.find_elements(By.CSS_SELECTOR, "table.mutes tr.mute")
    assert muted.get_attribute("data-fingerprint") == pump["fingerprint"]
    assert muted.find_element(By.CSS_SELECTOR, "td.by").text == "a recipient"
    assert muted.find_element(By.CSS_SELECTOR, "td.until").text == until.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert muted.find_element(By.CSS_SELECTOR, "td.folded").text == str(MUTED_REPEATS)
    assert muted.find_element(By.TAG_NAME, "a").text == PUMP.format(0)
    (incident,) = browser.find_elements(By.CSS_SELECTOR, "table.open tr.incident")
    assert incident.find_element(By.CSS_SELECTOR, "td.folded").text == str(REPEATS + MUTED_REPEATS)
    assert incident.find_elements(By.CSS_SELECTOR, ".state.muted")
    assert "at the mute's end" in incident.text  # its ten-minute digest held back for the mute's
    whole_page_screenshot(browser, DOCS / "sandbox-alarms.png")

    browser.find_element(By.ID, f"unmute-{pump['fingerprint']}").click()
    wait_for(lambda: browser.switch_to.alert, "the confirmation").accept()
    done = wait_for(lambda: browser.find_element(By.ID, "unmuted").text, "the unmute's result")
    assert (
        done
        == f"Unmuted {pump['fingerprint']}: 1 digest(s) of what the mute folded went out to all its recipients."
    )
    assert browser.find_elements(By.ID, "no-mutes")
    ended = wait_for(
        lambda: [e for e in outbox(running.data) if e["subject"].startswith("Mute ended")],
        "the mute-end digest",
    )
    counted = f"Mute ended, {MUTED_REPEATS} mails folded: {PUMP.format(0)}"
    assert [(e["subject"], sorted(e["destinations"])) for e in ended] == [(counted, sorted(STORM_RECIPIENTS))]
    digest = relayed(running, counted).get_body(("plain",))
    assert digest is not None
    text = digest.get_content().splitlines()
    since = until - timedelta(hours=1)
    assert f"Muted by a recipient at {since:%Y-%m-%d %H:%M:%S} UTC: {MUTED_REPEATS} mails folded." in text
    assert [line for line in text if line.startswith("Unmuted by sandbox web view at ")]
    assert f"Also listed: {REPEATS} repeats folded before the mute and not yet in a digest." in text
    rows = [m[1] for line in text if (m := re.fullmatch(r"\d+\. [-0-9]{10} [:0-9]{8} UTC  (.+)", line))]
    assert rows == [PUMP.format(n) for n in range(1, REPEATS + 1 + MUTED_REPEATS)]
    (shown,) = api(running, "/api/alarms")["open"]
    assert (shown["folded"], shown["muted_until"]) == (REPEATS + MUTED_REPEATS, None)
    assert [d["subject"] for d in shown["digests"]] == [counted]
    # The incident's page: its first mail, the eight folded, and the digest at the mute's end, opened.
    browser.get(running.state["web"] + shown["urls"]["page"].lstrip("/"))
    events = browser.find_elements(By.CSS_SELECTOR, "table.timeline tr.event")
    assert [e.get_attribute("data-kind") for e in events] == ["first"] + ["folded"] * (
        REPEATS + MUTED_REPEATS
    ) + ["digest"]
    events[-1].find_element(By.TAG_NAME, "summary").click()
    assert "Muted by a recipient" in events[-1].find_element(By.CSS_SELECTOR, "pre.text").text
    whole_page_screenshot(browser, DOCS / "sandbox-incident.png")


def test_no_state_changes_without_the_views_own_form(running: Running) -> None:
    key = key_of(running, "reading web-shared-b")
    for path, form in (
        ("redrive", b"token=guessed"),
        ("delete", f"key={key}".encode()),
        ("clear", b""),
        ("unmute", b"fingerprint=0123456789abcdef0123456789abcdef"),
    ):
        url = running.state["web"] + path
        with pytest.raises(urllib.error.HTTPError) as get_refused:
            urllib.request.urlopen(url, timeout=10)  # noqa: S310 - the sandbox's own view
        assert get_refused.value.code == 405
        assert get_refused.value.headers["Allow"] == "POST"
        for headers in ({"Origin": "http://evil.example"}, {"Origin": running.state["web"].rstrip("/")}):
            forged = urllib.request.Request(url, data=form, headers=headers, method="POST")  # noqa: S310
            with pytest.raises(urllib.error.HTTPError) as post:
                urllib.request.urlopen(forged, timeout=10)  # noqa: S310
            assert post.value.code == 403  # a foreign origin, or ours without the page's token
    assert key_of(running, "reading web-shared-b") == key  # still there
    rebound = urllib.request.Request(running.state["web"], headers={"Host": "evil.example"})  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as host:
        urllib.request.urlopen(rebound, timeout=10)  # noqa: S310
    assert host.value.code == 421


def test_delete_removes_one_mail_and_delete_all_the_rest(
    running: Running, browser: Any, settled: dict[str, tuple[str, str, str]]
) -> None:
    from selenium.webdriver.common.by import By

    key = key_of(running, "reading web-shared-a")
    open_mail(browser, running, "reading web-shared-a")
    (file,) = [
        e["file"]
        for e in map(json.loads, (running.data / "outbox" / "index.jsonl").open())
        if e["subject"] == "reading web-shared-a"
    ]
    browser.find_element(By.ID, "delete").click()
    wait_for(lambda: browser.switch_to.alert, "the confirmation").accept()
    assert (
        wait_for(lambda: browser.find_element(By.ID, "deleted").text, "the deletion") == "Deleted 1 mail(s)."
    )
    assert "reading web-shared-a" not in outcomes(browser)
    assert "reading web-shared-b" in outcomes(browser)  # its Message-ID twin stays
    assert not (running.data / "outbox" / file).exists()
    with pytest.raises(urllib.error.HTTPError) as gone:
        get(running, f"/api/mail?key={quote(key, safe='')}")
    assert gone.value.code == 404

    browser.find_element(By.ID, "clear").click()
    wait_for(lambda: browser.switch_to.alert, "the confirmation").accept()
    deleted = wait_for(lambda: browser.find_element(By.ID, "deleted").text, "the deletion of all")
    assert deleted == f"Deleted {len(SUBJECTS)} mail(s)."  # the eight of SUBJECTS left, and the redriven one
    assert api(running, "/api/mails") == {"query": "", "total": 0, "mails": []}
    assert (running.data / "outbox" / "index.jsonl").read_text() == ""
    assert list((running.data / "notices").glob("*.json")) == []


def test_a_sandbox_with_previews_off_relays_the_snapshot_as_its_link_only(tmp_path: Path) -> None:
    """`--param InlinePreviews=off` reaches the function: the same camera mail comes out as text and a link,
    and the view shows it so."""
    with launch(tmp_path, "--param", "InlinePreviews=off", "--batch-window", "0") as running:
        assert running.state["environment"]["INLINE_PREVIEWS"] == "off"
        with running.smtp(timeout=30) as client:
            client.send_message(camera(running.state["smtp"]["recipients"][0]))
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not outbox(tmp_path):
            assert time.monotonic() < deadline, running.output()[-4000:]
            time.sleep(0.1)
        (entry,) = outbox(tmp_path)
        relayed = email.message_from_bytes(
            (tmp_path / "outbox" / entry["file"]).read_bytes(), policy=email.policy.default
        )
        assert relayed.get_content_type() == "text/plain"  # no HTML part made for a preview
        assert [part for part in relayed.walk() if part.get_content_maintype() == "image"] == []
        (link,) = entry["links"]
        assert urlsplit(link).path.endswith("/" + SNAPSHOT_NAME)
        assert link in relayed.get_content()
        with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's endpoint
            assert response.read() == SNAPSHOT
        page = get(running, f"/mail?key={quote(key_of(running, 'reading web-camera'), safe='')}").decode()
        assert "No HTML part: the relayed mail is text only." in page
