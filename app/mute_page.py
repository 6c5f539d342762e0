"""The mute page: what a mute link in an alarm's mail opens. It is served behind the download links'
function URL (`app.download` hands it every path under /mute), by the same function and role.

**GET never mutes.** Mail security scanners (Safe Links, gateways, link previews) fetch every link in a
mail, so a GET (or HEAD) of a valid link only shows a page: the alarm (subject, sender, how many recipients
and the one the link names, never the others: the mails go out as Bcc; open since when), its mute if one is
active and until when, what the button does (fold its mails for all its recipients for the link's duration;
a recovery still goes out; one digest lists them when the mute ends), and the button. Only the page's POST
mutes: the same signed link (the form posts back to the link's own path and query) plus the page's nonce
(`app.links.page_nonce`: an HMAC of the link's signature and the moment the page was shown, good for
`PAGE_SECONDS`), from a page of this URL (its Origin, or without one its Referer, names this host). A POST
without all that changes nothing and gets a 403 page. A mute is answered 303 See Other to the link's own
page (Post/Redirect/Get), which then shows the active mute, so reloading it never posts again; the redirect
is built from the verified link alone. A page's nonce mutes once: the alarm's mute log keeps a digest of
it, and the same POST again changes nothing (`repeated`, the same 303).

Other answers, each a short page a person understands: a malformed or tampered link 403, an expired one
410, an alarm the table no longer holds 404, any other method 405, `MUTE_LINKS=off` (or folding off) 403
for every request, the table or the keys unreadable 503.

Muting is `app.muting.mute`: the role may read and write the alarm table and nothing else, and sends no
mail (a digest that fell due a moment before the mute waits for the clock's next tick). Every request
writes one JSON log line, never the signature or the nonce; a mute's line is the audit record
(fingerprint, duration, until, the recipient the link names, source IP, user agent, key id) and carries
the `Mutes` metric (EMF, `app.metrics.counts`); a 503's line carries `Downloads` with Outcome
`unavailable`, as a download's does, so that DownloadUnavailableAlarm counts every "Try again" of the URL.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from app import function_url, links, metrics, muting
from app.alarms.timeline import State
from app.aws.incidents import Incidents
from app.config import DownloadSettings
from app.errors import RetryableError
from app.function_url import Request

_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends the form's POST with Origin "null"
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # a button that changes state must not be framed (clickjacking)
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
}
_DURATIONS = {3600: "1 hour", 8 * 3600: "8 hours", 24 * 3600: "24 hours"}


class Keys(Protocol):
    """The link keys (app.aws.link_keys.KeyringSource), re-read for a key id not known yet."""

    def for_kid(self, kid: str) -> links.Keyring: ...


class Answer(StrEnum):
    """What a request got: the log line's `outcome`."""

    PAGE = "page"  # the page with the button
    MUTED = "muted"
    REPEATED = "repeated"  # a POST whose page nonce had muted already: nothing changed
    FORBIDDEN = "forbidden"  # malformed, tampered, unknown or retired key
    EXPIRED = "expired"
    STALE = "stale_page"  # a POST without a valid nonce, or not from a page of this URL
    UNKNOWN = "unknown_alarm"
    OFF = "off"  # MUTE_LINKS=off or alarm folding off
    NOT_ALLOWED = "method_not_allowed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Response:
    answer: Answer
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    token: links.MuteToken | None = None
    until: datetime | None = None  # MUTED: the mute's end

    def to_function_url(self, method: str) -> dict[str, Any]:
        return function_url.answer(self.status, self.headers, self.body, method)


def respond(
    request: Request,
    settings: DownloadSettings,
    keys: Keys,
    table: muting.Table | None,
    now: datetime,
) -> Response:
    """What one request gets; raises RetryableError when the keys or the alarm table cannot be read."""
    if request.method not in {"GET", "HEAD", "POST"}:
        text = "A mute link is opened in a browser; its page has the button."
        return _page(Answer.NOT_ALLOWED, 405, "Not allowed", [text], extra={"Allow": "GET, HEAD, POST"})
    if settings.muting is None or table is None:
        text = "This relay does not take mutes from mail links. Its operator can mute an alarm."
        return _page(Answer.OFF, 403, "Muting is turned off", [text])
    policy = settings.muting.policy
    token = links.parse_mute(request.raw_path, request.raw_query)
    if token is None:
        return _refused()
    keyring = keys.for_kid(token.kid)
    verdict = links.verify_mute(keyring, token, now.timestamp())
    if verdict is links.Verdict.FORBIDDEN:
        return _refused(token)
    if verdict is links.Verdict.EXPIRED:
        text = (
            f"This mute link expired on {_time(datetime.fromtimestamp(token.expires, UTC))}."
            " The alarm's newer mails and digests carry links that still work."
        )
        return _page(Answer.EXPIRED, 410, "Link expired", [text], token=token)
    stored = table.load(token.fingerprint)
    if stored is None:
        return _unknown(token)
    if request.method != "POST":
        return _confirmation(stored.state, token, keyring, now)
    nonce = _from_the_page(request, keyring, token, now)
    if nonce is None:
        text = (
            "Nothing was muted: this page is older than a quarter of an hour, or the request did not come"
            " from it. Open the link from the mail again and press the button."
        )
        return _page(Answer.STALE, 403, "Open the link again", [text], token=token)
    by = token.to if token.to != links.ANY_RECIPIENT else "a recipient"
    until = now + timedelta(seconds=token.seconds)
    source = f"mute link from {request.source_ip or 'an unknown address'}"
    try:
        changed = muting.mute(table, token.fingerprint, until, by, policy, lambda: now, source, nonce)
    except LookupError:
        return _unknown(token)
    muted = _muted(changed.state, token, now)
    return replace(muted, answer=Answer.REPEATED, until=None) if changed.repeated else muted


