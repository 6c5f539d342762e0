"""What a command hands back: data for `--json`, lines for people, and whether it fully succeeded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def render(self, as_json: bool) -> str:
        return json.dumps(self.data, indent=2, default=str) if as_json else "\n".join(self.lines)


def size_text(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
