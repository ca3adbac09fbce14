"""TF Serving's REST API over the model manager (FastAPI), byte-compatible where TF Serving defines it.

- `POST /v1/models/NAME[/versions/N | /labels/L]:predict` -> `{"predictions"}` (row) or `{"outputs"}` (columnar);
- `GET /v1/models/NAME[/versions/N | /labels/L]` -> GetModelStatusResponse JSON;
- `GET /v1/models/NAME[/versions/N | /labels/L]/metadata` -> GetModelMetadataResponse JSON (`signature_def`);
- extras: `GET /v1/models` (every model with its version status and labels), `GET /healthz`, `GET /readyz`,
  `GET /monitoring/prometheus/metrics`, and the web studio at `GET /` (+ `/static/...`, see `studio`), where
  `GET /?input=TEXT` answers seed 004's JSON array of base64 PNGs (`text_query`).

Every error is `{"error": "<message>"}` with TF Serving's status mapping (400 bad input, 401 missing/wrong bearer
token, 404 unknown model/version/label or path, 408 body not received in time, 413 body over
`max_request_bytes`, 429 resources exhausted, 501 classify/regress, 503 not loaded yet or server busy, 504 past
`--rest-api-timeout-in-ms`, 500 only for a genuine fault, whose details stay in the log); FastAPI's own
`{"detail"}` bodies never escape. As in TF Serving, a malformed `/v1/...` URL (wrong method or form) is 400
"Malformed request". Path segments are validated (model names: TF Serving's rule, anything without '/' or ':';
versions are positive integers) and only ever used as dictionary keys, never as file paths.

A predict call takes one of the shared request slots (`limits.Slots`, `--max-concurrent-requests`) before its
body is read, and everything it does (waiting for a slot, reading the body, running) has one deadline.
"""
from __future__ import annotations

import functools
import json
import logging
import re

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from artifacts.naming import validate_served_name, validate_version
from serving.server import core, text_query
from serving.server.auth import bearer_ok
from serving.server.image_check import ImageBudget
from serving.server.limits import Slots, deadline_after, remaining
from serving.server.manager import ModelManager
from serving.server.metrics import RequestLabels
from serving.server.protos import metadata_proto, status_proto
from serving.server.studio import add_studio_routes

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024  # read (and drop) at most this much of an oversize body before answering 413
_SEGMENTS = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
PREDICT_PATH = re.compile(_SEGMENTS + r":(?P<method>predict|classify|regress)", re.IGNORECASE)
STATUS_PATH = re.compile(_SEGMENTS + r"(?P<metadata>/metadata)?", re.IGNORECASE)
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


