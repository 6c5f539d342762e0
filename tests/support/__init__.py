"""What the tests share: where things are, the fixture mails, and the helpers in this package's modules
(no test module imports from another; they all import from here)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
FIXTURES = ROOT / "tests" / "fixtures" / "mails"


def fixture_mail(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
