"""The view's actions: each turns a `Request` into a `Response` (a page, a fragment, JSON, a mail's
source or one of its parts). `sandbox.web.routes` says which path runs which; `sandbox.web.server`
carries them over HTTP."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from app.errors import RetryableError
from app.sizes import human_size
from sandbox.web import alarms, api, data, safety, search, traces
from sandbox.web.exchange import Request, Response

HERE = Path(__file__).parent
STATIC = {"style.css": "text/css; charset=utf-8", "view.js": "text/javascript; charset=utf-8"}


def when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
    )
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["frame_sandbox"] = safety.FRAME_SANDBOX
    env.globals["urls"] = api.urls
    env.globals["relayed_urls"] = api.relayed_urls
    env.globals["incident_urls"] = api.incident_urls
    env.globals["digest_urls"] = api.digest_urls
    env.globals["folding_phrase"] = data.FOLDING
    return env


Gather = Callable[[data.Sources, Request], dict[str, Any]]


class NotFound(Exception):
    """What a gather function raises for a page about something that does not exist: a 404 with its text."""


def page(template: str, gather: Gather) -> Callable[[View, Request], Response]:
    """The action of a page that renders `template` with what `gather` finds: a new page is its route
    (`page("alarms.html", alarms_page)` in `routes.ROUTES`), its template and its gather function."""

    def action(view: View, request: Request) -> Response:
        try:
            values = gather(view.sources, request)
        except NotFound as e:
            return Response.text(HTTPStatus.NOT_FOUND, str(e))
        return view.render(template, request, **values)

    return action


def status(sources: data.Sources, request: Request) -> dict[str, Any]:
    """The Status page: the queues and alarms, mails by state (notices by reason), the redrive's result."""
    counts = Counter(
        row.state.label if row.state.kind == "notice" else row.state.kind for row in data.mails(sources)
    )
    return {"status": sources.status(), "counts": sorted(counts.items()), "moved": request.arg("moved")}


def alarms_page(sources: data.Sources, request: Request) -> dict[str, Any]:
    """The Alarms page: incidents open, flapping and closed, active mutes, an unmute's result."""
    book = alarms.book(sources)
    return {
        "book": book,
        "version": api.alarms(book)["version"],
        "unmuted": request.arg("unmuted"),
        "digests": request.arg("digests"),
    }


def incident_page(sources: data.Sources, request: Request) -> dict[str, Any]:
    """One incident's timeline: its first mail, the folded mails, the digests sent, its recovery."""
    found = alarms.timeline(sources, request.arg("id"))
    if found is None:
        raise NotFound("no such incident (closed incidents are kept 30 days)")
    return {"timeline": found, "version": api.timeline(found)["version"]}


