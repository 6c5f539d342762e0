"""Checks a document against CloudWatch's embedded metric format: the schema in tests/fixtures/emf/
(written from the specification) and the rules about target members a schema cannot express."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from sandbox.metrics import lambda_json_line

__all__ = ["assert_valid_emf", "lambda_json_line"]

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "emf" / "schema.json"


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)  # type: ignore[no-any-return]


def assert_valid_emf(document: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(document), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                value = document.get(name)
                assert isinstance(value, str), f"dimension {name} is not a string member: {value!r}"
                assert 0 < len(value) <= 1024, f"dimension {name}: {value!r}"
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100, metric["Name"]
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values), (
                f"metric {metric['Name']} is not numeric: {value!r}"
            )
