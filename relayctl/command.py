"""What a relayctl command is: its name and help, the resources it finds (`relayctl.resources`), the
options it owns and what runs it. Each command module declares its own; `relayctl.cli` only lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from relayctl.aws import Aws
from relayctl.report import Report


def _no_options(parser: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace, Aws], Report]
    resources: tuple[str, ...] = ()  # relayctl.resources.RESOURCES keys whose options its help shows
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_options


def positive(text: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value
