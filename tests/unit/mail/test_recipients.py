from __future__ import annotations

import pytest

from app.mail.parse import TextBody
from app.mail.recipients import extract, remove_codes

RELAY = "inbox@relay.example.com"


def plain(text: str) -> list[TextBody]:
    return [TextBody("plain", text)]


def test_code_brackets_are_not_part_of_the_addresses() -> None:
    found = extract(plain("x Email_Rxers_Code:[a@example.com,b@example.org]:Email_Rxers_Code: y"), RELAY)
    assert found.valid == ("a@example.com", "b@example.org")


def test_separators_whitespace_names_and_case_dedupe() -> None:
    text = 'Email_Rxers_Code:[ a@example.com ;\n "Bob B" <B@Example.org>,\tA@EXAMPLE.com; b@example.org ]:Email_Rxers_Code:'
    found = extract(plain(text), RELAY)
    assert found.valid == ("a@example.com", "b@example.org")
    assert found.invalid == ()


def test_relay_address_is_dropped_silently() -> None:
    found = extract(plain(f"Email_Rxers_Code:[{RELAY.upper()}, a@example.com]:Email_Rxers_Code:"), RELAY)
    assert found.valid == ("a@example.com",)
    assert found.invalid == ()


@pytest.mark.parametrize(
    "entry",
    [
        "not an address",
        "-leading-dash",
        "a@b",
        "a@example.com Bcc: c@example.org",
        "<script>@x",
        "@example.com",
        "a@@example.com",
    ],
)
def test_invalid_entries_are_reported(entry: str) -> None:
    found = extract(plain(f"Email_Rxers_Code:[ok@example.com,{entry}]:Email_Rxers_Code:"), RELAY)
    assert found.valid == ("ok@example.com",)
    assert len(found.invalid) == 1


def test_entries_without_at_are_group_names_in_order_and_deduped() -> None:
    found = extract(
        plain("Email_Rxers_Code:[Boiler-Oncall, a@example.com, boiler-oncall, qa.team_2]:Email_Rxers_Code:"),
        RELAY,
    )
    assert found.entries == ("boiler-oncall", "a@example.com", "qa.team_2")
    assert found.groups == ("boiler-oncall", "qa.team_2")
    assert found.valid == ("a@example.com",)
    assert found.invalid == ()


def test_a_group_name_is_at_most_64_characters() -> None:
    found = extract(plain(f"Email_Rxers_Code:[{'g' * 65}]:Email_Rxers_Code:"), RELAY)
    assert found.invalid == ("g" * 65,)


def test_every_receiving_address_is_dropped() -> None:
    found = extract(
        plain("Email_Rxers_Code:[cam-1@relay.example.com,a@example.com]:Email_Rxers_Code:"),
        [RELAY, "CAM-1@relay.example.com"],
    )
    assert found.entries == ("a@example.com",)


def test_no_code_and_empty_code() -> None:
    assert not extract(plain("nothing here"), RELAY).found
    empty = extract(plain("Email_Rxers_Code:[ , ; ]:Email_Rxers_Code:"), RELAY)
    assert empty.found
    assert empty.valid == ()
    assert empty.invalid == ()


def test_html_is_read_when_no_text_part_has_a_code() -> None:
    bodies = [
        TextBody("plain", "no code in the text part"),
        TextBody("html", "<p>Email_Rxers_Code:[<b>x&#64;example.com</b>]:Email_Rxers_Code:</p>"),
    ]
    assert extract(bodies, RELAY).valid == ("x@example.com",)


def test_text_code_wins_over_html() -> None:
    bodies = [
        TextBody("html", "<p>Email_Rxers_Code:[html@example.com]:Email_Rxers_Code:</p>"),
        TextBody("plain", "Email_Rxers_Code:[text@example.com]:Email_Rxers_Code:"),
    ]
    assert extract(bodies, RELAY).valid == ("text@example.com",)


def test_international_domain_is_sent_as_punycode() -> None:
    found = extract(plain("Email_Rxers_Code:[ops@bücher.example]:Email_Rxers_Code:"), RELAY)
    assert found.valid == ("ops@xn--bcher-kva.example",)


def test_remove_codes() -> None:
    text = "before Email_Rxers_Code:[a@example.com]:Email_Rxers_Code: after"
    assert remove_codes(text) == "before  after"
