"""The web studio's static files (INTERFACE.md section 10): `GET /` is the page (`static/index.html`),
`GET /static/<file>` its CSS, JavaScript modules and icon, all from the package's `static/` folder, read once at
start-up (a new version of the files needs a server restart, as a new version of the code does).

Only files that exist in that folder at start-up are served (a fixed table keyed by relative path), so no request
path ever reaches the file system and `..` cannot escape. Each answer carries its content type, a strong ETag
(a 304 for a matching `If-None-Match`), `Cache-Control: no-cache` (the browser keeps a copy and revalidates, so
an upgraded server is picked up at once) and a Content-Security-Policy that allows only this origin's scripts
and styles, `blob:`/`data:` images and the webcam. The page itself calls only the public REST API.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serving.server.text_query import INPUT

STATIC_DIR = Path(__file__).parent / "static"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=()",
    "Cache-Control": "no-cache",
}


class StaticFile(NamedTuple):
    body: bytes
    content_type: str
    etag: str


def load_static_files(root: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every servable file under `root`, keyed by its '/'-separated relative path."""
    files = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if path.is_file() and content_type:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.relative_to(root).as_posix()] = StaticFile(body, content_type, etag)
    return files


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    given = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in given or etag in given


def static_response(request: Request, file: StaticFile) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": file.etag}
    if _etag_matches(request.headers.get("if-none-match"), file.etag):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else file.body
    response = Response(body, media_type=file.content_type, headers=headers)
    if request.method == "HEAD":
        response.headers["content-length"] = str(len(file.body))
    return response


def add_studio_routes(app: FastAPI, files: dict[str, StaticFile] | None = None, text_query=None) -> None:
    """`GET|HEAD /` (the page) and `GET|HEAD /static/<path>` on `app`; other paths are left to later routes.
    `text_query`: the async handler of `GET /?input=...` (`serving.server.text_query`), when given."""
    files = load_static_files() if files is None else files

    def not_found(request: Request) -> Response:
        return JSONResponse({"error": f"Not found: {request.method} {request.url.path}"}, status_code=404,
                            headers={"X-Content-Type-Options": "nosniff"})

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def studio_page(request: Request):
        if text_query is not None and INPUT in request.query_params:
            return await text_query(request)
        page = files.get(INDEX)
        return static_response(request, page) if page else not_found(request)

    @app.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def studio_static(request: Request, path: str):
        file = files.get(path) if path != INDEX else None  # the page is `/`: its relative links resolve there
        return static_response(request, file) if file else not_found(request)
