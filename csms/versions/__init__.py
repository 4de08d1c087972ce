"""OCPP version mapping: one module per protocol family turns payloads into :mod:`csms.events` and back.

* :mod:`csms.versions.v16` — OCPP 1.6J
* :mod:`csms.versions.v2x` — OCPP 2.0.1 and 2.1

:data:`SUBPROTOCOLS` lists the websocket subprotocols the gateway accepts, most
preferred first; :func:`negotiate` picks the highest one a charger offers.
"""

from __future__ import annotations

from collections.abc import Sequence

SUBPROTOCOLS: dict[str, str] = {"ocpp2.1": "2.1", "ocpp2.0.1": "2.0.1", "ocpp1.6": "1.6"}


def negotiate(offered: Sequence[str]) -> str | None:
    """Return the preferred subprotocol among *offered*, or None when there is none in common."""
    for candidate in SUBPROTOCOLS:
        if candidate in offered:
            return candidate
    return None


def codec_for(version: str):
    """The mapping module for an OCPP *version* string ("1.6", "2.0.1", "2.1")."""
    if version == "1.6":
        from . import v16
        return v16
    if version in ("2.0.1", "2.1"):
        from . import v2x
        return v2x
    raise ValueError(f"unsupported OCPP version {version!r}")
