"""Byte counts as people read them, one spelling for the mail, relayctl and the sandbox."""

from __future__ import annotations

_UNITS = ("KB", "MB", "GB")


def human_size(size: int) -> str:
    """`512 bytes`, `1.5 KB`, `12.0 MB`: binary multiples, one decimal above a kilobyte."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