def link_path(token: links.MuteToken) -> str:
    """The link's path and query, rebuilt from the verified token alone: the form's action and the
    redirect after a mute (relative, so nothing a request sends, not even its Host, can point it away)."""
    return f"{links.MUTE_PATH}{token.fingerprint}?{token.query}"


def log_record(request: Request, response: Response, now: datetime, namespace: str) -> dict[str, Any]:
    """The request's log line; a mute's carries the `Mutes` metric. Never the signature or the nonce."""
    token = response.token
    record: dict[str, Any] = {
        "level": "WARNING" if response.status >= 500 else "INFO",
        "message": "alarm muted" if response.answer is Answer.MUTED else f"mute page {response.answer}",
        "outcome": str(response.answer),
        "status": response.status,
        "method": request.method,
        "fingerprint": token.fingerprint if token else None,
        "duration_seconds": token.seconds if token else None,
        "recipient": token.to if token else None,  # the one the link names; "*": the alarm's recipients
        "kid": token.kid if token else None,
        "until": response.until.isoformat() if response.until else None,
        "source_ip": request.source_ip,
        "user_agent": request.user_agent,
    }
    if response.answer is Answer.MUTED:
        record |= metrics.counts(namespace, {"Mutes": 1}, now)
    elif response.answer is Answer.UNAVAILABLE:
        record |= _unavailable(namespace, now)
    return record


def _unavailable(namespace: str, now: datetime) -> dict[str, Any]:
    """A "Try again" page counts as the download links' do (`Downloads`, Outcome `unavailable`, as
    `app.download.log_record` writes it): DownloadUnavailableAlarm watches the URL, not one path."""
    metric = {
        "Namespace": namespace,
        "Dimensions": [["Outcome"]],
        "Metrics": [{"Name": "Downloads", "Unit": "Count"}],
    }
    emf = {"Timestamp": int(now.timestamp() * 1000), "CloudWatchMetrics": [metric]}
    return {"_aws": emf, "Outcome": str(Answer.UNAVAILABLE), "Downloads": 1}


