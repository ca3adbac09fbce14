"""The server's bounds (INTERFACE.md section 13), in process, on real exports of untrained networks: image and
request pixel budgets (every GIF frame counted), one decode per image, requests failing at their first bad
instance, TensorProtos checked before any array is built, per-instance errors for every TensorFlow failure, the
shared request slots (taken before a REST body is read), the batcher's bounded queue, deadlines and splitting,
load retries (by object generation on gs://), names and the token-less `/readyz`. Counters and hooks, never
timings, say what happened. `test_hostile_clients.py` does the same against the real server process."""
from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import threading

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from fastapi.testclient import TestClient
from serving_helpers import (LATENT_DIM, build_registry, encoded_image, export_path, gif_bomb, jpeg_bytes, stage_job,
                             tensor_proto)
from tensorflow_serving.apis import predict_pb2

from artifacts import storage
from artifacts.naming import validate_name, validate_served_name
from serving.server import core, tensors
from serving.server.batching import Batcher, BatchingOptions
from serving.server.image_check import ImageBudget, gif_pixels
from serving.server.limits import Limits, Slots, deadline_after
from serving.server.manager import AVAILABLE, END, ModelManager
from serving.server.model import graph_error, public_message
from serving.server.model_config import ModelSpec
from serving.server.rest import PREDICT_PATH, HttpError, RestApi, create_app


@pytest.fixture(scope="module")
def faces():
    return core.load_model(export_path("vaegan", 1), "faces", 1)


def b64_instance(data: bytes) -> dict:
    return {"image_bytes": {"b64": base64.b64encode(data).decode()}}


# ---------------------------------------------------------------- images


def test_every_gif_frame_is_counted_against_the_image_limit():
    assert gif_pixels(encoded_image("GIF", 16, frames=3)) == 3 * 16 * 16
    bomb = gif_bomb(frames=400, side=1024)  # 6 KB that would decode to 1.2 GB
    assert len(bomb) < 7000 and gif_pixels(bomb) > 400 * 1024 * 1024 - 1
    with pytest.raises(ValueError, match=r"all frames counted \(--max-image-pixels\)"):
        ImageBudget(max_image_pixels=16_777_216).charge(bomb)
    assert ImageBudget(max_image_pixels=1024).charge(encoded_image("GIF", 16, frames=3)) == "GIF"


def test_images_of_a_request_share_one_pixel_budget(faces):
    budget = ImageBudget(max_image_pixels=64 * 64, max_request_pixels=2 * 64 * 64)
    body = {"instances": [b64_instance(encoded_image("PNG", 64)) for _ in range(3)]}
    with pytest.raises(core.InvalidInput, match=r"instance 2, input 'image_bytes'.*--max-request-pixels"):
        core.predict_json(faces, body, budget=budget)
    budget.used = 0  # a budget is per request
    assert len(core.predict_json(faces, {"instances": body["instances"][:2]}, budget=budget)["predictions"]) == 2


def test_images_are_decoded_only_by_the_graph(faces, monkeypatch):
    """The eager decode (a second, whole decode before the graph's) is gone: it runs only to name the guilty
    instance once the graph has refused a batch."""
    import preprocess.records as records

    calls = []
    real = records.decode_rgb
    monkeypatch.setattr(records, "decode_rgb", lambda data: calls.append(1) or real(data))
    good = [b64_instance(jpeg_bytes(i)) for i in range(3)]
    assert len(core.predict_json(faces, {"instances": good})["predictions"]) == 3
    assert calls == []
    with pytest.raises(core.InvalidInput, match="instance 1, input 'image_bytes': undecodable JPEG image"):
        core.predict_json(faces, {"instances": [good[0], b64_instance(jpeg_bytes()[:-200]), good[2]]})
    assert len(calls) == 2  # good[0], then the bad one; never good[2]


# ---------------------------------------------------------------- requests


def test_a_request_stops_at_its_first_invalid_instance(faces, monkeypatch):
    calls = []
    real = core.parse_instance
    monkeypatch.setattr(core, "parse_instance", lambda *a, **k: calls.append(1) or real(*a, **k))
    body = {"instances": [{"embeddings": [0.5] * 100}] + [{}] * 1000}
    with pytest.raises(core.InvalidInput) as info:
        core.parse_json_request(faces, body)
    assert str(info.value).startswith("instance 1, input 'embeddings': missing") and "more" not in str(info.value)
    assert len(calls) == 2


