"""The gRPC API in process (a real grpcio server on a free 127.0.0.1 port, a real export of an untrained VAE-GAN)
with plain TF Serving stubs: error codes, auth metadata, health, status and metadata."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_helpers import build_registry, jpeg_bytes, write_models_config
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from serving.server.grpc_api import GrpcServer
from serving.server.manager import ModelManager

TOKEN = "grpc-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("grpc-home")
    build_registry(str(home), {"faces": ("vaegan", [1])})
    config = write_models_config(str(home / "models"), {"faces": "", "pending": ""})  # pending: no versions
    manager = ModelManager(config_path=config, poll_seconds=-1)
    manager.poll_once()
    open_server = GrpcServer(manager, port=0).start()
    secured = GrpcServer(manager, port=0, auth_token=TOKEN).start()
    channels = [grpc.insecure_channel(f"127.0.0.1:{s.port}") for s in (open_server, secured)]
    yield manager, channels[0], channels[1]
    for channel in channels:
        channel.close()
    open_server.stop(0)
    secured.stop(0)
    manager.stop()


def _request(model="faces", signature="", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


Z = np.random.default_rng(0).normal(size=(2, 100)).astype(np.float32)
GRPC_ERRORS = [
    ("unknown-model", _request("nope", embeddings=Z), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    ("not-loaded", _request("pending", embeddings=Z), grpc.StatusCode.UNAVAILABLE, "no available version"),
    ("wrong-dims", _request(embeddings=np.zeros((1, 7), np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "input 'embeddings': expected shape [?, 100], got [1, 7]"),
    ("nan", _request(embeddings=np.full((1, 100), np.nan, np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "instance 0, input 'embeddings': non-finite"),
    ("bad-image", _request(image_bytes=[jpeg_bytes(), b"junk"]), grpc.StatusCode.INVALID_ARGUMENT,
     "instance 1, input 'image_bytes': not an encoded image"),
    ("unknown-signature", _request(signature="nope", embeddings=Z), grpc.StatusCode.INVALID_ARGUMENT,
     '"nope" not found'),
    ("unknown-input", _request(embeddings=Z, colour=np.array([b"red", b"blue"], dtype=object)),
     grpc.StatusCode.INVALID_ARGUMENT, "unknown input"),
    ("wrong-dtype", _request(embeddings=np.array([["a"] * 100], dtype=object)), grpc.StatusCode.INVALID_ARGUMENT,
     "expected float32"),
    ("batch-mismatch", _request(embeddings=Z, key=np.array([b"a"], dtype=object)), grpc.StatusCode.INVALID_ARGUMENT,
     "different batch sizes"),
]


@pytest.mark.parametrize("case", GRPC_ERRORS, ids=[c[0] for c in GRPC_ERRORS])
def test_grpc_error_codes(served, case):
    _, request, code, fragment = case
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served[1])
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == code and fragment in info.value.details(), info.value.details()
    model = "-" if request.model_spec.name == "nope" else request.model_spec.name  # made-up names add no series
    assert any(labels[:2] == ("grpc", model) and labels[3] == code.name for labels in served[0].metrics.requests.values)


def test_grpc_predict_status_metadata_health(served):
    manager, channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(_request(embeddings=Z), timeout=30)  # no key, no signature_name: routed + filled
    assert response.model_spec.signature_name == "embeddings" and response.model_spec.version.value == 1
    assert list(tf.make_ndarray(response.outputs["key"])) == [b"0", b"1"]
    filtered = _request(embeddings=Z)
    filtered.output_filter.append("key")
    assert list(stub.Predict(filtered, timeout=30).outputs) == ["key"]
    meta_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    meta_request.model_spec.name = "faces"
    meta = stub.GetModelMetadata(meta_request, timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(signature_map)
    assert {"embeddings", "image_bytes", "serving_default"} <= set(signature_map.signature_def)
    bad_meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["graph"])
    bad_meta.model_spec.name = "faces"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(bad_meta, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "faces"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
            for s in status.model_version_status] == [(1, "AVAILABLE")]
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="faces"), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="pending"), timeout=10).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING


def test_grpc_auth_metadata(served):
    _, _, secured = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(secured)
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(_request(embeddings=Z), timeout=30, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = stub.Predict(_request(embeddings=Z), timeout=30, metadata=(("authorization", f"Bearer {TOKEN}"),))
    assert tf.make_ndarray(ok.outputs["image_bytes"]).shape == (2,)
    assert health_pb2_grpc.HealthStub(secured).Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
