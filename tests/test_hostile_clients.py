"""Hostile clients against the real `python -m serving.server` (a subprocess on free 127.0.0.1 ports, real exports
of untrained networks): image bombs, over-budget requests, a huge declared gRPC shape, 1,000 bad instances, slow
clients, a hung model, a full queue, names with '-' and '\\n', the bearer scheme in any case on both protocols,
and SIGTERM. No case may crash the server or answer 500. Time is asserted only as deadlines the server must meet
(its `--rest-api-timeout-in-ms` plus a margin for a loaded machine), memory as the growth of its peak RSS.

The hung model is `serving_helpers.export_gated`: a real SavedModel whose graph blocks in a TensorFlow op
(reading a FIFO nobody writes) until the test opens the FIFO; `genart_requests_in_flight` (the server's own
gauge) says when calls are in flight."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import (LATENT_DIM, ServerProcess, encoded_image, export_gated, gif_bomb, install_version,
                             open_gate, tensor_proto, write_models_config)
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

TOKEN = "hostile-token"
TIMEOUT_S = 3.0  # the servers' --rest-api-timeout-in-ms
MARGIN_S = 12.0  # a loaded 2-core machine's scheduling slack on top of a deadline
MAX_IMAGE_PIXELS = 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EMBEDDING = [0.25] * LATENT_DIM


def _home(tmp_path_factory, name):
    home = tmp_path_factory.mktemp(name)
    models = str(home / "models")
    for model in ("faces", "resnet-50"):
        install_version(models, model, 1)
    export_gated(str(home / "models" / "hung" / "1"), str(home / "gate"))
    (home / "token").write_text(TOKEN + "\n")
    return home, write_models_config(models, {"faces": "", "resnet-50": "", "hung": ""})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home, config = _home(tmp_path_factory, "hostile")
    process = ServerProcess("--model-config-file", config, "--auth-token-file", str(home / "token"),
                            "--rest-api-timeout-in-ms", str(int(TIMEOUT_S * 1000)), "--max-enqueued-batches", "1",
                            "--num-batch-threads", "1", "--max-image-pixels", str(MAX_IMAGE_PIXELS),
                            "--file-system-poll-wait-seconds", "0", log_path=str(home / "server.log"),
                            env={"GENART_HOME": str(home)})
    yield process, home
    gate = open_gate(str(home / "gate"))  # let stuck calls end, so the server can stop
    try:
        assert process.stop() == 0, process.log()[-3000:]
    finally:
        os.close(gate)


def _post(server, model, body, headers=AUTH, timeout=60):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/v1/models/{model}:predict", content=data, timeout=timeout,
                      headers={**headers, "Content-Type": "application/json"})


def _stub(server):
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_target))


def _grpc_request(model, **protos):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for alias, proto in protos.items():
        request.inputs[alias].CopyFrom(proto)
    return request


def _grpc_code(call):
    try:
        call()
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        return err.code()


def _b64(data):
    return {"image_bytes": {"b64": base64.b64encode(data).decode()}}


def test_image_bombs_and_over_budget_requests_are_refused_before_decoding(server):
    process, _ = server
    before = process.peak_rss()
    bomb = gif_bomb(frames=60, side=1024)  # 1 KB; decoded: 60 x 1024 x 1024 x 3 bytes = 189 MB
    refused = _post(process, "faces", {"instances": [_b64(bomb)]})
    assert refused.status_code == 400 and "--max-image-pixels" in refused.json()["error"], refused.text
    code = _grpc_code(lambda: _stub(process).Predict(_grpc_request(
        "faces", image_bytes=tf.make_tensor_proto([bomb])), metadata=(("authorization", f"Bearer {TOKEN}"),),
        timeout=60))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    side = 1024  # each image exactly at the per-image limit; nine exceed the request's 8x budget
    over = _post(process, "faces", {"instances": [_b64(encoded_image("PNG", side))] * 9})
    assert over.status_code == 400 and "instance 8" in over.text and "--max-request-pixels" in over.text
    animated = _post(process, "faces", {"instances": [_b64(encoded_image("GIF", 16, frames=3))]})
    assert animated.status_code == 200, animated.text
    assert process.peak_rss() - before < 50 << 20


def test_huge_declared_grpc_shape_is_refused_before_any_array(server):
    process, _ = server
    before = process.peak_rss()
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    for protos in ({"embeddings": tensor_proto(tf.float32, [2_000_000, 100])},  # ~30 bytes declaring 800 MB
                   {"embeddings": tensor_proto(tf.float32, [1_000_000, 100], float_val=[1.0])},
                   {"image_bytes": tensor_proto(tf.string, [100_000], string_val=[b"x" * 5000])}):
        with pytest.raises(grpc.RpcError) as info:
            _stub(process).Predict(_grpc_request("faces", **protos), metadata=metadata, timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "declares" in info.value.details()
    assert process.peak_rss() - before < 50 << 20


def test_a_thousand_bad_instances_cost_little(server):
    process, _ = server
    before = process.peak_rss()
    for instances in ([{}] * 1000, [{"embeddings": [0.5] * (LATENT_DIM - 1), "key": "k"}] * 1000):
        response = _post(process, "faces", {"instances": instances})
        assert response.status_code == 400 and response.json()["error"].startswith("instance 0"), response.text
    assert process.peak_rss() - before < 50 << 20


def _closed_within(sock, seconds):
    """(what the server sent, seconds until it closed the connection) reading for at most `seconds`. A close
    with unread bytes of ours on the server's side is a reset, which may drop what it sent last (b"")."""
    sock.settimeout(seconds)
    started, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except socket.timeout:
        return data, None
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


