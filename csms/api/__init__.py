"""The operator HTTP API (FastAPI), served by every node next to the OCPP gateway.

:func:`create_api` builds the application for a running :class:`csms.app.CsmsApp`
(anything with ``pool``, ``router``, ``bus``, ``settings`` and ``gateway``).
Everything is under ``/api/v1``; the OpenAPI document is at ``/openapi.json``
and interactive docs at ``/docs``.

Other packages add endpoints by passing routers in *extra_routers*; they
protect them with :func:`csms.api.auth.require` and ``route_class=ApiRoute``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from . import (chargers, commands, events, faults, idtags, profiles, registry, reports, reservations, sessions,
               tokens)
from .auth import ApiRoute, Principal, require
from .errors import ApiError, install_handlers
from .middleware import ApiMiddleware
from ..tcec102.api import install as install_tcec_routes

__all__ = ["create_api", "require", "ApiRoute", "ApiError", "Principal"]

API_PREFIX = "/api/v1"


class Health(BaseModel):
    status: str
    node_id: str
    connected_chargers: int
    routing: bool


def create_api(state: Any, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    api = FastAPI(
        title="CSMS operator API",
        version="1",
        description=("Charge points, sessions, faults, id tags, operator commands for OCPP 1.6 / 2.0.1 / 2.1 "
                     "chargers on any node, and live events. Authenticate with `Authorization: Bearer <token>` "
                     "(`csms tokens create`). Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."),
        openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    api.state.csms = state
    install_handlers(api)
    api.add_middleware(ApiMiddleware, max_body_bytes=state.settings.api_max_body_bytes)

    v1 = APIRouter(prefix=API_PREFIX, route_class=ApiRoute)

    @v1.get("/health", response_model=Health, tags=["health"], summary="Liveness (no token needed)")
    async def health(request: Request) -> Any:
        app = request.app.state.csms
        return {"status": "ok", "node_id": app.settings.node_id,
                "connected_chargers": len(app.gateway.connections) if app.gateway else 0,
                "routing": bool(app.router and app.router.listening.is_set())}

    for module in (chargers, sessions, faults, idtags, commands, reservations, profiles, tokens, events, registry,
                   reports):
        v1.include_router(module.router)
    for extra in extra_routers:
        v1.include_router(extra)
    install_tcec_routes(api, v1)  # T/CEC 102: /evcs/v{version}/{interface}, tariffs, platforms
    api.include_router(v1)
    from . import dashboard as _dashboard  # the web dashboard's read-only views (/api/v1/dashboard/...)
    from ..web import install as _install_web  # the web dashboard itself at / (csms.web)
    api.include_router(_dashboard.router, prefix=API_PREFIX)
    _install_web(api)
    return api
