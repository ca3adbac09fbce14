"""End to end on real exports of untrained networks (version N = seed N): the real `python -m serving.server`
subprocess on free 127.0.0.1 ports, the seed's instance files over REST and gRPC (plain `PredictionServiceStub` +
`tf.make_tensor_proto`), `serving.predict`, `serving.client`, hot swap of a new version under continuous load,
clean SIGTERM shutdown."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from serving_helpers import (LATENT_DIM, ServerProcess, b64, build_registry, direct_embeddings, embedding_lines,
                             image_lines, jpeg_bytes, stage_job, which_version)
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client as serving_client
from serving import registry


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-home")
    config = build_registry(str(home), {"faces": ("vaegan", [1]), "cyc": ("cyclegan", [1])})
    files = {"embeddings": home / "embeddings.json", "images": home / "images.json"}
    files["embeddings"].write_text("\n".join(embedding_lines(3)) + "\n")
    files["images"].write_text("\n".join(image_lines(2)) + "\n\n")  # a trailing blank line is no instance
    process = ServerProcess("--model-config-file", config, log_path=str(home / "server.log"))
    yield process, files, home
    assert process.stop() == 0, process.log()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("kind", ["embeddings", "images"])
@pytest.mark.parametrize("columnar", [False, True], ids=["row", "columnar"])
@pytest.mark.parametrize("named", [False, True], ids=["routed", "signature_name"])
def test_seed_files_over_rest(server, kind, columnar, named):
    process, files, _ = server
    instances = _lines(files[kind])
    signature = "embeddings" if kind == "embeddings" else "image_bytes"
    body = {"inputs": {name: [i[name] for i in instances] for name in instances[0]}} if columnar \
        else {"instances": instances}
    if named:
        body["signature_name"] = signature
    response = httpx.post(f"{process.url}/v1/models/faces:predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    out = response.json()
    rows = [dict(zip(out["outputs"], values)) for values in zip(*out["outputs"].values())] if columnar \
        else out["predictions"]
    assert [row["key"] for row in rows] == [i["key"] for i in instances]
    if kind == "embeddings":
        assert all(base64.b64decode(row["image_bytes"]["b64"]).startswith(b"\x89PNG") for row in rows)
    else:
        assert all(len(row["embeddings"]) == LATENT_DIM for row in rows)


@pytest.mark.parametrize("kind", ["embeddings", "images"])
@pytest.mark.parametrize("signature", ["", "named"])
def test_seed_files_over_grpc_with_a_plain_stub(server, kind, signature):
    process, files, _ = server
    instances = _lines(files[kind])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "faces"
    if signature:
        request.model_spec.signature_name = "embeddings" if kind == "embeddings" else "image_bytes"
    if kind == "embeddings":
        request.inputs["embeddings"].CopyFrom(tf.make_tensor_proto([i["embeddings"] for i in instances],
                                                                   dtype=tf.float32))
    else:
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(
            [base64.b64decode(i["image_bytes"]["b64"]) for i in instances]))
    request.inputs["key"].CopyFrom(tf.make_tensor_proto([i["key"] for i in instances]))
    with grpc.insecure_channel(process.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    keys = [k.decode() for k in tf.make_ndarray(response.outputs["key"])]
    assert keys == [i["key"] for i in instances] and response.model_spec.version.value == 1
    if kind == "embeddings":
        assert all(png.startswith(b"\x89PNG") for png in tf.make_ndarray(response.outputs["image_bytes"]))
    else:
        assert tf.make_ndarray(response.outputs["embeddings"]).shape == (len(instances), LATENT_DIM)


def test_rest_and_grpc_clients_agree(server):
    process, files, _ = server
    rest, rpc = serving_client.connect(process.url), serving_client.connect(f"grpc://{process.grpc_target}")
    z = np.random.default_rng(1).normal(size=(3, LATENT_DIM))
    pngs = rest.generate("faces", z)
    assert pngs == rpc.generate("faces", z) and all(p.startswith(b"\x89PNG") for p in pngs)
    z_back = rest.embed("faces", pngs)
    assert z_back.shape == (3, LATENT_DIM) and z_back.dtype == np.float32
    np.testing.assert_allclose(z_back, rpc.embed("faces", pngs), rtol=1e-6)
    instances = _lines(files["images"])
    assert rest.predict("cyc", instances) == rpc.predict("cyc", instances)
    assert rest.predict("faces", instances, signature_name="image_bytes", version=1) == \
        rpc.predict("faces", instances, signature_name="image_bytes", version=1)
    with pytest.raises(serving_client.ServingError) as info:
        rest.predict("nope", instances)
    assert info.value.status == 404
    with pytest.raises(serving_client.ServingError) as info:
        rpc.predict("nope", instances)
    assert info.value.status == "NOT_FOUND"
    rest.close()
    rpc.close()


def _predict_cli(*args):
    return subprocess.run([sys.executable, "-m", "serving.predict", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_predict_cli_server_and_local_agree(server, tmp_path):
    process, files, home = server
    remote = _predict_cli("--model", "faces", "--json-instances", str(files["embeddings"]), "--server", process.url,
                          "--output-dir", str(tmp_path / "out"))
    assert remote.returncode == 0, remote.stderr
    predictions = json.loads(remote.stdout)["predictions"]
    assert sorted(os.listdir(tmp_path / "out")) == ["0.png", "1.png", "2.png"]
    assert (tmp_path / "out" / "0.png").read_bytes() == base64.b64decode(predictions[0]["image_bytes"]["b64"])
    local = _predict_cli("--model", "faces", "--json-instances", str(files["images"]),
                         "--model-dir", str(home / "models" / "faces"), "--output-dir", str(tmp_path / "emb"))
    assert local.returncode == 0, local.stderr
    served = httpx.post(f"{process.url}/v1/models/faces:predict", timeout=60,
                        json={"instances": _lines(files["images"])}).json()
    assert json.loads(local.stdout) == served
    assert json.loads((tmp_path / "emb" / "1.json").read_text()) == served["predictions"][1]["embeddings"]
    bad = _predict_cli("--model", "nope", "--json-instances", str(files["images"]), "--server", process.url)
    assert bad.returncode == 1 and "Servable not found" in bad.stderr


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    """Poll `condition` until it holds; the timeout only fails a hung test, it is not what the test measures."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _states(process) -> list[tuple[str, str]]:
    status = httpx.get(f"{process.url}/v1/models/faces", timeout=30).json()["model_version_status"]
    return [(s["version"], s["state"]) for s in status]


