"""Bearer tokens and roles.

A token is ``csms_`` followed by 43 URL-safe characters (256 random bits). The
database keeps only its SHA-256 (a slow hash adds nothing for random
secrets of this size) and its first characters, to tell tokens apart in a
listing. Tokens are never logged; the access log names the token, not its
value.

Roles: ``admin`` may do everything (including tokens and the registry),
``operator`` manages chargers, sessions, faults, id tags and commands,
``bureau`` reads reports and exports. Use :func:`require` as a route or
router dependency::

    router = APIRouter(dependencies=[Depends(require("operator"))])

(``admin`` is always allowed.) Routes must use :class:`ApiRoute` as their
route class so that authentication happens before the request body is even
parsed: no token → 401, wrong role → 403, whatever the body.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError

__all__ = [
    "ROLES", "Principal", "require", "ApiRoute", "new_token", "hash_token", "create_token", "list_tokens",
    "revoke_token", "TokenExists",
]

log = logging.getLogger("csms.api.auth")

ROLES = ("admin", "operator", "bureau")
TOKEN_PREFIX = "csms_"

_bearer = HTTPBearer(auto_error=False, description="A token from `csms tokens create` or POST /api/v1/tokens")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    name: str
    role: str


class TokenExists(Exception):
    """An active token with this name exists already."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_token(conn: asyncpg.Connection | asyncpg.Pool, name: str, role: str,
                       created_by: str | None = None) -> tuple[dict[str, Any], str]:
    """Store a new token; return (its row, the token itself — shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    try:
        row = await conn.fetchrow(
            """INSERT INTO api_tokens (name, role, token_hash, prefix, created_by) VALUES ($1,$2,$3,$4,$5)
               RETURNING id, name, role, prefix, created_by, created_at, last_used_at, revoked_at""",
            name, role, hash_token(token), token[:len(TOKEN_PREFIX) + 6], created_by)
    except asyncpg.UniqueViolationError:
        raise TokenExists(name) from None
    return dict(row), token


async def list_tokens(conn: asyncpg.Connection | asyncpg.Pool, include_revoked: bool = False,
                      limit: int = 1000, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    rows = await conn.fetch(
        """SELECT id, name, role, prefix, created_by, created_at, last_used_at, revoked_at, count(*) OVER () AS total
           FROM api_tokens WHERE $1 OR revoked_at IS NULL ORDER BY id LIMIT $2 OFFSET $3""",
        include_revoked, limit, offset)
    total = rows[0]["total"] if rows else await conn.fetchval(
        "SELECT count(*) FROM api_tokens WHERE $1 OR revoked_at IS NULL", include_revoked)
    return [{k: v for k, v in dict(r).items() if k != "total"} for r in rows], total


async def revoke_token(conn: asyncpg.Connection | asyncpg.Pool, id_or_name: int | str) -> dict[str, Any] | None:
    """Revoke an active token by id or name; return its row, or None when there is no such active token."""
    if isinstance(id_or_name, int) or (isinstance(id_or_name, str) and id_or_name.isdigit()):
        row = await conn.fetchrow(
            """UPDATE api_tokens SET revoked_at=now() WHERE id=$1 AND revoked_at IS NULL
               RETURNING id, name, role, prefix, created_by, created_at, last_used_at, revoked_at""",
            int(id_or_name))
        if row is not None or isinstance(id_or_name, int):
            return dict(row) if row else None
    row = await conn.fetchrow(
        """UPDATE api_tokens SET revoked_at=now() WHERE name=$1 AND revoked_at IS NULL
           RETURNING id, name, role, prefix, created_by, created_at, last_used_at, revoked_at""", str(id_or_name))
    return dict(row) if row else None


# --------------------------------------------------------------------- request authentication
_touched: dict[int, float] = {}


async def authenticate(request: Request) -> Principal:
    """The caller's principal (cached on the request); 401 without a valid token."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>)", "unauthorized",
                       headers={"WWW-Authenticate": "Bearer"})
    pool: asyncpg.Pool = request.app.state.csms.pool
    row = None
    if token.startswith(TOKEN_PREFIX) and len(token) < 200:
        row = await pool.fetchrow(
            "SELECT id, name, role FROM api_tokens WHERE token_hash=$1 AND revoked_at IS NULL", hash_token(token))
    if row is None:
        log.warning("rejected an invalid or revoked token",
                    extra={"client": request.client.host if request.client else None})
        raise ApiError(401, "invalid or revoked token", "unauthorized",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    principal = Principal(row["id"], row["name"], row["role"])
    request.state.principal = principal
    now = time.monotonic()
    if now - _touched.get(principal.token_id, -1e9) > 60:
        _touched[principal.token_id] = now
        try:
            await pool.execute("UPDATE api_tokens SET last_used_at=now() WHERE id=$1", principal.token_id)
        except (asyncpg.PostgresError, OSError):
            pass
    return principal


class RoleCheck:
    """A dependency that lets callers with one of *roles* (or admin) through."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        self.roles = frozenset(roles) | {"admin"}

    async def check(self, request: Request) -> Principal:
        principal = await authenticate(request)
        if principal.role not in self.roles:
            raise ApiError(403, f"role {principal.role!r} may not do this (needs "
                                f"{' or '.join(sorted(self.roles))})", "forbidden")
        return principal


def require(*roles: str):
    """A dependency admitting *roles* and admin; the dependency's value is the :class:`Principal`."""
    check = RoleCheck(roles)

    # The bearer scheme in the signature makes OpenAPI document the security requirement; the
    # credentials themselves are read by :func:`authenticate`.
    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        return await check.check(request)

    dependency.role_check = check  # type: ignore[attr-defined]
    return dependency


class ApiRoute(APIRoute):
    """Runs the route's role checks before FastAPI parses parameters and body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = [d.dependency.role_check for d in self.dependencies
                  if d.dependency is not None and hasattr(d.dependency, "role_check")]
        if not checks:
            return handler

        async def authenticated(request: Request) -> Response:
            for check in checks:
                await check.check(request)
            return await handler(request)

        return authenticated
