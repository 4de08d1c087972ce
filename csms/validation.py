"""Payload validation against the official OCPP JSON schemas.

The schemas are the ones the ``ocpp`` package ships (``ocpp/v16/schemas``,
``ocpp/v201/schemas``, ``ocpp/v21/schemas``). They are compiled with
``fastjsonschema`` into plain Python functions, once per action and direction,
which is an order of magnitude cheaper than the ``jsonschema`` validator the
``ocpp`` package uses by default.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Callable

import fastjsonschema

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


@functools.cache
def _validator(version: str, action: str, response: bool) -> Callable[[Any], Any] | None:
    folder = resources.files("ocpp") / _PACKAGE_DIR[version] / "schemas"
    path = folder / _schema_name(version, action, response)
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    # The 1.6 schemas carry an "id" URN that fastjsonschema would try to resolve.
    schema.pop("id", None)
    schema.pop("$id", None)
    return fastjsonschema.compile(schema)


def has_schema(version: str, action: str, response: bool = False) -> bool:
    """True if *action* exists in OCPP *version* (in the given direction)."""
    if version not in _PACKAGE_DIR or not action.isidentifier():
        return False
    return _validator(version, action, response) is not None


def validate(version: str, action: str, payload: dict[str, Any], unique_id: str,
             response: bool = False) -> None:
    """Validate *payload* of *action*; raise :class:`ValidationFailed` naming the broken rule."""
    check = _validator(version, action, response)
    if check is None:
        raise ValidationFailed(ErrorKind.NOT_IMPLEMENTED, f"unknown action {action!r}", unique_id)
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        kind = _RULE_KIND.get(exc.rule or "", ErrorKind.PROPERTY_CONSTRAINT)
        raise ValidationFailed(kind, exc.message, unique_id,
                               {"rule": exc.rule, "path": exc.name}) from None
