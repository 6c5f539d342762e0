"""The view's window on alarm folding: the alarm table read through the relay's own adapter
(`app.aws.incidents`), each mail's decision, and the unmute (`app.folding.unmute`).

The sandbox runs the functions in its own process with their environment (`INCIDENTS_TABLE`, the folding
numbers, `AWS_ENDPOINT_URL` at moto), so the view builds the function's settings and ports from it, on
first use: by then the sandbox has set that environment. Tests pass their own settings and ports.

A mail's decision is written once, with the state it changed, and never changes (`Incidents.load_seen`),
so the answer is kept once found, and also once the mail is settled (sent or notified) without one:
folding was off or unavailable for it. The mails list, which the page polls, asks the table only about
mails still on their way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from app import folding
from app.alarms.timeline import Row, Seen
from app.aws.incidents import Incidents, Unavailable
from app.config import Settings, load_settings
from app.handler import build_ports
from app.ports import Ports

log = logging.getLogger("sandbox.web")


class AlarmTable:
    def __init__(self, settings: Settings | None = None, ports: Ports | None = None) -> None:
        self._settings = settings
        self._ports = ports
        self._lock = threading.Lock()
        self._decisions: dict[str, Seen | None] = {}
        self._rows: dict[str, list[Row]] = {}  # fingerprint -> its rows read so far, in seq order

    def _built(self) -> tuple[Settings, Ports]:
        with self._lock:
            if self._settings is None:
                self._settings = load_settings()
            if self._ports is None:
                self._ports = build_ports(self._settings)
            return self._settings, self._ports

    @property
    def incidents(self) -> Incidents | None:
        """The alarm table; None when alarm folding is off (`RepeatFolding=off`)."""
        return self._built()[1].incidents

    def now(self) -> datetime:
        """The time folding decides by (the function's clock)."""
        return self._built()[1].clock()

    def decisions(self, keys: Iterable[str], settled: set[str]) -> dict[str, Seen]:
        """Incoming key -> the decision folding made for the mail, for the mails that have one. A key in
        `settled` (sent or notified) without one is not asked about again."""
        incidents = self.incidents
        if incidents is None:
            return {}
        found: dict[str, Seen] = {}
        for key in keys:
            with self._lock:
                known, seen = key in self._decisions, self._decisions.get(key)
            if not known:
                try:
                    seen = incidents.load_seen(key)
                except Unavailable as e:
                    log.debug("web: the alarm table did not answer for %s: %s", key, e)
                    continue
                if seen is not None or key in settled:
                    with self._lock:
                        self._decisions[key] = seen
            if seen is not None:
                found[key] = seen
        return found

    def rows(self, fingerprint: str, through: int) -> list[Row]:
        """The alarm's folded mails with seq <= `through`, in order. A row never changes once written,
        so only the rows not read before are asked for."""
        incidents = self.incidents
        if incidents is None:
            return []
        with self._lock:
            kept = list(self._rows.get(fingerprint, []))
        if kept and kept[-1].seq > through:  # the alarm was forgotten and began again
            kept = []
        after = kept[-1].seq if kept else 0
        kept += incidents.rows(fingerprint, after, through)
        with self._lock:
            self._rows[fingerprint] = kept
        return kept

    def forget(self, keys: set[str]) -> None:
        """Drop the decisions of deleted mails."""
        with self._lock:
            for key in keys:
                self._decisions.pop(key, None)

    def unmute(self, fingerprint: str, by: str) -> folding.Muted:
        """End the alarm's mute now, as `relayctl alarms unmute` does: the digest of what it folded goes
        out. Raises LookupError for an unknown alarm or when folding is off."""
        settings, ports = self._built()
        return folding.unmute(fingerprint, by, settings, ports)