class HttpError(Exception):
    def __init__(self, http_status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.http_status, self.message, self.headers = http_status, message, headers


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _proto_json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _json_bytes(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class RestApi:
    def __init__(self, manager: ModelManager, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 auth_token: str | None = None, slots: Slots | None = None):
        self.manager, self.max_request_bytes, self.auth_token = manager, max_request_bytes, auth_token
        self.metrics, self.limits = manager.metrics, manager.limits
        self.slots = slots or Slots(self.limits.max_concurrent_requests)
        self._threads: anyio.CapacityLimiter | None = None  # made in the event loop, on first use

    # ------------------------------------------------------------ plumbing

    def authorised(self, request: Request) -> bool:
        return not self.auth_token or bearer_ok(request.headers.get("authorization", ""), self.auth_token)

    def check_auth(self, request: Request) -> None:
        if self.authorised(request):
            return
        header = request.headers.get("authorization", "")
        if not bearer_ok(header, self.auth_token):
            reason = "missing" if not header else "invalid"
            raise HttpError(401, f"Unauthenticated: {reason} bearer token (send 'Authorization: Bearer <token>')",
                            {"WWW-Authenticate": "Bearer"})

    async def read_body(self, request: Request, deadline: float | None = None) -> bytes:
        """The body, at most `max_request_bytes` (413 beyond), received before `deadline` (408 otherwise)."""
        try:
            with anyio.fail_after(remaining(deadline)):
                return await self._read_body(request)
        except TimeoutError:
            raise HttpError(408, "request body not received within the request's deadline (--rest-api-timeout-in-ms)",
                            {"Connection": "close"}) from None

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit()):
            raise HttpError(400, f"invalid Content-Length {declared!r}")
        too_large = HttpError(413, f"request body is larger than the {self.max_request_bytes} bytes allowed "
                                   f"(--max-request-bytes)")
        if declared is not None and int(declared) > self.max_request_bytes + _DRAIN_LIMIT:
            raise too_large
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total <= self.max_request_bytes:
                chunks.append(chunk)
            elif total > self.max_request_bytes + _DRAIN_LIMIT:
                break
        if total > self.max_request_bytes:
            raise too_large
        return b"".join(chunks)

    @staticmethod
    def parse_path(match: re.Match) -> tuple[str, int | None, str | None]:
        name, version, label = match.group("name"), match.group("version"), match.group("label")
        try:
            validate_served_name(name, "model name")
            number = validate_version(version) if version is not None else None
        except ValueError as err:
            raise HttpError(400, str(err)) from None
        if label is not None and not LABEL_PATTERN.fullmatch(label):
            raise HttpError(400, f"invalid version label {label!r}")
        return name, number, label

    # ------------------------------------------------------------ endpoints

    async def dispatch(self, request: Request) -> Response:
        method, path = request.method.upper(), request.url.path
        if not path.lower().startswith("/v1/"):
            raise HttpError(404, f"Not found: {method} {path}")
        self.check_auth(request)
        match = PREDICT_PATH.fullmatch(path) if method == "POST" else None
        if match:
            if match.group("method").lower() != "predict":
                raise HttpError(501, f"{match.group('method')} is not supported by this server; use :predict")
            return await self.predict(request, *self.parse_path(match))
        match = STATUS_PATH.fullmatch(path) if method == "GET" else None
        if match:
            name, version, label = self.parse_path(match)
            if match.group("metadata"):
                return await run_in_threadpool(self.metadata, name, version, label)
            return await run_in_threadpool(self.status, name, version, label)
        raise HttpError(400, f"Malformed request: {method} {path}")

    async def predict(self, request: Request, name: str, version: int | None, label: str | None) -> Response:
        payload = await self.serve(name, version, label, lambda deadline: self.read_body(request, deadline))
        return Response(payload, media_type="application/json")

    async def serve(self, name: str, version: int | None, label: str | None, read_body) -> bytes:
        """One predict call: a request slot, the body (`await read_body(deadline)`), the run; the JSON answer."""
        deadline = deadline_after(self.limits.request_timeout_s)
        try:
            with self.metrics.timed_request("rest", name) as labels:
                if not await self.slots.acquire_async(remaining(deadline)):
                    raise core.Unavailable(self.slots.busy_message())
                try:
                    body = await read_body(deadline)
                    return await self._in_thread(deadline, self._predict, name, version, label, body, labels,
                                                 deadline)
                finally:
                    self.slots.release()
        except core.PredictionError as err:
            raise HttpError(err.http_status, str(err)) from None

    async def text_images(self, request: Request) -> Response:
        """`GET /?input=TEXT[&model][&n][&seed]` (`text_query`): a JSON array of base64 PNGs."""
        self.check_auth(request)
        try:
            query = text_query.parse_query(request.query_params)
            name = await run_in_threadpool(text_query.choose_model, self.manager, query.model)
        except core.PredictionError as err:
            raise HttpError(err.http_status, str(err)) from None

        async def body(deadline):
            return query.body()

        return JSONResponse(text_query.images_of(await self.serve(name, None, None, body)))

    async def _in_thread(self, deadline: float | None, function, *args):
        """`function(*args)` in a worker thread, answered with 504 at `deadline` even if it is still running."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.limits.max_concurrent_requests)
        try:
            with anyio.fail_after(remaining(deadline)):
                return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True, limiter=self._threads)
        except TimeoutError:
            raise core.DeadlineExceeded(f"the request took longer than {self.limits.request_timeout_s * 1000:g} ms "
                                        f"(--rest-api-timeout-in-ms)") from None

    def _predict(self, name: str, version: int | None, label: str | None, body: bytes,
                 labels: RequestLabels, deadline: float | None) -> bytes:
        with self.manager.use(name, version, label) as served:
            payload = core.parse_json_body(body)
            parsed = core.parse_json_request(served.model, payload, ImageBudget.for_request(self.limits))
            del payload
            labels.signature = parsed.signature.name
            outputs = core.run_request(parsed, functools.partial(served.runner, deadline=deadline))
        return _json_bytes(core.format_response(outputs, parsed))

    def status(self, name: str, version: int | None, label: str | None) -> Response:
        try:
            statuses = self.manager.status(name, version, label)
        except core.PredictionError as err:
            raise HttpError(err.http_status, str(err)) from None
        return JSONResponse(_proto_json(status_proto(statuses)))

    def metadata(self, name: str, version: int | None, label: str | None) -> Response:
        try:
            with self.manager.use(name, version, label) as served:
                response, classes = metadata_proto(served.model), served.model.classes
        except core.PredictionError as err:
            raise HttpError(err.http_status, str(err)) from None
        body = _proto_json(response)
        if classes is not None:  # genart's extension (INTERFACE.md section 8): the model's class list
            body["metadata"]["classes"] = classes
        return JSONResponse(body)

    def list_models(self) -> Response:
        models = []
        for name in self.manager.model_names():
            try:
                statuses = _proto_json(status_proto(self.manager.status(name)))["model_version_status"]
            except core.PredictionError:
                statuses = []
            models.append({"name": name, "model_version_status": statuses, "labels": {
                label: str(number) for label, number in sorted(self.manager.labels(name).items())}})
        return JSONResponse({"models": models})


def create_app(manager: ModelManager, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               enable_cors: bool = False, auth_token: str | None = None, slots: Slots | None = None) -> FastAPI:
    """The REST app over `manager` (which the caller starts and stops); `slots`: the request slots shared with
    the gRPC API (default: its own, `manager.limits.max_concurrent_requests`)."""
    api = RestApi(manager, max_request_bytes, auth_token, slots)
    app = FastAPI(title="genart serving", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.api = api

    @app.exception_handler(HttpError)
    async def _http_error(request: Request, err: HttpError):
        return error_response(err.http_status, err.message, err.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, err: StarletteHTTPException):
        message = {404: f"Not found: {request.method} {request.url.path}",
                   405: f"Method not allowed: {request.method} {request.url.path}"}.get(err.status_code, str(err.detail))
        return error_response(err.status_code, message, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        return error_response(400, f"invalid request: {err.errors()[:1]}")

    @app.exception_handler(Exception)
    async def _fault(request: Request, err: Exception):
        log.exception("internal error serving %s %s", request.method, request.url.path)
        return error_response(500, f"Internal error ({type(err).__name__}); the details are in the server log")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request):
        """Ready: every model has an AVAILABLE version and none has been stuck in one graph call longer than a
        request may take. Without the token (when one is required) it says only ready / not ready."""
        stuck = manager.stuck(api.limits.request_timeout_s or 30.0)
        ready, authorised = manager.ready() and not stuck, api.authorised(request)
        if ready:
            return {"status": "ready", "models": manager.model_names()} if authorised else {"status": "ready"}
        if not authorised:
            return error_response(503, "not ready")
        waiting = manager.not_ready()
        detail = "; ".join(([f"models without an AVAILABLE version: {', '.join(waiting)}"] if waiting else []) +
                           ([f"models stuck in a graph call: {', '.join(stuck)}"] if stuck else [])) or "loading"
        return error_response(503, f"not ready: {detail}")

    @app.get("/monitoring/prometheus/metrics")
    async def prometheus(request: Request):
        api.check_auth(request)
        return PlainTextResponse(manager.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request):
        api.check_auth(request)
        return api.list_models()

    # the page is public (it asks for the token itself and sends it to /v1/...); `/?input=` is the text API
    add_studio_routes(app, text_query=api.text_images)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    async def v1(request: Request):
        return await api.dispatch(request)

    if enable_cors:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["*"], max_age=600)
    return app
