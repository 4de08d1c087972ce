"""Payload validation against the official OCPP JSON schemas.

The schemas are the ones the ``ocpp`` package ships (``ocpp/v16/schemas``,
``ocpp/v201/schemas``, ``ocpp/v21/schemas``). Each is compiled twice, once per
action and direction, on first use:

* with ``jsonschema-rs`` (a compiled validator), which decides whether a payload is valid
  in well under a microsecond for a periodic TransactionEvent, about ten times faster than
  generated Python code; every valid payload stops there;
* with ``fastjsonschema``, into a plain Python function, which runs only for a payload the
  first one refused, to name the broken rule: its error messages, rules and paths are the ones
  the CALLERROR carries. Should it accept what the first refused, the payload is accepted.

Neither fills in defaults: payloads reach the decoders as the charger sent them, and the
decoders apply the spec's defaults themselves.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Callable

import fastjsonschema
import jsonschema_rs

from .ocppj import ErrorKind, FrameError

__all__ = ["validate", "has_schema", "ValidationFailed"]

_PACKAGE_DIR = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}

_RULE_KIND = {
    "type": ErrorKind.TYPE_CONSTRAINT,
    "format": ErrorKind.TYPE_CONSTRAINT,
    "required": ErrorKind.OCCURRENCE_CONSTRAINT,
    "minItems": ErrorKind.OCCURRENCE_CONSTRAINT,
    "maxItems": ErrorKind.OCCURRENCE_CONSTRAINT,
    "additionalProperties": ErrorKind.FORMAT_VIOLATION,
}


class ValidationFailed(FrameError):
    """A payload that violates its action's schema."""


def _schema_name(version: str, action: str, response: bool) -> str:
    if version == "1.6":
        return f"{action}Response.json" if response else f"{action}.json"
    return f"{action}Response.json" if response else f"{action}Request.json"


class _Validator:
    """The two compiled forms of one schema (see the module docstring); the second on first need."""

    __slots__ = ("is_valid", "_schema", "_explain")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.is_valid: Callable[[Any], bool] = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid
        self._schema = schema
        self._explain: Callable[[Any], Any] | None = None

    def explain(self, payload: Any) -> None:
        """Raise fastjsonschema's error for *payload* (nothing if that validator accepts it)."""
        if self._explain is None:
            self._explain = fastjsonschema.compile(self._schema, use_default=False)
        self._explain(payload)


def _schema_file(version: str, action: str, response: bool) -> Traversable | None:
    """The packaged schema of *action*, or None (unknown version or action, or not a plain name)."""
    if version not in _PACKAGE_DIR or not action.isidentifier():
        return None
    path = resources.files("ocpp") / _PACKAGE_DIR[version] / "schemas" / _schema_name(version, action, response)
    return path if path.is_file() else None


def _load(version: str, action: str, response: bool) -> _Validator | None:
    path = _schema_file(version, action, response)
    if path is None:
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    # The 1.6 schemas carry an "id" URN that fastjsonschema would try to resolve.
    schema.pop("id", None)
    schema.pop("$id", None)
    return _Validator(schema)


#: Compiled validators by (version, action, response). Only schemas that exist are kept, so
#: action names a charger makes up cannot grow it.
_CHECKS: dict[tuple[str, str, bool], _Validator] = {}


def _validator(version: str, action: str, response: bool) -> _Validator | None:
    key = (version, action, response)
    check = _CHECKS.get(key)
    if check is None:
        check = _load(version, action, response)
        if check is not None:
            _CHECKS[key] = check
    return check


def has_schema(version: str, action: str, response: bool = False) -> bool:
    """True if *action* exists in OCPP *version* (in the given direction)."""
    return _schema_file(version, action, response) is not None


def validate(version: str, action: str, payload: dict[str, Any], unique_id: str,
             response: bool = False) -> None:
    """Validate *payload* of *action*; raise :class:`ValidationFailed` naming the broken rule."""
    check = _validator(version, action, response)
    if check is None:
        raise ValidationFailed(ErrorKind.NOT_IMPLEMENTED, f"unknown action {action!r}", unique_id)
    if check.is_valid(payload):
        return
    try:
        check.explain(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        kind = _RULE_KIND.get(exc.rule or "", ErrorKind.PROPERTY_CONSTRAINT)
        raise ValidationFailed(kind, exc.message, unique_id,
                               {"rule": exc.rule, "path": exc.name}) from None
