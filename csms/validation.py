"""Payload validation against the official OCPP JSON schemas.

The schemas are the ones the ``ocpp`` package ships (``ocpp/v16/schemas``,
``ocpp/v201/schemas``, ``ocpp/v21/schemas``). Each is compiled twice, once per
action and direction, on first use:

* with ``jsonschema-rs`` (a compiled validator), which decides whether a payload is valid
  in well under a microsecond for a periodic TransactionEvent, about ten times faster than
  the generated Python code below; every valid payload stops there;
* with ``fastjsonschema``, into a plain Python function, which runs only for a payload the
  first one refused, to name the broken rule: its error messages, rules and paths are the ones
  the CALLERROR carries. Should it accept what the first refused, the payload is accepted.

Neither fills in defaults: payloads reach the decoders as the charger sent them, and the
decoders apply the spec's defaults themselves.

For the second compiler, local ``$ref`` s (``#/definitions/...``, the 2.x schemas are full of
them) are inlined first: fastjsonschema turns each ``$ref`` into a function call that formats the
property path of its argument eagerly. One generated check is also rewritten: fastjsonschema tests
an ``enum`` as a chain of ``isinstance(x, str) and x == "A" or ...``, two operations per allowed
value; an enum of strings (all of them in OCPP) becomes one set lookup, same message and rule.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Callable

import fastjsonschema
import jsonschema_rs
from fastjsonschema.draft04 import CodeGeneratorDraft04
from fastjsonschema.ref_resolver import RefResolver

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


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """*schema* with every ``#/definitions/X`` reference replaced by that definition.

    A ``$ref`` overrides its sibling keywords (draft 4-7), and fastjsonschema fills in a property's
    ``default`` only when it is written next to the property, not behind a ``$ref``: the inlined
    definition therefore replaces the whole node and loses its top-level ``default``. Any other
    kind of reference, or a recursive one, leaves the schema as it was.
    """
    definitions = schema.get("definitions") or {}

    class _Keep(Exception):
        pass

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is not None:
            name = ref[len("#/definitions/"):] if isinstance(ref, str) and ref.startswith("#/definitions/") else None
            if name is None or name in seen or not isinstance(definitions.get(name), dict):
                raise _Keep
            return walk({k: v for k, v in definitions[name].items() if k != "default"}, seen | {name})
        return {k: v if k == "definitions" else walk(v, seen) for k, v in node.items()}

    try:
        return walk(schema, frozenset())
    except _Keep:
        return schema


class _StringEnumSets:
    """Mixin for a fastjsonschema code generator: an enum of strings is checked by one set lookup."""

    def generate_enum(self) -> None:
        enum = self._definition["enum"]  # type: ignore[attr-defined]
        if not (isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum)):
            super().generate_enum()  # type: ignore[misc]
            return
        # A set display of constants in an "in" test is compiled to a frozenset constant.
        with self.l("if not (isinstance({variable}, str) and {variable} in {}):", repr(set(enum))):  # type: ignore[attr-defined]
            self.exc("{name} must be one of {}", self.e(enum), rule="enum")  # type: ignore[attr-defined]


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """``fastjsonschema.compile(schema, use_default=False)``, its draft's code generator faster for enums."""
    base: type[CodeGeneratorDraft04] = fastjsonschema._get_code_generator_class(schema)
    generator = type(f"Fast{base.__name__}", (_StringEnumSets, base), {})(
        schema, resolver=RefResolver.from_schema(schema, handlers={}, store={}), use_default=False)
    state = generator.global_state
    exec(generator.func_code, state)  # noqa: S102 - code generated from the packaged OCPP schemas
    return state[generator._resolver.get_scope_name()]


class _Validator:
    """The two compiled forms of one schema (see the module docstring)."""

    __slots__ = ("is_valid", "explain")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.is_valid: Callable[[Any], bool] = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid
        self.explain: Callable[[Any], Any] = _compile(_inline_refs(schema))


def _load(version: str, action: str, response: bool) -> _Validator | None:
    folder = resources.files("ocpp") / _PACKAGE_DIR[version] / "schemas"
    path = folder / _schema_name(version, action, response)
    if not path.is_file():
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
    if check is None and version in _PACKAGE_DIR and action.isidentifier():
        check = _load(version, action, response)
        if check is not None:
            _CHECKS[key] = check
    return check


def has_schema(version: str, action: str, response: bool = False) -> bool:
    """True if *action* exists in OCPP *version* (in the given direction)."""
    return _validator(version, action, response) is not None


def validate(version: str, action: str, payload: dict[str, Any], unique_id: str,
             response: bool = False) -> None:
    """Validate *payload* of *action*; raise :class:`ValidationFailed` naming the broken rule."""
    check = _CHECKS.get((version, action, response)) or _validator(version, action, response)
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
