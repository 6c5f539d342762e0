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