PROTO_CASES = [
    ("huge-declared-shape", {"embeddings": tensor_proto(tf.float32, [2_000_000, 100])}, "declares 800000000 bytes"),
    ("value-count", {"embeddings": tensor_proto(tf.float32, [2, 100], float_val=[1.0, 2.0, 3.0])}, "3 values"),
    ("content-length", {"embeddings": tensor_proto(tf.float32, [2, 100], tensor_content=b"\0" * 12)}, "tensor_content"),
    ("negative-dim", {"embeddings": tensor_proto(tf.float32, [-1, 100])}, "negative dimension"),
    ("fixed-dim", {"embeddings": tensor_proto(tf.float32, [1, 7])}, "expected shape [?, 100], got [1, 7]"),
    ("dtype", {"embeddings": tensor_proto(tf.string, [1, 100], string_val=[b"a"])}, "expected float32, got string"),
    ("string-broadcast", {"image_bytes": tensor_proto(tf.string, [1_000_000], string_val=[b"x" * 1000])},
     "declares 1000000000 bytes"),
]


@pytest.mark.parametrize("case", PROTO_CASES, ids=[c[0] for c in PROTO_CASES])
def test_tensor_protos_are_checked_before_any_array_is_built(faces, monkeypatch, case):
    _, protos, fragment = case
    monkeypatch.setattr(tf, "make_ndarray", lambda proto: pytest.fail("an array was built"))
    with pytest.raises(core.InvalidInput, match=fragment.replace("[", r"\[").replace("?", r"\?")):
        tensors.parse_tensor_protos(faces, protos, max_bytes=64 << 20)


def test_valid_and_broadcast_tensor_protos_are_read(faces):
    request = predict_pb2.PredictRequest()
    request.inputs["embeddings"].CopyFrom(tf.make_tensor_proto(np.ones((2, LATENT_DIM), np.float32)))
    parsed = tensors.parse_tensor_protos(faces, request.inputs, max_bytes=64 << 20)
    assert parsed.size == 2 and parsed.batch["key"].tolist() == [b"0", b"1"]
    broadcast = {"embeddings": tensor_proto(tf.float32, [3, LATENT_DIM], float_val=[0.5])}
    assert tensors.parse_tensor_protos(faces, broadcast, max_bytes=64 << 20).batch["embeddings"].shape == (3, 100)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("error, status", [
    (tf.errors.InvalidArgumentError, 400), (tf.errors.DataLossError, 400), (tf.errors.OutOfRangeError, 400),
    (tf.errors.ResourceExhaustedError, 429), (tf.errors.DeadlineExceededError, 504),
    (tf.errors.UnavailableError, 503), (tf.errors.InternalError, 500), (tf.errors.NotFoundError, 500)])
def test_every_tensorflow_error_maps_to_a_status_without_internals(error, status):
    message = ("Graph execution error:\n\nDetected at node x defined at (most recent call last):\n"
               '  File "/srv/app/secret.py", line 3, in f\nOOM reading /var/models/faces/1/variables.index\n'
               "\t [[{{node DecodePng}}]] [Op:__inference_signature_wrapper_99]")
    mapped = graph_error(error(None, None, message))
    assert mapped.http_status == status
    assert str(mapped).endswith("OOM reading <path>") and "/var" not in str(mapped) and "node" not in str(mapped)
    assert public_message(ValueError("")) == "ValueError"


def test_resource_exhaustion_fails_only_its_instance(faces):
    """A runner standing in for a graph that runs out of memory on one instance (the one keyed "bomb"): the
    batch is re-run one by one and only that instance fails, as with invalid input."""
    def runner(signature, batch):
        if b"bomb" in batch["key"].tolist():
            raise core.ResourceExhausted("OOM when allocating tensor")
        return core.run_batch(signature, batch)

    signature, prepared = core.prepare_instances(faces, [{"embeddings": [0.1] * 100, "key": k}
                                                         for k in ("a", "bomb", "c")])
    results = core.run_isolated(signature, prepared, runner)
    assert [r["key"] if isinstance(r, dict) else r.message for r in results] == \
        ["a", "instance 1: OOM when allocating tensor", "c"]


