"""Python clients of the prediction server (INTERFACE.md section 6): REST and gRPC, with one interface.

    from serving import client
    images = client.generate("faces", np.random.normal(size=(4, 100)))     # -> list of PNG bytes
    z = client.embed("faces", [open("me.jpg", "rb").read()])                # -> float32 [1, latent_dim]
    rows = client.predict("faces", [{"embeddings": [...], "key": "0"}])     # -> the JSON predictions

`predict` returns what the REST API returns in `predictions` (`_bytes` outputs as {"b64": ...}) for both
transports. `connect("http://host:8501")` gives a `RestClient`, `connect("grpc://host:8500")` (or
"host:8500") a `GrpcClient`; the module-level functions use `$GENART_SERVER` (default http://127.0.0.1:8501)
and `$GENART_AUTH_TOKEN`. Errors raise `ServingError` (with the HTTP status or gRPC code).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import urllib.parse

import numpy as np

DEFAULT_SERVER = "http://127.0.0.1:8501"


class ServingError(Exception):
    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def _model_path(model: str, version: int | None = None, label: str | None = None) -> str:
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return path


def _embedding_instances(embeddings) -> list[dict]:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [n, latent_dim], got shape {array.shape}")
    return [{"embeddings": [float(x) for x in row], "key": str(i)} for i, row in enumerate(array)]


def _image_instances(images: list[bytes]) -> list[dict]:
    return [{"image_bytes": {"b64": base64.b64encode(bytes(image)).decode("ascii")}, "key": str(i)}
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

    def generate(self, model: str, embeddings, version: int | None = None) -> list[bytes]:
        """Embeddings [n, latent_dim] -> n PNG images (the `embeddings` signature)."""
        rows = self.predict(model, _embedding_instances(embeddings), version=version)
        return [base64.b64decode(row["image_bytes"]["b64"]) for row in rows]

    def embed(self, model: str, images: list[bytes], version: int | None = None) -> np.ndarray:
        """Encoded images -> float32 [n, latent_dim] posterior means (the `image_bytes` signature)."""
        rows = self.predict(model, _image_instances(images), version=version)
        return np.asarray([row["embeddings"] for row in rows], dtype=np.float32)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class GrpcClient:
    """TF Serving gRPC client (`PredictionServiceStub`); row instances are sent as named tensors whose dtypes
    come from the model's signature metadata."""

    def __init__(self, target: str = "127.0.0.1:8500", token: str | None = None, timeout: float = 120.0,
                 max_message_bytes: int = 64 * 1024 * 1024):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target = target.removeprefix("grpc://")
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        self.channel = grpc.insecure_channel(self.target, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.metadata_headers = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout
        self._signatures: dict = {}

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout, metadata=self.metadata_headers)
        except grpc.RpcError as err:
            raise ServingError(err.code().name, err.details()) from None

    def predict_tensors(self, model: str, inputs: dict[str, np.ndarray], signature_name: str | None = None,
                        version: int | None = None, label: str | None = None) -> dict[str, np.ndarray]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = signature_name or ""
        if version is not None:
            request.model_spec.version.value = int(version)
        elif label is not None:
            request.model_spec.version_label = label
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.stub.Predict, request)
        return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}

    def _input_dtypes(self, model: str, version, signature_name: str | None, names: set) -> dict:
        cache_key = (model, version)
        if cache_key not in self._signatures:
            from tensorflow_serving.apis import get_model_metadata_pb2

            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            request.model_spec.name = model
            if version is not None:
                request.model_spec.version.value = int(version)
            response = self._call(self.stub.GetModelMetadata, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            self._signatures[cache_key] = dict(signature_map.signature_def)
        signatures = self._signatures[cache_key]
        chosen = signatures.get(signature_name) if signature_name else next(
            (s for n, s in signatures.items() if names <= set(s.inputs) and n in names),
            signatures.get("serving_default"))
        return {alias: info.dtype for alias, info in (chosen.inputs.items() if chosen else [])}

    def predict(self, model: str, instances: list, signature_name: str | None = None,
                version: int | None = None, label: str | None = None) -> list:
        """Row instances (as in the REST API, {"b64"} for binary) -> rows like the REST `predictions`."""
        import tensorflow as tf

        from serving import values as V

        names = set().union(*(set(i) for i in instances if isinstance(i, dict)))
        dtypes = self._input_dtypes(model, version, signature_name, names)
        inputs = {}
        for alias in sorted(names):
            column = [instance[alias] for instance in instances if alias in instance]
            if len(column) != len(instances):
                raise ValueError(f"input '{alias}' is missing from some instances")
            dtype = tf.dtypes.as_dtype(dtypes.get(alias, 1))
            if dtype == tf.string:
                data = np.empty(len(column), dtype=object)
                data[:] = [V.string_leaf(v, numeric_ok=alias == "key") for v in column]
                inputs[alias] = data
            else:
                inputs[alias] = np.asarray(column, dtype=dtype.as_numpy_dtype)
        outputs = self.predict_tensors(model, inputs, signature_name, version, label)
        size = len(instances)
        return [{alias: V.json_value(array[i], alias) for alias, array in sorted(outputs.items())}
                for i in range(size)]

    def generate(self, model: str, embeddings, version: int | None = None) -> list[bytes]:
        array = np.asarray(embeddings, dtype=np.float32)
        keys = np.array([str(i).encode() for i in range(len(array))], dtype=object)
        outputs = self.predict_tensors(model, {"embeddings": array, "key": keys}, version=version)
        return [bytes(item) for item in outputs["image_bytes"]]

    def embed(self, model: str, images: list[bytes], version: int | None = None) -> np.ndarray:
        data = np.empty(len(images), dtype=object)
        data[:] = [bytes(image) for image in images]
        keys = np.array([str(i).encode() for i in range(len(images))], dtype=object)
        outputs = self.predict_tensors(model, {"image_bytes": data, "key": keys}, version=version)
        return np.asarray(outputs["embeddings"], dtype=np.float32)

    def close(self) -> None:
        self.channel.close()


def connect(server: str | None = None, token: str | None = None, timeout: float = 120.0):
    """A client for `server`: http(s)://... -> RestClient; grpc://host:port or host:port -> GrpcClient."""
    server = server or os.environ.get("GENART_SERVER") or DEFAULT_SERVER
    token = token if token is not None else os.environ.get("GENART_AUTH_TOKEN")
    if server.startswith(("http://", "https://")):
        return RestClient(server, token, timeout)
    return GrpcClient(server, token, timeout)


def wait_until_ready(server: str, timeout: float = 120.0, alive=None) -> None:
    """Poll `server`'s `/readyz` (REST URL) until it answers 200; TimeoutError after `timeout` seconds.

    `alive()`, when given, is checked between polls: False (e.g. the server process exited) raises RuntimeError.
    """
    import time
    import urllib.error
    import urllib.request

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


_default = {}


def _client():
    key = (os.environ.get("GENART_SERVER"), os.environ.get("GENART_AUTH_TOKEN"))
    if key not in _default:
        _default[key] = connect()
    return _default[key]


def predict(model: str, instances: list, signature_name: str | None = None, version: int | None = None) -> list:
    return _client().predict(model, instances, signature_name=signature_name, version=version)


def generate(model: str, embeddings) -> list[bytes]:
    return _client().generate(model, embeddings)


def embed(model: str, images: list[bytes]) -> np.ndarray:
    return _client().embed(model, images)
