"""API tokens (admin only) and the caller's own identity."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .auth import ApiRoute, Principal, TokenExists, create_token, list_tokens, require, revoke_token
from .common import ID_MAX, Page, Paging, app_of, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["tokens"], route_class=ApiRoute, responses=ERROR_RESPONSES)
admin = [Depends(require("admin"))]


class Token(BaseModel):
    id: int
    name: str
    role: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_by: str | None = None
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class NewToken(Token):
    token: str = Field(description="The bearer token. Shown this once; only a hash is stored")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$",
                      description="Who or what uses the token (recorded with every command)")
    role: Literal["admin", "operator", "bureau"]


class Me(BaseModel):
    token_id: int
    name: str
    role: str


@router.get("/me", response_model=Me, dependencies=[Depends(require("operator", "bureau"))],
            summary="The caller's token name and role")
async def me(request: Request) -> Any:
    p: Principal = request.state.principal
    return {"token_id": p.token_id, "name": p.name, "role": p.role}


@router.get("/tokens", response_model=Page[Token], dependencies=admin, summary="API tokens")
async def get_tokens(request: Request, page: Paging = Depends(paging),
                     include_revoked: bool = Query(False)) -> Any:
    rows, total = await list_tokens(app_of(request).pool, include_revoked, page.limit, page.offset)
    return {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}


@router.post("/tokens", response_model=NewToken, status_code=201, dependencies=admin,
             summary="Create a token (the response is the only time it is shown)",
             responses={409: {"model": ErrorBody, "description": "An active token has this name"}})
async def post_token(request: Request, body: TokenCreate) -> Any:
    creator: Principal = request.state.principal
    try:
        row, token = await create_token(app_of(request).pool, body.name, body.role, created_by=creator.name)
    except TokenExists:
        raise ApiError(409, f"an active token named {body.name!r} exists already", "conflict") from None
    return {**row, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, dependencies=admin, summary="Revoke a token",
               responses={404: {"model": ErrorBody, "description": "No such active token"}})
async def delete_token(request: Request, token_id: Annotated[int, Path(ge=1, le=ID_MAX)]) -> Response:
    if await revoke_token(app_of(request).pool, token_id) is None:
        raise ApiError(404, f"no active token {token_id}")
    return Response(status_code=204)