def test_a_server_fault_answers_500_without_details(tmp_path, monkeypatch):
    manager = ModelManager([ModelSpec("m", str(tmp_path))], poll_seconds=-1)
    monkeypatch.setattr(manager, "use", lambda *a: (_ for _ in ()).throw(RuntimeError("at /srv/secret/key.pem")))
    with TestClient(create_app(manager), raise_server_exceptions=False) as client:
        response = client.post("/v1/models/m:predict", json={"instances": [1]})
    assert response.status_code == 500 and "secret" not in response.text and "RuntimeError" in response.text


# ---------------------------------------------------------------- backpressure and time


def test_slots_hand_over_in_order_and_bound_the_waiters():
    slots = Slots(1, max_waiting=1)
    assert slots.acquire(0)
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(30)))
    waiter.start()
    while not slots._waiters:  # the waiter is queued
        threading.Event().wait(0.01)
    assert slots.acquire(5) is False  # the waiting room is full: refused at once
    slots.release()
    waiter.join(30)
    assert got == [True] and slots.in_use == 1
    assert asyncio.run(slots.acquire_async(0.05)) is False
    slots.release()
    assert asyncio.run(slots.acquire_async(0.05)) is True and slots.in_use == 1


def test_rest_takes_a_slot_before_reading_the_body(tmp_path):
    """All slots taken: a predict call is refused with 503 once its deadline passes and its body is never read
    (the ASGI `receive` is never awaited)."""
    manager = ModelManager([ModelSpec("m", str(tmp_path))], poll_seconds=-1,
                           limits=Limits(max_concurrent_requests=1, request_timeout_s=0.3))
    slots = Slots(1)
    slots.acquire(0)
    app, reads, sent = create_app(manager, slots=slots), [], []

    async def receive():
        reads.append(1)
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/models/m:predict", "raw_path": b"/v1/models/m:predict",
             "headers": [(b"content-length", b"100")], "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "http_version": "1.1", "asgi": {"version": "3.0"}}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    assert reads == [] and sent[0]["status"] == 503 and b"--max-concurrent-requests" in sent[1]["body"]