def test_hot_swap_under_load_drops_nothing(tmp_path):
    """REST and gRPC clients predict without pause while `registry.deploy` adds version 2: every request succeeds,
    each response comes from the version it names, and the versions served go 1...1, 2...2. The steps wait on
    counters (responses seen) and on the version status, never on a clock."""
    build_registry(str(tmp_path), {"faces": ("vaegan", [1])})
    stage_job(str(tmp_path), "faces_v2", seed=2)  # a finished job whose export becomes version 2
    image = jpeg_bytes(0)
    instances = [{"image_bytes": {"b64": b64(image)}, "key": "0"}]
    for version in (1, 2):
        direct_embeddings([image], version)  # each version's own answer, computed before the clients start
    process = ServerProcess("--model_name=faces", f"--model_base_path={tmp_path / 'models' / 'faces'}",
                            "--file_system_poll_wait_seconds=1", log_path=str(tmp_path / "server.log"))
    stop, seen, failures = threading.Event(), {"rest": [], "grpc": []}, []
    http, channel = httpx.Client(timeout=30), grpc.insecure_channel(process.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "faces"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([image]))

    def rest_call() -> int:
        response = http.post(f"{process.url}/v1/models/faces:predict", json={"instances": instances})
        assert response.status_code == 200, (response.status_code, response.text)
        return which_version(response.json()["predictions"][0]["embeddings"], image, (1, 2))

    def grpc_call() -> int:
        response = stub.Predict(request, timeout=30)
        version = which_version(tf.make_ndarray(response.outputs["embeddings"])[0], image, (1, 2))
        assert version == response.model_spec.version.value, ("answered by", version, "named", response.model_spec)
        return version

    def client_loop(protocol, call):
        while not stop.is_set():
            try:
                seen[protocol].append(call())
            except (AssertionError, grpc.RpcError, httpx.HTTPError) as err:
                failures.append((protocol, repr(err)))
                return

    threads = [threading.Thread(target=client_loop, args=args) for args in (("rest", rest_call), ("grpc", grpc_call))]
    try:
        for thread in threads:
            thread.start()
        _wait_for(lambda: failures or all(len(v) >= 3 for v in seen.values()), "responses before the deploy")
        assert registry.deploy("faces_v2", model_name="faces", home=str(tmp_path))[:2] == ("faces", 2)
        _wait_for(lambda: failures or _states(process) == [("1", "END"), ("2", "AVAILABLE")],
                  "version 2 to replace version 1")
        after = {protocol: len(versions) for protocol, versions in seen.items()}
        _wait_for(lambda: failures or all(len(seen[p]) >= after[p] + 3 for p in seen), "responses after the swap")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        http.close()
        channel.close()
        exit_code = process.stop()
    assert not failures, (failures[:3], process.log()[-2000:])
    for protocol, versions in seen.items():
        assert versions[0] == 1 and versions[-1] == 2, (protocol, versions[:5])
        assert versions == sorted(versions), f"{protocol}: went back to version 1 after the swap"
        print(f"{protocol}: {len(versions)} responses, 0 failed, {versions.count(1)} from version 1, "
              f"{versions.count(2)} from version 2")
    assert exit_code == 0
    log = process.log()
    assert "REST API listening on http://127.0.0.1:" in log and "gRPC API listening on 127.0.0.1:" in log
    assert "stopped" in log
