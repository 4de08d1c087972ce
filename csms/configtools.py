"""Operator-facing helpers around :class:`csms.config.Settings`.

* :func:`describe_error` turns a settings failure into one line per problem
  that names the ``CSMS_*`` variable, e.g.
  ``CSMS_OCPP_PORT=70000: Input should be less than or equal to 65535``.
* :func:`effective_config` lists every setting with its effective value,
  secrets redacted, for ``csms config show``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from .config import Settings

__all__ = ["describe_error", "effective_config", "redact_url", "env_name", "SECRET_MARK"]

SECRET_MARK = "***"
_SECRET_NAME = re.compile(r"(password|secret|token|private|_key$|^key$)", re.IGNORECASE)


def env_name(field: str) -> str:
    return f"CSMS_{field.upper()}"


def describe_error(exc: Exception) -> str:
    """A settings failure as ``CSMS_NAME=value: reason`` lines (secrets never echoed)."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err.get("loc", ()) if not isinstance(part, int)]
        message = str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        if loc:
            name = loc[0]
            value = err.get("input")
            shown = "" if value is None or isinstance(value, dict) or _SECRET_NAME.search(name) \
                or name == "database_url" else f"={value}"
            lines.append(f"{env_name(name)}{shown}: {message}")
        else:  # a model-level check; its message starts with the setting's name
            name, sep, rest = message.partition(": ")
            lines.append(f"{env_name(name)}: {rest}" if sep and name in Settings.model_fields else message)
    return "; ".join(lines)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{userinfo}:{SECRET_MARK}@{netloc[1]}", parts.path, parts.query,
                       parts.fragment))


def _show(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "database_url":
        return redact_url(str(value))
    if isinstance(value, Path):  # a path to a key file is not the secret itself
        return str(value)
    if _SECRET_NAME.search(name) and not name.endswith("_header"):
        return SECRET_MARK
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


def effective_config(settings: Settings) -> list[dict[str, Any]]:
    """Every setting: ``{"setting", "variable", "value", "default", "source"}``, secrets redacted.

    ``source`` is ``default`` when the value equals the default, else ``set``.
    """
    rows = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if field.default_factory is not None:
            default = None if name == "node_id" else field.default_factory()
        else:
            default = field.default
        rows.append({
            "setting": name,
            "variable": env_name(name),
            "value": _show(name, value),
            "default": _show(name, default) if name != "node_id" else "hostname-pid",
            "source": "default" if value == default else "set",
            "description": field.description or "",
        })
    return rows