@pytest.mark.parametrize("kind", ["idle", "slow-headers", "slow-body"])
def test_slow_clients_are_answered_and_closed_within_the_deadline(server, kind):
    process, _ = server
    sock = socket.create_connection(("127.0.0.1", process.rest_port))
    head = (f"POST /v1/models/faces:predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n").encode()
    stop = threading.Event()

    def dribble(data):
        for byte in data:
            if stop.wait(0.5):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    if kind == "slow-headers":
        threading.Thread(target=dribble, args=(head,), daemon=True).start()
    elif kind == "slow-body":
        sock.sendall(head)
        threading.Thread(target=dribble, args=(b'{"instances": [' + b" " * 5000,), daemon=True).start()
    try:
        data, closed_after = _closed_within(sock, TIMEOUT_S + MARGIN_S)
    finally:
        stop.set()
        sock.close()
    assert closed_after is not None, f"{kind}: still open after {TIMEOUT_S + MARGIN_S}s"
    assert data.startswith(b"HTTP/1.1 408 ") or (kind == "slow-body" and not data), data[:200]


def test_names_with_a_dash_are_served_and_with_a_newline_refused(server):
    process, _ = server
    ok = _post(process, "resnet-50", {"instances": [{"embeddings": EMBEDDING}]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["key"] == "0"
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    request = _grpc_request("resnet-50", embeddings=tf.make_tensor_proto(np.zeros((1, LATENT_DIM), np.float32)))
    assert _grpc_code(lambda: _stub(process).Predict(request, metadata=metadata, timeout=60)) == grpc.StatusCode.OK
    newline = _post(process, "m%0A", {"instances": [{"embeddings": EMBEDDING}]})
    assert newline.status_code == 404 and set(newline.json()) == {"error"}
    request.model_spec.name = "m\n"
    assert _grpc_code(lambda: _stub(process).Predict(request, metadata=metadata, timeout=60)) == \
        grpc.StatusCode.NOT_FOUND


def test_bearer_scheme_in_any_case_on_both_protocols(server):
    process, _ = server
    request = _grpc_request("faces", embeddings=tf.make_tensor_proto(np.zeros((1, LATENT_DIM), np.float32)))
    for scheme, ok in (("Bearer", True), ("bearer", True), ("BEARER", True), ("bEaReR", True), ("Basic", False)):
        header = f"{scheme} {TOKEN}"
        rest = _post(process, "faces", {"instances": [{"embeddings": EMBEDDING}]}, {"Authorization": header})
        assert rest.status_code == (200 if ok else 401), (scheme, rest.text)
        code = _grpc_code(lambda: _stub(process).Predict(request, metadata=(("authorization", header),), timeout=60))
        assert code == (grpc.StatusCode.OK if ok else grpc.StatusCode.UNAUTHENTICATED), scheme
    assert httpx.get(f"{process.url}/readyz", timeout=30).json() == {"status": "ready"}  # no model names


def _in_flight(process, protocol):
    text = httpx.get(f"{process.url}/monitoring/prometheus/metrics", headers=AUTH, timeout=30).text
    return int(next(line.split()[-1] for line in text.splitlines()
                    if line.startswith(f'genart_requests_in_flight{{protocol="{protocol}"}}')))


def _wait_for(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _timed_post(process, model, out, index):
    started = time.monotonic()
    response = _post(process, model, {"instances": [{"embeddings": EMBEDDING}]})
    out[index] = (response.status_code, time.monotonic() - started)


def test_a_hung_model_answers_504_others_are_served_and_a_full_queue_503(server):
    process, _ = server
    first = {}
    _timed_post(process, "hung", first, 0)  # its graph call blocks the hung model's only worker from now on
    assert first[0][0] == 504 and first[0][1] < TIMEOUT_S + MARGIN_S, first
    ready = lambda: httpx.get(f"{process.url}/readyz", headers=AUTH, timeout=30)  # noqa: E731
    _wait_for(lambda: ready().status_code == 503, "/readyz reports the stuck model")
    assert "models stuck in a graph call: hung" in ready().json()["error"]
    assert httpx.get(f"{process.url}/readyz", timeout=30).json() == {"error": "not ready"}
    assert _post(process, "faces", {"instances": [{"embeddings": EMBEDDING}]}).status_code == 200  # others served
    results = {}
    threads = [threading.Thread(target=_timed_post, args=(process, "hung", results, i)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results.values())
    assert statuses == [503, 503, 504], results  # one batch fits the queue (--max-enqueued-batches 1)
    assert all(seconds < TIMEOUT_S + MARGIN_S for _, seconds in results.values()), results
    request = _grpc_request("hung", embeddings=tf.make_tensor_proto(np.zeros((1, LATENT_DIM), np.float32)))
    code = _grpc_code(lambda: _stub(process).Predict(request, timeout=60,
                                                     metadata=(("authorization", f"bearer {TOKEN}"),)))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_no_case_crashed_the_server_or_answered_500(server):
    process, home = server
    os.close(open_gate(str(home / "gate")))  # the stuck call ends now (answering no one)
    assert process.proc.poll() is None
    text = httpx.get(f"{process.url}/monitoring/prometheus/metrics", headers=AUTH, timeout=30).text
    counts = [line for line in text.splitlines() if line.startswith("genart_requests_total")]
    assert counts and not [line for line in counts if 'code="500"' in line or 'code="INTERNAL"' in line], counts
    assert "Traceback" not in process.log()


def test_sigterm_stops_both_protocols_at_once_then_drains_both(tmp_path_factory):
    home, config = _home(tmp_path_factory, "sigterm")
    process = ServerProcess("--model-config-file", config, "--rest-api-timeout-in-ms", "60000",
                            "--num-batch-threads", "2", "--file-system-poll-wait-seconds", "0",
                            log_path=str(home / "server.log"))
    request = _grpc_request("hung", embeddings=tf.make_tensor_proto(np.zeros((1, LATENT_DIM), np.float32)))
    answers = {}
    rest_call = threading.Thread(target=_timed_post, args=(process, "hung", answers, "rest"))
    grpc_call = threading.Thread(target=lambda: answers.__setitem__(
        "grpc", _grpc_code(lambda: _stub(process).Predict(request, timeout=120))))
    rest_call.start()
    grpc_call.start()
    try:
        _wait_for(lambda: _in_flight(process, "rest") == 1 and _in_flight(process, "grpc") == 1, "both in flight")
        process.proc.send_signal(signal.SIGTERM)
        refused = {}

        def new_calls_refused():
            try:
                socket.create_connection(("127.0.0.1", process.rest_port), timeout=2).close()
            except OSError:
                refused["rest"] = True
            faces = _grpc_request("faces", embeddings=request.inputs["embeddings"])
            refused["grpc"] = _grpc_code(lambda: _stub(process).Predict(faces, timeout=2)) == \
                grpc.StatusCode.UNAVAILABLE
            return refused.get("rest") and refused["grpc"]

        _wait_for(new_calls_refused, "both protocols refuse new calls", seconds=8)
        assert not answers, answers  # the in-flight calls are still being served
    finally:
        gate = open_gate(str(home / "gate"))
        rest_call.join(60)
        grpc_call.join(60)
        code = process.stop(timeout=60)
    assert answers["rest"][0] == 400 and answers["grpc"] == grpc.StatusCode.INVALID_ARGUMENT, answers  # answered
    os.close(gate)
    assert code == 0, process.log()[-3000:]
