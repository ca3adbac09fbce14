"""The REST client of the prediction server (TF Serving's REST API), and `wait_until_ready` (polls `/readyz`).

One keep-alive connection per thread; `predict` returns what the server returns in `predictions` (`_bytes`
outputs as {"b64": ...}); `generate`/`embed` wrap the `embeddings` and `image_bytes` signatures. No TensorFlow.
"""
from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from artifacts.export import EMBEDDINGS, IMAGE_BYTES, KEY, LABEL
from serving.client.common import DEFAULT_SERVER, ServingError


def _model_path(model: str, version: int | None = None, label: str | None = None) -> str:
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return path


def _embedding_instances(embeddings, labels=None) -> list[dict]:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [n, latent_dim], got shape {array.shape}")
    rows = [{EMBEDDINGS: [float(x) for x in row], KEY: str(i)} for i, row in enumerate(array)]
    for row, label in zip(rows, [] if labels is None else labels):  # a class-conditional model's class ids
        row[LABEL] = int(label)
    return rows


def _image_instances(images: list[bytes]) -> list[dict]:
    return [{IMAGE_BYTES: {"b64": base64.b64encode(bytes(image)).decode("ascii")}, KEY: str(i)}
            for i, image in enumerate(images)]


class RestClient:
    """TF Serving REST client over one keep-alive connection per thread."""

    def __init__(self, url: str = DEFAULT_SERVER, token: str | None = None, timeout: float = 120.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) server URL: {url!r}")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._parsed, self._local = parsed, threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            cls = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = cls(self._parsed.hostname, self._parsed.port, timeout=self.timeout)
        return connection

    def request(self, method: str, path: str, body=None):
        """Send one request; return the decoded JSON answer, or raise ServingError with the server's error."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        prefix = self._parsed.path.rstrip("/")
        for attempt in (0, 1):
            connection = self._connection(fresh=attempt > 0)
            try:
                connection.request(method, prefix + path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:  # a kept-alive connection the server had closed: retry once on a fresh one
                    raise
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {"error": payload[:200].decode("utf-8", "replace")}
        if response.status != 200:
            raise ServingError(response.status, answer.get("error", str(answer)) if isinstance(answer, dict)
                               else str(answer))
        return answer

    def predict(self, model: str, instances: list, signature_name: str | None = None,
                version: int | None = None, label: str | None = None) -> list:
        body = {"instances": instances}
        if signature_name:
            body["signature_name"] = signature_name
        return self.request("POST", _model_path(model, version, label) + ":predict", body)["predictions"]

    def predict_columnar(self, model: str, inputs, signature_name: str | None = None,
                         version: int | None = None, label: str | None = None):
        body = {"inputs": inputs, **({"signature_name": signature_name} if signature_name else {})}
        return self.request("POST", _model_path(model, version, label) + ":predict", body)["outputs"]

    def status(self, model: str, version: int | None = None) -> dict:
        return self.request("GET", _model_path(model, version))

    def metadata(self, model: str, version: int | None = None) -> dict:
        return self.request("GET", _model_path(model, version) + "/metadata")

    def models(self) -> list[dict]:
        return self.request("GET", "/v1/models")["models"]

    def generate(self, model: str, embeddings, version: int | None = None, labels=None) -> list[bytes]:
        """Embeddings [n, latent_dim] (+ n class ids for a cgan) -> n PNG images (the `embeddings` signature)."""
        rows = self.predict(model, _embedding_instances(embeddings, labels), version=version)
        return [base64.b64decode(row[IMAGE_BYTES]["b64"]) for row in rows]

    def embed(self, model: str, images: list[bytes], version: int | None = None) -> np.ndarray:
        """Encoded images -> float32 [n, latent_dim] posterior means (the `image_bytes` signature)."""
        rows = self.predict(model, _image_instances(images), version=version)
        return np.asarray([row[EMBEDDINGS] for row in rows], dtype=np.float32)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def wait_until_ready(server: str, timeout: float = 120.0, alive=None) -> None:
    """Poll `server`'s `/readyz` (REST URL) until it answers 200; TimeoutError after `timeout` seconds.

    `alive()`, when given, is checked between polls: False (e.g. the server process exited) raises RuntimeError.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the server at {server} exited before it was ready")
        try:
            with urllib.request.urlopen(f"{server.rstrip('/')}/readyz", timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server was not ready after {timeout:.0f} s ({server}/readyz)")
