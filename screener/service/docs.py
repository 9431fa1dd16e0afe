"""The API docs (/docs: Swagger UI, /redoc: ReDoc) served from files in this package, so
they render where CDNs and Google Fonts cannot be reached (offline, or from mainland China).

The bundles are the npm registry's swagger-ui-dist 5.35.0 (Apache-2.0) and redoc 2.5.4
(MIT), copied unchanged with their licences into ``screener/service/apidocs``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "apidocs"
PREFIX = "/docs-assets"
# The pages may load nothing from another host: ReDoc's bundle links its maker's logo on a
# CDN (it hides the picture when it does not load); this keeps the browser from asking.
# Inline script starts each page; both libraries set inline styles; ReDoc's search runs
# in a worker made from a blob.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _self_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _CSP
    return page


def install_docs(app: FastAPI) -> None:
    """Mount the bundles and the two pages (the app is created with docs_url=None and
    redoc_url=None, so FastAPI's own CDN-linked pages are not there)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _self_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} · Swagger UI",
                swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
                # No badge fetched from the public validator.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _self_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} · ReDoc",
                redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{PREFIX}/favicon-32x32.png",
                with_google_fonts=False,
            )
        )
