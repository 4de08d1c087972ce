"""Id tags (RFID cards, tokens): CRUD and bulk import."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .auth import ApiRoute, require
from .common import Page, Paging, Timestamp, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["id tags"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such id tag"}}

#: Printable ASCII without space and '/', 1-36 characters (the id_tags table's limit).
ID_TAG_PATTERN = r"^[!-.0-~]{1,36}$"
TagValue = Annotated[str, Field(pattern=ID_TAG_PATTERN, description="The tag as chargers report it")]
TagPath = Annotated[str, Path(min_length=1, max_length=36)]
Status = Literal["Accepted", "Blocked", "Expired", "Invalid"]


class IdTagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_tag: TagValue
    status: Status = "Accepted"
    expiry_date: Timestamp | None = None
    parent_id_tag: TagValue | None = None
    max_active_transactions: int = Field(1, ge=0, le=1000, description="Concurrent sessions allowed")
    note: str | None = Field(None, max_length=500)


class IdTagUpdate(BaseModel):
    """Only the fields given are changed; ``null`` clears expiry, parent or note."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    expiry_date: Timestamp | None = None
    parent_id_tag: TagValue | None = None
    max_active_transactions: int | None = Field(None, ge=0, le=1000)
    note: str | None = Field(None, max_length=500)


class IdTag(BaseModel):
    id_tag: str
    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None
    max_active_transactions: int
    note: str | None = None
    created_at: datetime
    updated_at: datetime
    active_sessions: int


class IdTagImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[IdTagIn] = Field(min_length=1, max_length=10_000)
    mode: Literal["upsert", "create"] = Field("upsert", description="upsert: add or replace; create: fail "
                                                                   "(409, nothing stored) if any tag exists")


class ImportResult(BaseModel):
    created: int
    updated: int


TAG_SELECT = """SELECT t.id_tag, t.status, t.expiry_date, t.parent_id_tag, t.max_active_transactions, t.note,
                       t.created_at, t.updated_at,
                       (SELECT count(*) FROM sessions s WHERE s.id_tag = t.id_tag AND s.stopped_at IS NULL
                          AND s.started_at IS NOT NULL) AS active_sessions
                FROM id_tags t"""

_COLUMNS = ("id_tag", "status", "expiry_date", "parent_id_tag", "max_active_transactions", "note")


async def _tag(db, id_tag: str) -> dict[str, Any]:
    row = await db.fetchrow(f"{TAG_SELECT} WHERE t.id_tag = $1", id_tag)
    if row is None:
        raise ApiError(404, f"no id tag {id_tag!r}")
    return dict(row)


@router.get("/id-tags", response_model=Page[IdTag], summary="Id tags")
async def list_id_tags(
    request: Request, page: Paging = Depends(paging),
    status: Status | None = Query(None), parent: str | None = Query(None, max_length=36),
    q: str | None = Query(None, max_length=36, description="Tag contains this text"),
    expired: bool | None = Query(None, description="Only tags whose expiry date has (true) / has not passed"),
) -> Any:
    w = Where()
    w.add_if(status, "t.status = {}")
    w.add_if(parent, "t.parent_id_tag = {}")
    if q:
        w.add("strpos(lower(t.id_tag), lower({})) > 0", q)
    if expired is True:
        w.add("t.expiry_date <= now()")
    elif expired is False:
        w.add("(t.expiry_date IS NULL OR t.expiry_date > now())")
    return await fetch_page(app_of(request).pool, TAG_SELECT, w, "id_tag", page)


@router.post("/id-tags", response_model=IdTag, status_code=201, summary="Add an id tag",
             responses={409: {"model": ErrorBody, "description": "The tag exists already"}})
