"""The web dashboard: a small single-page app (no build step) served by the API process.

``GET /`` is the page; ``/web/…`` are its static files (``static/``: vanilla JS modules,
CSS, the county outlines). Everything the page shows comes from the HTTP API with the
signed-in token sent as ``Authorization: Bearer`` by ``fetch`` — never a cookie — so a
command cannot be forged by another site (no ambient credentials: CSRF-safe by construction).
The token is kept in ``sessionStorage`` (per tab, gone when the tab closes).

Data is always rendered with ``textContent`` / attributes, never parsed as HTML, and the
pages are served with a strict Content-Security-Policy (scripts only from this origin, no
inline script or style), so a charger id or station name cannot inject markup.

:func:`install` adds the routes to the API application (one line in :func:`csms.api.create_api`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["install", "STATIC_DIR", "SECURITY_HEADERS"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "index.html"

#: Sent with the page and every static file.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class _Static(StaticFiles):
    """Static files with the security headers; revalidated on every load (ETag → 304)."""

    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[override]
        response = super().file_response(*args, **kwargs)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-cache"
        return response


@lru_cache(maxsize=1)
def _index() -> bytes:
    return TEMPLATE.read_bytes()


async def _page() -> HTMLResponse:
    return HTMLResponse(_index(), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def install(api: FastAPI) -> None:
    """Serve the dashboard at ``/`` (and ``/index.html``) and its files under ``/web/``."""
    for path in ("/", "/index.html"):
        api.add_api_route(path, _page, methods=["GET", "HEAD"], include_in_schema=False,
                          response_class=HTMLResponse)
    api.mount("/web", _Static(directory=STATIC_DIR), name="web")