def test_grpc_refuses_calls_beyond_its_concurrency_at_once(tmp_path, monkeypatch):
    """With 1 request slot and no waiting room the server accepts 1 + 0 + 8 calls at once; while 9 status calls
    are held (a hook in the manager), the others are refused with RESOURCE_EXHAUSTED instead of queued."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    from serving.server.grpc_api import GrpcServer

    manager = ModelManager([ModelSpec("m", str(tmp_path))], poll_seconds=-1)
    release, held = threading.Event(), []

    def status(*args):
        held.append(1)
        release.wait(60)
        return []

    monkeypatch.setattr(manager, "status", status)
    server = GrpcServer(manager, port=0, slots=Slots(1, max_waiting=0)).start()
    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "m"
    codes = []

    def call():
        try:
            stub.GetModelStatus(request, timeout=60)
            codes.append("OK")
        except grpc.RpcError as err:
            codes.append(err.code().name)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    while len(held) + codes.count("RESOURCE_EXHAUSTED") < 12:
        threading.Event().wait(0.05)
    release.set()
    for thread in threads:
        thread.join(60)
    server.stop(0)
    assert sorted(codes) == ["OK"] * 9 + ["RESOURCE_EXHAUSTED"] * 3, codes


class _BlockingSignature:
    """Enough of core.Signature for the batcher; its graph call blocks while `gate` is clear."""
    name, model_name = "slow", "fake"
    inputs = {"x": core.TensorInfo("x", tf.float32, (None, 2))}

    def __init__(self):
        self.gate, self.calls = threading.Event(), []

    def function(self, x):
        self.calls.append(int(x.shape[0]))
        self.gate.wait(60)
        return {"y": x * 2.0}


def test_batcher_queue_is_bounded_waits_end_at_deadlines_and_big_requests_split():
    signature = _BlockingSignature()
    batcher = Batcher(BatchingOptions(max_batch_size=4, num_batch_threads=1, max_enqueued_batches=1, merge=False))
    one = {"x": np.ones((1, 2), np.float32)}
    first = threading.Thread(target=batcher.run, args=(signature, one))
    first.start()
    while not signature.calls:  # the worker is in the graph call
        threading.Event().wait(0.01)
    with pytest.raises(core.DeadlineExceeded):  # queued behind it, withdrawn at its deadline
        batcher.run(signature, one, deadline_after(0.2))
    queued = threading.Thread(target=batcher.run, args=(signature, one))
    queued.start()
    while not batcher.queues["slow"].items:
        threading.Event().wait(0.01)
    with pytest.raises(core.Unavailable, match="--max-enqueued-batches"):
        batcher.run(signature, one)
    assert batcher.oldest_call_seconds() > 0
    signature.gate.set()
    first.join(30)
    queued.join(30)
    out = Batcher(BatchingOptions(max_batch_size=4, merge=False)).run(signature, {"x": np.ones((10, 2), np.float32)})
    assert out["y"].shape == (10, 2) and sorted(signature.calls[-3:]) == [2, 4, 4] and signature.calls.count(1) == 2
    batcher.close()


# ---------------------------------------------------------------- loads, names, readiness


def test_failed_loads_are_retried_a_bounded_number_of_times(tmp_path):
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"not a saved model")
    manager = ModelManager([ModelSpec("m", str(base))], poll_seconds=-1,
                           limits=Limits(max_num_load_retries=2, load_retry_interval_s=0))
    for _ in range(5):
        manager.poll_once()
    [status] = manager.status("m")
    assert (status.state, status.error_code) == (END, "DATA_LOSS")
    assert "attempt 3; no retries left" in status.error_message and "/" not in status.error_message


def test_a_failed_load_on_gcs_is_retried_when_the_object_is_rewritten(gcs_bucket):
    base = f"{gcs_bucket}/models/m"
    storage.write_bytes(f"{base}/1/saved_model.pb", b"not a saved model")
    manager = ModelManager([ModelSpec("m", base)], poll_seconds=-1, limits=Limits(load_retry_interval_s=3600))
    manager.poll_once()
    assert manager.status("m")[0].state == END
    storage.copytree(export_path("vaegan", 1), f"{base}/1", last=("saved_model.pb",))  # a new generation
    manager.poll_once()
    assert manager.status("m")[0].state == AVAILABLE
    manager.stop()


def test_served_names_follow_tf_serving_and_created_names_the_job_rule(tmp_path):
    assert validate_served_name("resnet-50") == "resnet-50"
    for bad in ("a/b", "a:b", ""):
        with pytest.raises(ValueError):
            validate_served_name(bad)
    for bad in ("m\n", "resnet-50", "9lives"):
        with pytest.raises(ValueError):
            validate_name(bad)
    with pytest.raises(HttpError, match="invalid version label"):  # a full match: no newline before a `$`
        RestApi.parse_path(PREDICT_PATH.fullmatch("/v1/models/faces/labels/stable\n:predict"))
    stage_job(str(tmp_path), "job1")
    result = subprocess.run([f"{REPO_ROOT}/create_model.sh", "-j", "job1", "-n", "m\n"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "GENART_HOME": str(tmp_path)})
    assert result.returncode != 0 and "invalid model name" in result.stderr
    assert not os.path.exists(tmp_path / "models" / "m\n")


def test_readyz_says_only_ready_without_the_token(tmp_path):
    manager = ModelManager(config_path=build_registry(str(tmp_path), {"faces": ("vaegan", [1])}), poll_seconds=-1)
    manager.poll_once()
    with TestClient(create_app(manager, auth_token="tok")) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/readyz", headers={"Authorization": "bearer tok"}).json()["models"] == ["faces"]
    manager.stop()
    pending = ModelManager([ModelSpec("secret_name", str(tmp_path / "none"))], poll_seconds=-1)
    pending.poll_once()
    with TestClient(create_app(pending, auth_token="tok")) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"error": "not ready"}
