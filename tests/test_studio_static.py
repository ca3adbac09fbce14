"""The web studio's static files as the REST app serves them (no browser): content types, the Content-Security-
Policy, ETag caching, 404 for unknown files, no way out of the static folder, no token needed for the page, and
the files shipped as package data."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from conftest import REPO_ROOT
from serving.server import studio
from serving.server.manager import ModelManager
from serving.server.rest import create_app

TOKEN = "static-token"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s*["']([^"']+)["']""", re.MULTILINE)


@pytest.fixture(scope="module")
def client():
    manager = ModelManager([], poll_seconds=-1)
    with TestClient(create_app(manager, auth_token=TOKEN), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path,content_type", [
    ("/", "text/html; charset=utf-8"),
    ("/static/studio.css", "text/css; charset=utf-8"),
    ("/static/js/main.js", "text/javascript; charset=utf-8"),
    ("/static/js/tabs/generate.js", "text/javascript; charset=utf-8"),
    ("/static/favicon.svg", "image/svg+xml"),
])
def test_files_are_served_with_their_content_type_and_security_headers(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval, no CDN
    assert policy["connect-src"] == "'self'"
    assert "blob:" in policy["img-src"] and "data:" in policy["img-src"]
    assert "mediastream:" in policy["media-src"]
    assert response.headers["cache-control"] == "no-cache"


def test_an_unchanged_file_answers_304_to_its_etag(client):
    first = client.get("/static/js/api.js")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = client.get("/static/js/api.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/static/js/api.js", headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    assert client.get("/static/js/api.js", headers={"If-None-Match": '"stale"'}).status_code == 200
    assert client.get("/static/js/gif.js").headers["etag"] != etag


def test_head_answers_the_headers_without_the_body(client):
    response = client.head("/")
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) == len(client.get("/").content)


@pytest.mark.parametrize("path", [
    "/static/nope.js", "/static/", "/static/js", "/static/js/tabs/", "/index.html", "/static/index.html",
    "/static/js/main.js.map",
])
def test_unknown_static_paths_are_404_with_a_json_error(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": f"Not found: GET {path}"}


@pytest.mark.parametrize("raw_path", [
    b"/static/../rest.py", b"/static/%2e%2e/rest.py", b"/static/..%2frest.py", b"/static/js/../../rest.py",
    b"/static/%2e%2e/%2e%2e/server/rest.py", b"/static//etc/passwd", b"/static/%2fetc%2fpasswd",
    b"/static/..\\rest.py", b"/static/js/..%5c..%5crest.py",
])
def test_no_path_leaves_the_static_folder(client, raw_path):
    response = client.get("http://testserver" + raw_path.decode())
    assert response.status_code in (400, 404)
    assert b"import" not in response.content and b"root:" not in response.content


def test_the_page_needs_no_token_but_the_api_it_calls_does(client):
    assert client.get("/").status_code == 200
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {"models": []}


def test_the_page_has_no_inline_script_or_style_and_every_module_it_imports_exists():
    files = studio.load_static_files()
    page = files["index.html"].body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script> would be blocked by the CSP"
    assert not re.search(r"\sstyle=|<style|\son[a-z]+\s*=", page), "inline styles and handlers are blocked too"
    modules = [path for path in files if path.endswith(".js")]
    assert "js/main.js" in modules and "js/tabs/index.js" in modules
    for module in modules:
        source = files[module].body.decode()
        for target in IMPORT.findall(source):
            resolved = os.path.normpath(os.path.join(os.path.dirname(module), target)).replace(os.sep, "/")
            assert resolved in files, f"{module} imports {target}, which is not served"
        assert "eval(" not in source and "innerHTML" not in source
        assert len(source.splitlines()) < 400, f"{module} is too long"


def test_pip_install_ships_the_static_files(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)], cwd=REPO_ROOT,
                   check=True, capture_output=True)
    shipped = studio.load_static_files(tmp_path / "serving" / "server" / "static")
    assert sorted(shipped) == sorted(studio.load_static_files())
