from __future__ import annotations

import pytest

from app.mail import fence


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
