"""Does SES vouch for the sender? DMARC's relaxed alignment over what SES reported (`app.mail.ses_block`).

A passing DKIM signature or SPF check counts for the `From` domain only if its domain is that domain or
shares its registrable domain (the Public Suffix List, as shipped with the `tld` package), or SES's
DMARC check passed for that very domain. The policy only: the header syntax is `app.mail.authres_parser`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tld import get_fld

from app.mail.authres_parser import Result
from app.mail.ses_block import SesReport

_DOMAIN_PROPERTIES = {
    "dkim": ("header.d", "header.i"),
    "spf": ("smtp.mailfrom", "envelope-from"),  # SES writes envelope-from
    "dmarc": ("header.from",),
}


@dataclass(frozen=True)
class Verification:
    authenticated: bool
    summary: str  # what SES reported, for the notice: "spf=pass (amazonses.com), dkim=none, dmarc=none"


def verify(report: SesReport, sender_domain: str) -> Verification:
    """Does SES vouch for mail from `sender_domain`? (aligned DKIM or SPF pass, or DMARC pass for it)"""
    authenticated = any(_vouches(result, sender_domain) for result in report.results)
    return Verification(authenticated, summary(report.results))


def aligned(domain: str, other: str) -> bool:
    """DMARC relaxed alignment: the same domain, or one a subdomain of the other, same registrable domain."""
    domain, other = _normal(domain), _normal(other)
    if not domain or not other:
        return False
    if domain == other:
        return True
    if not (domain.endswith("." + other) or other.endswith("." + domain)):
        return False
    registrable = _registrable(domain)
    return registrable is not None and registrable == _registrable(other)


def summary(results: Iterable[Result]) -> str:
    parts = []
    for result in results:
        domain = _result_domain(result)
        parts.append(f"{result.method}={result.result}" + (f" ({domain})" if domain else ""))
    return ", ".join(parts) or "no authentication results"


def _vouches(result: Result, sender_domain: str) -> bool:
    if result.result != "pass":
        return False
    domain = _result_domain(result)
    if domain is None:
        return False
    if result.method == "dmarc":
        return _normal(domain) == _normal(sender_domain)
    return result.method in ("dkim", "spf") and aligned(domain, sender_domain)


def _result_domain(result: Result) -> str | None:
    """The domain a result is about: DKIM's signing domain, SPF's MAIL FROM domain, DMARC's From domain."""
    for key in _DOMAIN_PROPERTIES.get(result.method, ()):
        value = result.properties.get(key, "").strip().strip("<>")
        if value:
            return value.rpartition("@")[2].lower() or None
    return None


def _registrable(domain: str) -> str | None:
    value = get_fld(domain, fix_protocol=True, fail_silently=True)
    return str(value).lower() if value else None


def _normal(domain: str) -> str:
    return domain.strip().strip(".").lower()
