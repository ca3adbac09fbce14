"""TF Serving's gRPC API over the model manager, with the `tensorflow-serving-api` servicer base classes.

`tensorflow.serving.PredictionService/Predict` and `/GetModelMetadata` (`signature_def`),
`tensorflow.serving.ModelService/GetModelStatus`, and `grpc.health.v1.Health` ("" is SERVING while the server
runs; each model name is SERVING while it has an AVAILABLE version). Messages up to 64 MiB (or more, see
`max_message_bytes`). With an auth token, every call but Health needs the metadata `authorization: Bearer <token>`
(scheme in any case; UNAUTHENTICATED otherwise). Errors: INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE,
RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL.

Bounds: input TensorProtos are checked before any array is built (`serving.server.tensors`); a Predict takes one
of the request slots shared with REST (`--max-concurrent-requests`) and honours the client's deadline (and the
server's `--rest-api-timeout-in-ms`, so no call waits forever); at most `maximum_concurrent_rpcs` calls are
accepted at once (the slots, as many waiting, and a few for status/metadata/health); the rest get
RESOURCE_EXHAUSTED from grpcio. (Not called `grpc.py`: that would shadow the grpcio package.)
"""
from __future__ import annotations

import functools
import logging
import threading
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from serving.server import core
from serving.server.auth import bearer_ok
from serving.server.image_check import ImageBudget
from serving.server.limits import Slots, deadline_after, earliest, remaining
from serving.server.manager import ModelManager
from serving.server.metrics import RequestLabels
from serving.server.protos import metadata_proto, status_proto
from serving.server.tensors import parse_tensor_protos

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_HEALTH_PREFIX = "/grpc.health.v1.Health/"


def _abort(context: grpc.ServicerContext, err: core.PredictionError):
    context.abort(getattr(grpc.StatusCode, err.grpc_code, grpc.StatusCode.INTERNAL), str(err))


def _spec(model_spec) -> tuple[str, int | None, str | None]:
    version = model_spec.version.value if model_spec.HasField("version") else None
    return model_spec.name, version, model_spec.version_label or None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, slots: Slots, max_message_bytes: int):
        self.manager, self.metrics, self.limits = manager, manager.metrics, manager.limits
        self.slots, self.max_message_bytes = slots, max_message_bytes

    def Predict(self, request: predict_pb2.PredictRequest, context):
        name, version, label = _spec(request.model_spec)
        deadline = earliest(deadline_after(context.time_remaining()), deadline_after(self.limits.request_timeout_s))
        try:
            with self.metrics.timed_request("grpc", name) as labels:
                if not self.slots.acquire(remaining(deadline)):
                    raise core.Unavailable(self.slots.busy_message())
                try:
                    return self._predict(request, name, version, label, labels, deadline)
                finally:
                    self.slots.release()
        except core.PredictionError as err:
            _abort(context, err)

    def _predict(self, request: predict_pb2.PredictRequest, name: str, version: int | None, label: str | None,
                 labels: RequestLabels, deadline: float | None) -> predict_pb2.PredictResponse:
        with self.manager.use(name, version, label) as served:
            parsed = parse_tensor_protos(served.model, request.inputs, request.model_spec.signature_name or None,
                                         max_bytes=self.max_message_bytes,
                                         budget=ImageBudget.for_request(self.limits))
            signature_name = labels.signature = parsed.signature.name
            wanted = list(request.output_filter) or list(parsed.signature.outputs)
            unknown = [a for a in wanted if a not in parsed.signature.outputs]
            if unknown:
                raise core.InvalidInput(f"output_filter: unknown output '{unknown[0]}' (signature "
                                        f"'{signature_name}' has {', '.join(parsed.signature.outputs)})")
            outputs = core.run_request(parsed, functools.partial(served.runner, deadline=deadline))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = served.model.version
            response.model_spec.signature_name = signature_name
        for alias in wanted:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(outputs[alias])))
        return response

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        unsupported = [f for f in request.metadata_field if f != "signature_def"]
        if unsupported or not request.metadata_field:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Metadata field {unsupported[0] if unsupported else '(none)'} is not supported; "
                          f"ask for 'signature_def'")
        try:
            with self.manager.use(*_spec(request.model_spec)) as served:
                return metadata_proto(served.model)
        except core.PredictionError as err:
            _abort(context, err)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        try:
            return status_proto(self.manager.status(*_spec(request.model_spec)))
        except core.PredictionError as err:
            _abort(context, err)


class _AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str):
        self.token = token

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "missing or invalid bearer token (metadata 'authorization: Bearer <token>')")
        self.deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(_HEALTH_PREFIX):
            return continuation(handler_call_details)
        given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if bearer_ok(given, self.token):
            return continuation(handler_call_details)
        return self.deny


class GrpcServer:
    """The gRPC server; `start()` binds `host:port` (port 0: any free port, see `.port`); `slots`: the request
    slots shared with the REST API (default: its own, `manager.limits.max_concurrent_requests`)."""

    def __init__(self, manager: ModelManager, host: str = "127.0.0.1", port: int = 8500,
                 auth_token: str | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 slots: Slots | None = None):
        self.manager = manager
        slots = slots or Slots(manager.limits.max_concurrent_requests)
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.so_reuseport", 0)]
        interceptors = [_AuthInterceptor(auth_token)] if auth_token else []
        calls = slots.limit + slots.max_waiting + 8  # predicts running and waiting, and a few other calls
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=calls, thread_name_prefix="grpc"),
                                  options=options, interceptors=interceptors, maximum_concurrent_rpcs=calls)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(manager, slots, max_message_bytes), self.server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self.server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot bind gRPC to {address}")
        self.host = host

    def update_health(self) -> None:
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        waiting = set(self.manager.not_ready())
        for name in self.manager.model_names():
            self.health.set(name, not_serving if name in waiting else serving)

    def start(self) -> "GrpcServer":
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.update_health()
        self.server.start()
        return self

    def stop_accepting(self, grace: float = 10.0) -> threading.Event:
        """Refuse new calls from now on; calls in flight get `grace` seconds to finish (set once all are done)."""
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)

    def stop(self, grace: float = 5.0) -> None:
        self.stop_accepting(grace).wait(grace + 1)
