"""What the README promises about attachment names is what `safe_filename` does (How it works, step 5):
the characters it lists become `_`, the kinds of characters it names are removed, names are bounded."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from app.mail.attachments import MAX_NAME_LENGTH, safe_filename

README = Path(__file__).resolve().parents[3] / "README.md"


def _listed() -> set[str]:
    """The characters the README says become `_`: the list before "and the backtick becomes"."""
    text = " ".join(README.read_text("utf-8").split())
    match = re.search(r"each of `([^`]+)` and the backtick becomes `_`", text)
    assert match, "the README no longer lists the characters that become _"
    return set(match.group(1).split()) | {"`"}


def test_exactly_the_listed_characters_become_underscores() -> None:
    listed = _listed()
    printable = {chr(c) for c in range(0x20, 0x7F)} - {"_"}
    replaced = {c for c in printable if safe_filename(f"a{c}b.txt", "text/plain", 1) == "a_b.txt"}
    assert replaced == listed - {"/", "\\"}  # a path separator drops what comes before it instead
    for separator in ("/", "\\"):
        assert safe_filename(f"dir{separator}a.txt", "text/plain", 1) == "a.txt"


@pytest.mark.parametrize(
    "character",
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\u202e",
        "\u200b",
        "\ue000",
    ],  # control, control, DEL, bidi override, format, private use
)
def test_control_format_and_private_use_characters_are_removed(character: str) -> None:
    assert unicodedata.category(character)[0] == "C"
    assert safe_filename(f"re{character}port.pdf", "application/pdf", 1) == "report.pdf"


def test_names_are_bounded_keeping_the_extension_and_never_empty() -> None:
    bounded = safe_filename("x" * 300 + ".csv", "text/csv", 1)
    assert len(bounded) == MAX_NAME_LENGTH
    assert bounded.endswith(".csv")
    assert safe_filename("  ..  ", "image/jpeg", 3) == "attachment-3.jpg"
    assert safe_filename("???", "text/plain", 2) == "attachment-2.txt"
