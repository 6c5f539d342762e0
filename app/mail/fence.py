"""Allow-lists of addresses for senders and recipients: `a@x.com`, `@x.com`, `@*.x.com`.

`a@x.com` admits that address, `@x.com` every address at that domain (not its subdomains), and
`@*.x.com` every address at any subdomain of x.com (not x.com itself, which needs its own `@x.com`).
Matching ignores case in the local part too: a sensor that writes `Sensor@Plant.example.com` is the
same sender, and no mail system we relay for tells the two apart.
"""

from __future__ import annotations

import re

Fence = tuple[str, ...]  # normalised entries; empty admits everyone

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def parse(text: str) -> Fence:
    """Comma-separated entries, normalised; raises ValueError naming the first bad entry."""
    entries = []
    for raw in text.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry.startswith("@*."):
            domain = _ascii_domain(entry[3:])
            entry = "@*." + domain if domain else ""
        elif entry.startswith("@"):
            domain = _ascii_domain(entry[1:])
            entry = "@" + domain if domain else ""
        else:
            # flanker on first use: the download function reads the settings module but never a fence
            from flanker.addresslib import address

            parsed = address.parse(entry, addr_spec_only=True)
            entry = str(parsed.address).lower() if parsed is not None and parsed.addr_type == "email" else ""
        if not entry:
            raise ValueError(f"{raw.strip()!r} is neither an address, an @domain nor an @*.domain entry")
        entries.append(entry)
    return tuple(dict.fromkeys(entries))


def admits(fence: Fence, addr: str) -> bool:
    """Is `addr` inside the fence? (An empty fence admits nothing here: callers decide what empty means.)"""
    addr = addr.lower()
    domain = addr.rpartition("@")[2]
    for entry in fence:
        if entry.startswith("@*."):
            if domain.endswith("." + entry[3:]):
                return True
        elif entry.startswith("@"):
            if domain == entry[1:]:
                return True
        elif addr == entry:
            return True
    return False


def _ascii_domain(domain: str) -> str | None:
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return ascii_domain if _DOMAIN.match(ascii_domain) else None
