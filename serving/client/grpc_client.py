"""The gRPC client of the prediction server (`PredictionServiceStub`, the `tensorflow-serving-api` protos).

Row instances are sent as named tensors whose dtypes come from the model's signature metadata, and answered as
rows like the REST `predictions`. Imports grpc and TensorFlow only when a client is made or used.
"""
from __future__ import annotations

import numpy as np

from artifacts.export import DEFAULT_SIGNATURE, EMBEDDINGS, IMAGE_BYTES, KEY, LABEL
from serving.client.common import ServingError

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _keys(count: int) -> np.ndarray:
    return np.array([str(i).encode() for i in range(count)], dtype=object)


class GrpcClient:
    """TF Serving gRPC client (`PredictionServiceStub`); row instances are sent as named tensors whose dtypes
    come from the model's signature metadata."""

    def __init__(self, target: str = "127.0.0.1:8500", token: str | None = None, timeout: float = 120.0,
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
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
            signatures.get(DEFAULT_SIGNATURE))
        return {alias: info.dtype for alias, info in (chosen.inputs.items() if chosen else [])}

    def predict(self, model: str, instances: list, signature_name: str | None = None,
                version: int | None = None, label: str | None = None) -> list:
        """Row instances (as in the REST API, {"b64"} for binary) -> rows like the REST `predictions`."""
        import tensorflow as tf

        from serving.server import values as V

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
                data[:] = [V.string_leaf(v, numeric_ok=alias == KEY) for v in column]
                inputs[alias] = data
            else:
                inputs[alias] = np.asarray(column, dtype=dtype.as_numpy_dtype)
        outputs = self.predict_tensors(model, inputs, signature_name, version, label)
        size = len(instances)
        return [{alias: V.json_value(array[i], alias) for alias, array in sorted(outputs.items())}
                for i in range(size)]

    def generate(self, model: str, embeddings, version: int | None = None, labels=None) -> list[bytes]:
        array = np.asarray(embeddings, dtype=np.float32)
        inputs = {EMBEDDINGS: array, KEY: _keys(len(array))}
        if labels is not None:  # a class-conditional model's class ids
            inputs[LABEL] = np.asarray(labels, dtype=np.int64)
        outputs = self.predict_tensors(model, inputs, version=version)
        return [bytes(item) for item in outputs[IMAGE_BYTES]]

    def embed(self, model: str, images: list[bytes], version: int | None = None) -> np.ndarray:
        data = np.empty(len(images), dtype=object)
        data[:] = [bytes(image) for image in images]
        outputs = self.predict_tensors(model, {IMAGE_BYTES: data, KEY: _keys(len(images))}, version=version)
        return np.asarray(outputs[EMBEDDINGS], dtype=np.float32)

    def close(self) -> None:
        self.channel.close()
