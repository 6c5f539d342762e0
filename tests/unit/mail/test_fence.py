from __future__ import annotations

import pytest

from app.mail import fence
from app.mail.header_text import one_line


def test_entries_are_normalised_and_deduplicated() -> None:
    assert fence.parse(" A@X.com, @Example.ORG ,@*.Example.net,, a@x.com") == (
        "a@x.com",
        "@example.org",
        "@*.example.net",
    )
    assert fence.parse("") == ()
    assert fence.parse("@bücher.example") == ("@xn--bcher-kva.example",)


@pytest.mark.parametrize("entry", ["@", "@*.", "@*example.com", "a@", "not an entry", "@exa mple.com"])
def test_bad_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="neither an address"):
        fence.parse(f"ok@example.com, {entry}")


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("ops@example.com", True),
        ("OPS@EXAMPLE.COM", True),
        ("other@example.com", False),
        ("anyone@example.org", True),
        ("anyone@sub.example.org", False),  # @domain is that domain only
        ("anyone@plant.example.net", True),
        ("anyone@a.b.example.net", True),
        ("anyone@example.net", False),  # @*. is subdomains only
        ("anyone@badexample.net", False),
    ],
)
def test_admits(address: str, admitted: bool) -> None:
    entries = fence.parse("ops@example.com, @example.org, @*.example.net")
    assert fence.admits(entries, address) is admitted


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Pump\u00853", "Pump 3"),
        ("a\u2028b\u2029c", "a b c"),
        ("a\r\n b", "a  b"),
        ("inv \u202egpj.exe", "inv gpj.exe"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("  Störung ✓ ", "Störung ✓"),
    ],
)
def test_one_line(value: str, expected: str) -> None:
    assert one_line(value) == expected
    assert len(one_line(value).splitlines()) <= 1