def handle(
    event: dict[str, Any], settings: DownloadSettings, keys: Keys, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One request under /mute: the function URL's answer and the log lines to write (never raises
    for what a request holds; the table or the keys failing is a 503 page)."""
    request = Request.from_event(event)
    lines: list[dict[str, Any]] = []
    try:
        response = respond(request, settings, keys, _table(settings), now)
    except RetryableError as e:
        text = "The relay cannot mute right now. Try again in a minute."
        response = _page(Answer.UNAVAILABLE, 503, "Try again", [text], extra={"Retry-After": "30"})
        lines.append({"level": "ERROR", "message": "mute page unavailable", "error": str(e)})
    lines.append(log_record(request, response, now, settings.metrics_namespace))
    return response.to_function_url(request.method), lines


def _table(settings: DownloadSettings) -> muting.Table | None:
    return _incidents(settings.muting.table) if settings.muting is not None else None


@cache
def _incidents(table: str) -> Incidents:
    return Incidents(table)


def reset() -> None:
    """Forget the alarm table adapter a container keeps (tests start a fresh account each time)."""
    _incidents.cache_clear()


# ---------------------------------------------------------------- the pages
def _confirmation(state: State, token: links.MuteToken, keyring: links.Keyring, now: datetime) -> Response:
    """The page with the button; with a mute active it leads with it (as after a mute's redirect)."""
    issued = int(now.timestamp())
    nonce = links.page_nonce(keyring, token, issued)
    duration = _DURATIONS[token.seconds]
    e = html.escape
    paragraphs = [*_facts(state, token, now), *_what_it_does(state, duration)]
    title = f"Mute this alarm for {duration}?"
    if state.mute is not None and state.mute.until > now:
        title = f"Muted until {_time(state.mute.until)}"
        everyone = _recipients(len(state.recipients))
        paragraphs.insert(0, f"This alarm is muted until {_time(state.mute.until)}, for all its {everyone}.")
    action = link_path(token)
    form = (
        f'<form method="post" action="{e(action, quote=True)}">'
        f'<input type="hidden" name="issued" value="{issued}">'
        f'<input type="hidden" name="nonce" value="{e(nonce, quote=True)}">'
        f'<button type="submit" style="font-size: 1.2em; padding: 0.4em 1em">Mute for {e(duration)}</button>'
        "</form>"
    )
    return _page(Answer.PAGE, 200, title, paragraphs, token=token, form=form)


def _muted(state: State, token: links.MuteToken, now: datetime) -> Response:
    """303 See Other to the link's page (Post/Redirect/Get: reloading it shows the mute, never posts
    again); the body says the same for a client that does not follow."""
    mute = state.mute
    until = mute.until if mute is not None else now + timedelta(seconds=token.seconds)
    count = len(state.recipients)
    text = [
        f"This alarm is muted until {_time(until)}, for all its {_recipients(count)}.",
        "Its mails are folded meanwhile, not lost: one digest lists them when the mute ends. A recovery"
        " still goes out at once. Only the relay's operator can end the mute sooner.",
        f"Alarm: {state.incident.subject if state.incident else state.subject}",
    ]
    title = f"Muted until {_time(until)}"
    location = {"Location": link_path(token)}
    return _page(Answer.MUTED, 303, title, text, token=token, extra=location, until=until)


def _facts(state: State, token: links.MuteToken, now: datetime) -> list[str]:
    """What the page states; of the recipients only their number and the one the link names: the mails
    go out as Bcc, and whoever holds a link (a forward, a link scanner) must not learn the others."""
    incident, mute = state.incident, state.mute
    facts = [
        f"Alarm: {incident.subject if incident else state.subject}",
        f"From: {state.sender or 'unknown'}",
        f"Recipients: {len(state.recipients)}, not named here (the mails go out as Bcc)",
        f"Open since {_time(incident.opened_at)}" if incident else "Not open right now.",
    ]
    if mute is not None and mute.until > now:
        facts.append(f"Muted until {_time(mute.until)} (by {mute.last_by}, at {_time(mute.last_at)}).")
    if token.to == links.ANY_RECIPIENT:
        facts.append("This link went to all the alarm's recipients, in one mail.")
    else:
        facts.append(f"This link was sent to {token.to}.")
    return facts


def _what_it_does(state: State, duration: str) -> list[str]:
    everyone = _recipients(len(state.recipients))
    lines = [
        f"Muting folds every mail of this alarm for {duration}, for all its {everyone}, not only you."
        " Nothing is lost: one digest lists the folded mails when the mute ends. A recovery still goes"
        " out at once."
    ]
    if state.mute is not None:
        lines.append("Muting again extends the mute; it never shortens it.")
    return lines


def _refused(token: links.MuteToken | None = None) -> Response:
    text = "This mute link is not valid. Check that it was copied completely from the mail."
    return _page(Answer.FORBIDDEN, 403, "Link not valid", [text], token=token)


def _unknown(token: links.MuteToken) -> Response:
    text = "The relay no longer knows this alarm: it has been quiet for weeks. Nothing was muted."
    return _page(Answer.UNKNOWN, 404, "Alarm not found", [text], token=token)


def _page(
    answer: Answer,
    status: int,
    title: str,
    paragraphs: list[str],
    token: links.MuteToken | None = None,
    extra: dict[str, str] | None = None,
    form: str = "",
    until: datetime | None = None,
) -> Response:
    """A short page: text from the alarm (a sender's subject) is escaped; `form` is markup."""
    e = html.escape
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title></head>\n"
        '<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; padding: 0 1em">'
        f"<h1>{e(title)}</h1>\n"
        + "".join(f"<p>{e(p)}</p>\n" for p in paragraphs)
        + form
        + "\n<p><small>IoT Mail Relay</small></p></body></html>\n"
    )
    return Response(answer, status, {**_PAGE_HEADERS, **(extra or {})}, body, token, until)


# ---------------------------------------------------------------- the POST
def _from_the_page(
    request: Request, keyring: links.Keyring, token: links.MuteToken, now: datetime
) -> str | None:
    """A digest of the page's nonce when the POST carries a valid one from a page of this URL (its
    Origin, or its Referer, names this host); None otherwise. The digest goes to the alarm's mute log,
    so that the same POST mutes once; the nonce itself is kept nowhere."""
    source = request.origin if request.origin and request.origin != "null" else request.referer
    if not source or not request.host or _netloc(source) != request.host:
        return None
    if request.body is None or len(request.body) > function_url.MAX_BODY:
        return None
    try:
        form = parse_qs(request.body.decode("ascii"), strict_parsing=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return None
    if set(form) != {"issued", "nonce"} or any(len(v) != 1 for v in form.values()):
        return None
    issued, nonce = form["issued"][0], form["nonce"][0]
    if not links.page_valid(keyring, token, issued, nonce, now.timestamp()):
        return None
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()[:32]


def _netloc(url: str) -> str | None:
    """The URL's host and port; None for one urlsplit refuses (`http://[`: an unclosed IPv6 bracket)."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return None


def _recipients(count: int) -> str:
    return f"{count} recipient" + ("" if count == 1 else "s")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
