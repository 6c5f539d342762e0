"""The template tests' fixtures: template.yaml decoded, and translated by SAM offline (the helpers are in
tests/support/cloudformation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cloudformation import load_template, translate


@pytest.fixture(scope="session")
def source() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def cfn() -> dict[str, Any]:
    """The translated template: plain CloudFormation."""
    return translate()
