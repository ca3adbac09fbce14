"""`connect(server)` -> the client for that address, and `predict`/`generate`/`embed` on the default server.

    from serving import client
    images = client.generate("faces", np.random.normal(size=(4, 100)))     # -> list of PNG bytes
    z = client.embed("faces", [open("me.jpg", "rb").read()])                # -> float32 [1, latent_dim]
    rows = client.predict("faces", [{"embeddings": [...], "key": "0"}])     # -> the JSON predictions

`connect("http://host:8501")` gives a `RestClient`, `connect("grpc://host:8500")` (or "host:8500") a
`GrpcClient`; `predict` returns what the REST API returns in `predictions` (`_bytes` outputs as {"b64": ...}) for
both. The module-level functions use `$GENART_SERVER` (default http://127.0.0.1:8501) and `$GENART_AUTH_TOKEN`.
Errors raise `ServingError` (with the HTTP status or gRPC code).
"""
from __future__ import annotations

import os

import numpy as np

from serving.client.common import DEFAULT_SERVER
from serving.client.grpc_client import GrpcClient
from serving.client.rest import RestClient


def connect(server: str | None = None, token: str | None = None, timeout: float = 120.0):
    """A client for `server`: http(s)://... -> RestClient; grpc://host:port or host:port -> GrpcClient."""
    server = server or os.environ.get("GENART_SERVER") or DEFAULT_SERVER
    token = token if token is not None else os.environ.get("GENART_AUTH_TOKEN")
    if server.startswith(("http://", "https://")):
        return RestClient(server, token, timeout)
    return GrpcClient(server, token, timeout)


_default = {}


def _client():
    key = (os.environ.get("GENART_SERVER"), os.environ.get("GENART_AUTH_TOKEN"))
    if key not in _default:
        _default[key] = connect()
    return _default[key]


def predict(model: str, instances: list, signature_name: str | None = None, version: int | None = None) -> list:
    return _client().predict(model, instances, signature_name=signature_name, version=version)


def generate(model: str, embeddings, labels=None) -> list[bytes]:
    return _client().generate(model, embeddings, labels=labels)


def embed(model: str, images: list[bytes]) -> np.ndarray:
    return _client().embed(model, images)
