"""The API's error shape and exception handlers.

Every error response is ``{"error": {"code": "...", "message": "...", "details": [...]}}``
(``details`` only where there is something to list, e.g. the fields that
failed validation).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "ErrorBody", "install_handlers", "ERROR_RESPONSES", "error_response"]

log = logging.getLogger("csms.api")

_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "too_many_requests", 500: "internal_error", 502: "charger_error",
    503: "unavailable", 504: "timeout",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """Raise to answer with the JSON error shape."""

    def __init__(self, status: int, message: str, code: str | None = None, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def error_response(status: int, message: str, code: str | None = None, details: list[Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code or _STATUS_CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = jsonable_encoder(details)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


#: Documented on every operation (status_code → description).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid bearer token"},
    403: {"model": ErrorBody, "description": "The token's role may not do this"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    422: {"model": ErrorBody, "description": "The request is invalid (nothing was changed)"},
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        item = {"loc": [str(x) for x in err.get("loc", ())], "message": err.get("msg", ""),
                "type": err.get("type", "")}
        out.append(item)
    return out


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else _STATUS_CODES.get(exc.status_code, "error")
        if exc.status_code == 400:  # FastAPI: a body that is not even text; invalid like any other body
            return error_response(422, "request body is not valid JSON text", "validation_error",
                                  [{"loc": ["body"], "message": message, "type": "json_invalid"}])
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(x for x in first["loc"] if x not in ("body",)) or "request"
        return error_response(422, f"{where}: {first['message']}", "validation_error", details)

    @app.exception_handler(asyncpg.DataError)
    async def _data_error(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # e.g. a NUL character or an out-of-range number the models let through: the transaction
        # was rolled back, nothing was stored.
        return error_response(422, f"value not storable: {exc.__class__.__name__}", "validation_error")

    @app.exception_handler(UnicodeEncodeError)
    async def _unicode_error(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return error_response(422, "text is not valid Unicode (lone surrogate)", "validation_error")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error", "internal_error")