async def create_id_tag(request: Request, body: IdTagIn, response: Response) -> Any:
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            f"""INSERT INTO id_tags ({', '.join(_COLUMNS)}) VALUES ($1,$2,$3,$4,$5,$6)
                ON CONFLICT (id_tag) DO NOTHING RETURNING true""",
            *(getattr(body, c) for c in _COLUMNS))
        if not created:
            raise ApiError(409, f"id tag {body.id_tag!r} exists already", "conflict")
        row = await _tag(conn, body.id_tag)
    response.headers["Location"] = f"{request.url.path}/{body.id_tag}"
    return row


@router.post("/id-tags/import", response_model=ImportResult, summary="Bulk import id tags (all or nothing)",
             responses={409: {"model": ErrorBody, "description": "mode=create and some tags exist"}})
async def import_id_tags(request: Request, body: IdTagImport) -> Any:
    seen: set[str] = set()
    duplicates = []
    for i, item in enumerate(body.items):
        if item.id_tag in seen:
            duplicates.append({"loc": ["body", "items", str(i), "id_tag"], "message": "duplicate id tag",
                               "type": "duplicate"})
        seen.add(item.id_tag)
    if duplicates:
        raise ApiError(422, f"{len(duplicates)} duplicate id tag(s) in the import", "validation_error", duplicates)
    columns = [[getattr(item, c) for item in body.items] for c in _COLUMNS]
    conflict = ("DO NOTHING" if body.mode == "create" else
                "DO UPDATE SET status=EXCLUDED.status, expiry_date=EXCLUDED.expiry_date, "
                "parent_id_tag=EXCLUDED.parent_id_tag, max_active_transactions=EXCLUDED.max_active_transactions, "
                "note=EXCLUDED.note, updated_at=now()")
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"""INSERT INTO id_tags ({', '.join(_COLUMNS)})
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::int[], $6::text[])
                ON CONFLICT (id_tag) {conflict} RETURNING (xmax = 0) AS created""", *columns)
        created = sum(1 for r in rows if r["created"])
        if body.mode == "create" and created != len(body.items):
            existing = await conn.fetch("SELECT id_tag FROM id_tags WHERE id_tag = ANY($1::text[]) AND "
                                        "created_at < now() ORDER BY id_tag LIMIT 100", columns[0])
            raise ApiError(409, f"{len(body.items) - created} id tag(s) exist already; nothing was imported",
                           "conflict", [r["id_tag"] for r in existing])
    return {"created": created, "updated": len(rows) - created}


@router.get("/id-tags/{id_tag}", response_model=IdTag, responses=NOT_FOUND, summary="One id tag")
async def get_id_tag(request: Request, id_tag: TagPath) -> Any:
    return await _tag(app_of(request).pool, id_tag)


@router.patch("/id-tags/{id_tag}", response_model=IdTag, responses=NOT_FOUND, summary="Change an id tag")
async def update_id_tag(request: Request, id_tag: TagPath, body: IdTagUpdate) -> Any:
    fields = body.model_fields_set
    w = Where()
    sets = ["updated_at = now()"]
    for column in _COLUMNS[1:]:
        if column in fields:
            value = getattr(body, column)
            if value is None and column in ("status", "max_active_transactions"):
                continue  # not nullable: null means "leave as is"
            sets.append(f"{column} = {w.arg(value)}")
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.execute(f"UPDATE id_tags SET {', '.join(sets)} WHERE id_tag = {w.arg(id_tag)}", *w.args)
        if done == "UPDATE 0":
            raise ApiError(404, f"no id tag {id_tag!r}")
        return await _tag(conn, id_tag)


@router.delete("/id-tags/{id_tag}", status_code=204, responses=NOT_FOUND,
               summary="Delete an id tag (its sessions are kept)")
async def delete_id_tag(request: Request, id_tag: TagPath) -> Response:
    if await app_of(request).pool.execute("DELETE FROM id_tags WHERE id_tag=$1", id_tag) == "DELETE 0":
        raise ApiError(404, f"no id tag {id_tag!r}")
    return Response(status_code=204)
