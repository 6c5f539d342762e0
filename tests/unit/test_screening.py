"""app/screening.py: the decision about one parsed mail, rule by rule: verdicts, allowed and authenticated
senders, recipient codes, groups and routes, the fence and the cap."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.config import SenderAuth, Settings
from app.mail.authres_parser import Result
from app.mail.parse import Mail, TextBody
from app.mail.ses_block import SesReport
from app.outcomes import Reason
from app.routing.document import Directory
from app.screening import Distribution, Refusal, screen
from tests.support.routing import CAMERA, RELAY, directory

SETTINGS = Settings(
    incoming_bucket="in",
    attachments_bucket="att",
    sender_email="relay@example.com",
    recipient_email="inbox@relay.example.com",
    fallback_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    max_recipients=3,
)


# SES's report for a mail from plant.example.com that passed everything.
PASSING = SesReport(
    spam_verdict="PASS",
    virus_verdict="PASS",
    results=(Result("dkim", "pass", {"header.i": "@plant.example.com"}),),
)


def mail(code: str = "Email_Rxers_Code:[a@example.com]:Email_Rxers_Code:", **changes: object) -> Mail:
    base = Mail(
        message_id="<m@x>",
        sender="sensor@plant.example.com",
        from_header="sensor@plant.example.com",
        subject="s",
        ses=PASSING,
        bodies=(TextBody("plain", code),),
        attachments=(),
    )
    verdicts = {name: changes.pop(name) for name in ("spam_verdict", "virus_verdict") if name in changes}
    if verdicts:
        changes["ses"] = replace(base.ses, **verdicts)  # type: ignore[arg-type]
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"virus_verdict": "FAIL"}, Reason.VIRUS),
        ({"spam_verdict": "FAIL"}, Reason.SPAM),
        ({"virus_verdict": "FAIL", "spam_verdict": "FAIL"}, Reason.VIRUS),
    ],
)
def test_verdicts(changes: dict[str, str], reason: Reason) -> None:
    decision = screen(mail(**changes), SETTINGS)
    assert isinstance(decision, Refusal)
    assert decision.reason is reason


def test_a_gray_or_missing_spam_verdict_is_not_a_failure() -> None:
    assert isinstance(screen(mail(spam_verdict="GRAY"), SETTINGS), Distribution)
    assert isinstance(screen(mail(spam_verdict=None), SETTINGS), Distribution)


@pytest.mark.parametrize("verdict", ["GRAY", "PROCESSING_FAILED", None, "pass?"])
def test_a_virus_verdict_other_than_pass_means_unscanned(verdict: str | None) -> None:
    decision = screen(mail(virus_verdict=verdict), SETTINGS)
    assert isinstance(decision, Refusal)
    assert decision.reason is Reason.UNSCANNED


@pytest.mark.parametrize(
    ("allowed", "sender", "ok"),
    [
        (("sensor@plant.example.com",), "sensor@plant.example.com", True),
        (("@plant.example.com",), "sensor@plant.example.com", True),
        (("@plant.example.com",), "sensor@evil.example.com", False),
        (("@plant.example.com",), "sensor@sub.plant.example.com", False),
        (("@*.example.com",), "sensor@plant.example.com", True),
        (("@*.plant.example.com",), "sensor@plant.example.com", False),
        (("@plant.example.com",), None, False),
        ((), None, True),
    ],
)
def test_allowed_senders(allowed: tuple[str, ...], sender: str | None, ok: bool) -> None:
    decision = screen(mail(sender=sender), replace(SETTINGS, allowed_senders=allowed))
    if ok:
        assert isinstance(decision, Distribution)
    else:
        assert isinstance(decision, Refusal)
        assert decision.reason is Reason.SENDER_NOT_ALLOWED


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("no code at all", Reason.NO_RECIPIENTS),
        ("Email_Rxers_Code:[]:Email_Rxers_Code:", Reason.NO_RECIPIENTS),
        (
            "Email_Rxers_Code:[inbox@relay.example.com]:Email_Rxers_Code:",
            Reason.NO_RECIPIENTS,
        ),  # a loop, dropped
        ("Email_Rxers_Code:[nope, neither]:Email_Rxers_Code:", Reason.INVALID_RECIPIENTS),
        ("Email_Rxers_Code:[a@x.com,b@x.com,c@x.com,d@x.com]:Email_Rxers_Code:", Reason.TOO_MANY_RECIPIENTS),
    ],
)
def test_recipient_refusals(code: str, reason: Reason) -> None:
    decision = screen(mail(code), SETTINGS)
    assert isinstance(decision, Refusal)
    assert decision.reason is reason


def test_partly_invalid_list_is_distributed_and_keeps_the_rejects() -> None:
    decision = screen(mail("Email_Rxers_Code:[a@x.com, bogus, b@x.com]:Email_Rxers_Code:"), SETTINGS)
    assert decision == Distribution(recipients=("a@x.com", "b@x.com"), invalid=("bogus (unknown group)",))


AUTH = replace(SETTINGS, allowed_senders=("@plant.example.com",))


def results(*items: tuple[str, str, dict[str, str]]) -> SesReport:
    return replace(PASSING, results=tuple(Result(method, result, props) for method, result, props in items))


@pytest.mark.parametrize(
    "report",
    [
        results(("dkim", "pass", {"header.i": "@plant.example.com"})),
        results(("dkim", "pass", {"header.d": "mail.plant.example.com"})),  # relaxed alignment
        results(("spf", "pass", {"envelope-from": "bounce@plant.example.com"})),
        results(("spf", "pass", {"smtp.mailfrom": "plant.example.com"})),
        results(("dmarc", "pass", {"header.from": "plant.example.com"})),
    ],
)
def test_an_aligned_pass_authenticates_the_sender(report: SesReport) -> None:
    assert isinstance(screen(mail(ses=report), AUTH), Distribution)


@pytest.mark.parametrize(
    "report",
    [
        results(),
        results(("dkim", "pass", {"header.i": "@amazonses.com"})),  # SES's own signature: any sender has it
        results(("spf", "pass", {"envelope-from": "x@eu-west-1.amazonses.com"})),
        results(("spf", "pass", {"envelope-from": "x@attacker.example"})),  # unaligned envelope domain
        results(("dkim", "fail", {"header.d": "plant.example.com"})),
        results(("spf", "softfail", {"envelope-from": "x@plant.example.com"})),
        results(("dmarc", "pass", {"header.from": "example.com"})),  # DMARC for another domain
        results(("dkim", "pass", {"header.d": "example.com.attacker.example"})),
    ],
)
def test_without_an_aligned_pass_the_sender_is_not_authenticated(report: SesReport) -> None:
    decision = screen(mail(ses=report), AUTH)
    assert isinstance(decision, Refusal)
    assert decision.reason is Reason.SENDER_NOT_AUTHENTICATED
    assert "plant.example.com" in decision.detail


def test_sender_auth_off_matches_the_from_alone() -> None:
    settings = replace(AUTH, sender_auth=SenderAuth.OFF)
    assert isinstance(screen(mail(ses=results()), settings), Distribution)


def test_authentication_is_not_asked_without_an_allow_list() -> None:
    assert isinstance(screen(mail(ses=results()), SETTINGS), Distribution)


@pytest.mark.parametrize(("from_count", "words"), [(0, "no From"), (2, "2 From headers"), (1, "exactly one")])
def test_a_mail_without_one_sender_is_not_allowed(from_count: int, words: str) -> None:
    decision = screen(mail(sender=None, from_count=from_count), AUTH)
    assert isinstance(decision, Refusal)
    assert decision.reason is Reason.SENDER_NOT_ALLOWED
    assert words in decision.detail


FENCED = replace(
    SETTINGS, allowed_recipients=("ops@example.com", "@example.org", "@*.example.net"), max_recipients=3
)


def test_the_fence_passes_the_inside_and_lists_the_refused() -> None:
    code = "Email_Rxers_Code:[ops@example.com, x@example.com, y@example.org, z@plant.example.net, w@example.net]:Email_Rxers_Code:"
    decision = screen(mail(code), FENCED)
    assert decision == Distribution(
        recipients=("ops@example.com", "y@example.org", "z@plant.example.net"),
        invalid=(),
        refused=("x@example.com", "w@example.net"),
    )


def test_a_fence_with_nobody_inside_refuses_the_mail() -> None:
    decision = screen(mail("Email_Rxers_Code:[x@example.com, y@sub.example.org]:Email_Rxers_Code:"), FENCED)
    assert decision == Refusal(
        Reason.RECIPIENT_NOT_ALLOWED,
        "no recipient is inside ALLOWED_RECIPIENTS",
        ("x@example.com", "y@sub.example.org"),
    )


def test_the_cap_counts_the_recipients_inside_the_fence() -> None:
    code = (
        "Email_Rxers_Code:[a@example.org,b@example.org,c@example.org,d@elsewhere.example]:Email_Rxers_Code:"
    )
    decision = screen(mail(code), FENCED)
    assert isinstance(decision, Distribution)
    assert decision.refused == ("d@elsewhere.example",)


def test_the_fence_matches_case_insensitively() -> None:
    decision = screen(mail("Email_Rxers_Code:[OPS@Example.COM]:Email_Rxers_Code:"), FENCED)
    assert decision == Distribution(recipients=("ops@example.com",), invalid=())


# Groups and routes, through `screen`: a code's groups expand, a mail without a code follows the route of
# the address it was received for, and the fence and the cap apply to what expansion produced.

ROUTED = replace(SETTINGS, additional_recipient_emails=(CAMERA,))


def routed_mail(text: str = "", envelope: str | None = RELAY, to: tuple[str, ...] = ()) -> Mail:
    return Mail(
        message_id="<m@x>",
        sender="cam@plant.example.com",
        from_header="cam@plant.example.com",
        subject="s",
        ses=SesReport(spam_verdict="PASS", virus_verdict="PASS", envelope_recipient=envelope),
        bodies=(TextBody("plain", text),) if text else (),
        attachments=(),
        addressed_to=to,
    )


def test_a_code_with_groups_expands() -> None:
    decision = screen(
        routed_mail("Email_Rxers_Code:[boiler-oncall,qa@example.com]:Email_Rxers_Code:"), ROUTED, directory
    )
    assert decision == Distribution(
        ("alice@example.com", "bob@example.org", "qa@example.com"),
        (),
        source="code",
        from_groups=2,
        scopes=("boiler-oncall",),  # whose alarm rules apply to it
    )


def test_a_mail_without_a_code_follows_the_route_of_its_address() -> None:
    decision = screen(routed_mail(envelope=CAMERA), ROUTED, directory)
    assert decision == Distribution(
        ("guard-desk@example.com", "alice@example.com", "yard-lead@example.com"),
        (),
        source="route",
        from_groups=2,
        scopes=(CAMERA, "lobby-security"),  # the route's address first, then the groups it names
    )


def test_with_a_code_the_code_alone_decides() -> None:
    decision = screen(
        routed_mail("Email_Rxers_Code:[qa@example.com]:Email_Rxers_Code:", envelope=CAMERA), ROUTED, directory
    )
    assert isinstance(decision, Distribution)
    assert decision.recipients == ("qa@example.com",)


def test_no_code_and_no_route_is_no_recipients() -> None:
    decision = screen(routed_mail(envelope=RELAY), ROUTED, directory)
    assert isinstance(decision, Refusal)
    assert decision.reason is Reason.NO_RECIPIENTS
    assert RELAY not in decision.detail  # the receiving address is a secret


def test_the_directory_is_not_asked_for_a_code_of_addresses() -> None:
    def unreachable() -> Directory:
        raise AssertionError("no group named: the document is not needed")

    assert isinstance(
        screen(routed_mail("Email_Rxers_Code:[qa@example.com]:Email_Rxers_Code:"), ROUTED, unreachable),
        Distribution,
    )


def test_an_unknown_group_is_an_invalid_entry() -> None:
    decision = screen(
        routed_mail("Email_Rxers_Code:[qa@example.com,ghosts]:Email_Rxers_Code:"), ROUTED, directory
    )
    assert decision == Distribution(("qa@example.com",), ("ghosts (unknown group)",), source="code")


def test_the_fence_and_the_cap_apply_after_expansion() -> None:
    fenced = replace(ROUTED, allowed_recipients=("@example.com",))
    decision = screen(routed_mail("Email_Rxers_Code:[boiler-oncall]:Email_Rxers_Code:"), fenced, directory)
    assert isinstance(decision, Distribution)
    assert decision.recipients == ("alice@example.com",)
    assert decision.refused == ("bob@example.org",)
    big = directory({"groups": {"all": [f"p{i}@example.com" for i in range(4)]}})
    capped = screen(routed_mail("Email_Rxers_Code:[all]:Email_Rxers_Code:"), ROUTED, lambda: big)
    assert isinstance(capped, Refusal)
    assert capped.reason is Reason.TOO_MANY_RECIPIENTS
