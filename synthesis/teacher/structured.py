"""Structured output: a completion either parses as JSON and validates against the request's schema, or the
request is recorded as a failure with the reason. Backends that constrain decoding (vLLM, llama.cpp grammars)
should always pass; unconstrained ones (transformers) are held to the same check."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import jsonschema

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class SchemaViolation(ValueError):
    """The completion is not JSON, or is JSON that does not satisfy the schema."""


def check_schema(schema: dict[str, Any]) -> None:
    """Reject a malformed schema up front (at request-load time), naming what is wrong."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ValueError(f"response_schema is not a valid JSON schema: {e.message}") from e


@lru_cache(maxsize=64)
def _validator(schema_json: str):
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def parse_structured(text: str, schema: dict[str, Any]) -> Any:
    """The JSON value in `text`, validated against `schema`. Small models often wrap JSON in a markdown
    fence, so a fenced block is accepted too; anything else raises SchemaViolation. Raw control characters
    (a literal newline) inside strings are accepted (`strict=False`): llama.cpp's JSON grammar lets them
    through, and they mean what their escapes would."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    value, parse_error = None, None
    for cand in candidates:
        try:
            value = json.loads(cand, strict=False)
            break
        except json.JSONDecodeError as e:
            parse_error = e
    else:
        raise SchemaViolation(f"completion is not JSON ({parse_error}): {text[:200]!r}")
    errors = sorted(
        _validator(json.dumps(schema, sort_keys=True)).iter_errors(value), key=lambda e: list(e.path)
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "<root>"
        raise SchemaViolation(f"JSON does not match schema at {where}: {first.message}")
    return value
