"""Shared by the sandbox tests: the project's own template, the single source of the sandbox's resources."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