class View:
    """What the routes run; one per server."""

    def __init__(
        self, sources: data.Sources, redrive: Callable[[], Any], nav: list[tuple[str, str]] | None = None
    ) -> None:
        self.sources = sources
        self.move_dead_letters = redrive
        self.token = safety.new_token()
        self.templates = environment()
        self.nav = nav or []

    def render(self, name: str, request: Request, **values: Any) -> Response:
        page = self.templates.get_template(name).render(
            token=self.token, nav=self.nav, path=request.path, q=request.arg("q"), **values
        )
        return Response.page(page.encode("utf-8"))

    # -- the mails --------------------------------------------------------------------------------------
    def found(self, query: str) -> tuple[list[data.MailRow], str]:
        """The mails that match the query, newest first, and the query's error ("" when understood)."""
        rows = data.mails(self.sources)
        if not query.strip():
            return rows, ""
        if search.is_annotation_query(query):
            try:
                keys = {hit.incoming_key for hit in traces.search(self.sources.daemon, query)}
            except traces.BadQuery as e:
                return [], str(e)
            return [row for row in rows if row.key in keys], ""
        wanted = search.matcher(query)
        return [row for row in rows if wanted(row)], ""

    def mails(self, request: Request) -> Response:
        rows, error = self.found(request.arg("q"))
        return self.render(
            "mails.html",
            request,
            rows=rows,
            error=error,
            deleted=request.arg("deleted"),
            kept=request.arg("kept"),
        )

    def rows(self, request: Request) -> Response:
        rows, _ = self.found(request.arg("q"))
        return self.render("rows.html", request, rows=rows)

    def mail(self, request: Request) -> Response:
        found = data.one_mail(self.sources, request.arg("key"))
        if found is None:
            return Response.text(HTTPStatus.NOT_FOUND, "no such mail (deleted, or never received)")
        return self.render(
            "mail.html",
            request,
            mail=found,
            version=api.version(found),
            waterfalls=traces.waterfalls(
                self.sources.daemon, found.row.key, self.sources.recipients_document
            ),
            scale=traces.SCALE,
            safe_link=lambda url: safety.safe_link(url, self.sources.endpoint),
            kept=request.arg("kept"),
        )

    def _source(self, request: Request) -> tuple[bytes, str] | None:
        """The bytes of the received mail, or of one it relayed (`sent=FILE`), and a file name for them."""
        key, sent = request.arg("key"), request.arg("sent")
        if sent and not key:  # the relay's own mail about an alarm (a digest) belongs to no received mail
            raw = alarms.digest_file(self.sources, sent)
            return (raw, sent) if raw is not None else None
        if sent:
            raw = data.relayed_file(self.sources, key, sent)
            return (raw, sent) if raw is not None else None
        found = data.received(self.sources, key)
        return (found[0], key.rsplit("/", 1)[-1] + ".eml") if found is not None else None

    def raw(self, request: Request) -> Response:
        """The source as text in the browser, or as an `.eml` download with `download=1`."""
        found = self._source(request)
        if found is None:
            return Response.text(HTTPStatus.NOT_FOUND, "no such mail")
        raw, name = found
        if request.arg("download"):
            return Response.download(raw, "message/rfc822", name)
        return Response(HTTPStatus.OK, raw, "text/plain; charset=utf-8")

    def frame(self, request: Request) -> Response:
        """A mail's HTML for the page's sandboxed frame (see `safety`)."""
        found = self._source(request)
        if found is None:
            return Response.text(HTTPStatus.NOT_FOUND, "no such mail")
        key, sent = request.arg("key"), request.arg("sent")

        def part_url(cid: str) -> str:
            where = f"key={quote(key, safe='')}" + (f"&sent={quote(sent, safe='')}" if sent else "")
            return f"{request.origin}/part?{where}&cid={quote(cid, safe='')}"

        document = safety.frame_document(data.body(data.parse(found[0]), "html"), part_url)
        return Response(HTTPStatus.OK, document.encode("utf-8"), headers=safety.frame_headers(request.origin))

    def part(self, request: Request) -> Response:
        """An image a mail's HTML shows by `cid:`; nothing but an image, and inert on its own."""
        found = self._source(request)
        part = data.content_id_part(data.parse(found[0]), request.arg("cid")) if found else None
        if part is None or part.get_content_type() not in safety.INLINE_IMAGES:
            return Response.text(HTTPStatus.NOT_FOUND, "no such image in this mail")
        payload = part.get_payload(decode=True)
        body = payload if isinstance(payload, bytes) else b""
        return Response(
            HTTPStatus.OK,
            body,
            part.get_content_type(),
            {"Content-Security-Policy": safety.PART_POLICY},
        )

    # -- the JSON API -------------------------------------------------------------------------------------
    def api_mails(self, request: Request) -> Response:
        rows, error = self.found(request.arg("q"))
        if error:
            return Response.json({"error": error}, HTTPStatus.BAD_REQUEST)
        return Response.json(api.mails(rows, request.arg("q")))

    def api_mail(self, request: Request) -> Response:
        found = data.one_mail(self.sources, request.arg("key"))
        if found is None:
            return Response.json({"error": "no such mail"}, HTTPStatus.NOT_FOUND)
        return Response.json(api.mail(found))

    def api_alarms(self, request: Request) -> Response:
        return Response.json(api.alarms(alarms.book(self.sources)))

    def api_incident(self, request: Request) -> Response:
        found = alarms.timeline(self.sources, request.arg("id"))
        if found is None:
            return Response.json({"error": "no such incident"}, HTTPStatus.NOT_FOUND)
        return Response.json(api.timeline(found))

    # -- traces and status ---------------------------------------------------------------------------------
    def traces(self, request: Request) -> Response:
        query = request.arg("q")
        try:
            hits, error = traces.search(self.sources.daemon, query), ""
        except traces.BadQuery as e:
            hits, error = [], str(e)
        subjects = {row.key: row.subject or "(no subject)" for row in data.mails(self.sources)}
        return self.render("traces.html", request, hits=hits, error=error, subjects=subjects)

    def static(self, request: Request) -> Response:
        name = request.path.removeprefix("/static/")
        if name not in STATIC:
            return Response.text(HTTPStatus.NOT_FOUND, "not found")
        return Response(HTTPStatus.OK, (HERE / "static" / name).read_bytes(), STATIC[name])

    # -- changes (POST, checked by the server: the view's own origin and token) ----------------------------
    def redrive(self, request: Request) -> Response:
        moved = self.move_dead_letters()
        return Response.redirect(f"/status?moved={int(moved)}")

    def unmute(self, request: Request) -> Response:
        """End an alarm's mute now (`app.folding.unmute`): its digest of what it folded goes out."""
        fingerprint = request.arg("fingerprint")
        try:
            digests = alarms.unmute(self.sources, fingerprint)
        except LookupError as e:
            return Response.text(HTTPStatus.NOT_FOUND, f"not unmuted: {e}")
        except RetryableError as e:
            return Response.text(HTTPStatus.SERVICE_UNAVAILABLE, f"not unmuted, try again: {e}")
        return Response.redirect(f"/alarms?unmuted={quote(fingerprint, safe='')}&digests={digests}")

    def delete(self, request: Request) -> Response:
        key = request.arg("key")
        found = data.one_mail(self.sources, key)
        if found is None:
            return Response.text(HTTPStatus.NOT_FOUND, "no such mail")
        if not data.delete(self.sources, [found.row]):
            return Response.redirect(f"/mail?key={quote(key, safe='')}&kept=1")
        return Response.redirect("/?deleted=1")

    def clear(self, request: Request) -> Response:
        rows = data.mails(self.sources)
        deleted = data.delete(self.sources, rows)
        return Response.redirect(f"/?deleted={len(deleted)}&kept={len(rows) - len(deleted)}")
