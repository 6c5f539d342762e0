"""Every path the view answers, in one table. A new page is one line here, e.g.
`Route("GET", "/alarms", page("alarms.html", alarms_page), "Alarms")`: with a title, it gets a link in the
header; `page` renders the template with what the gather function (`alarms_page(sources, request) ->
dict`) finds. Every POST is checked by the server before its action runs: it must come from the view's own
page (Origin) and carry the page's token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.web.exchange import Request, Response
from sandbox.web.view import View, alarms_page, incident_page, page, status

Action = Callable[[View, Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # exact, or a prefix when it ends in "/"
    action: Action
    nav: str = ""  # the header link's title; "" for no link
    doc: str = ""

    def matches(self, path: str) -> bool:
        return path == self.path or (
            self.path.endswith("/") and self.path != "/" and path.startswith(self.path)
        )


ROUTES = (
    Route("GET", "/", View.mails, "Mails", "the mails, newest first; ?q= searches (see sandbox.web.search)"),
    Route("GET", "/rows", View.rows, doc="the list's rows, which the page polls"),
    Route("GET", "/mail", View.mail, doc="?key=K: one mail, what the relay sent, notices, log, trace"),
    Route(
        "GET",
        "/raw",
        View.raw,
        doc="?key=K[&sent=FILE][&download=1]: the source, or its .eml (a digest: sent=FILE)",
    ),
    Route("GET", "/frame", View.frame, doc="?key=K[&sent=FILE]: the mail's HTML, for the sandboxed frame"),
    Route("GET", "/part", View.part, doc="?key=K[&sent=FILE]&cid=ID: an image the HTML shows by cid:"),
    Route("GET", "/alarms", page("alarms.html", alarms_page), "Alarms", "incidents, mutes and their unmute"),
    Route("GET", "/incident", page("incident.html", incident_page), doc="?id=ID: one incident's timeline"),
    Route("GET", "/traces", View.traces, "Traces", "?q=: X-Ray filter expressions over annotations"),
    Route("GET", "/status", page("status.html", status), "Status", "queues, alarms, mails by state, redrive"),
    Route("GET", "/api/mails", View.api_mails, doc="the list as JSON (?q= as on the page)"),
    Route("GET", "/api/mail", View.api_mail, doc="?key=K: one mail as JSON"),
    Route("GET", "/api/alarms", View.api_alarms, doc="the Alarms page as JSON"),
    Route("GET", "/api/incident", View.api_incident, doc="?id=ID: one incident's timeline as JSON"),
    Route("GET", "/static/", View.static, doc="the style sheet and the script"),
    Route("POST", "/redrive", View.redrive, doc="move the DLQ's messages back (relayctl's code)"),
    Route("POST", "/unmute", View.unmute, doc="fingerprint=F: end an alarm's mute (app.folding.unmute)"),
    Route("POST", "/delete", View.delete, doc="key=K: delete a finished mail and what was kept of it"),
    Route("POST", "/clear", View.clear, doc="delete every finished mail"),
)

NAV = [(route.path, route.nav) for route in ROUTES if route.nav]


def find(method: str, path: str) -> tuple[Route | None, list[str]]:
    """The route for this request, else None and the methods the path does answer (for a 405)."""
    same_path = [route for route in ROUTES if route.matches(path)]
    for route in same_path:
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route, []
    return None, sorted({route.method for route in same_path})
