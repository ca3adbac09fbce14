"""Across the whole product: a VAE-GAN and a CycleGAN built by the trainer (untrained), exported by `trainer.export`
(through `trainer.sample_exports`), left in job dirs as training would, deployed by the registry, then served by the
real `python -m serving.server` over REST and gRPC (plain TF Serving stubs), run by `serving.predict --model-dir`,
and batch-predicted by `serving.batch_predict` — in both directions of each model."""
from __future__ import annotations

import base64
import io
import json
import os

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from serving_helpers import IMAGE_SIZE, LATENT_DIM, ServerProcess, jpeg_bytes, stage_job
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from artifacts import model_tree
from serving import registry
from serving.batch import cli as batch_predict
from serving.client import cli as predict

MODELS = {"vae": "vaegan", "cyc": "cyclegan"}


def png_size(data: bytes) -> tuple[int, int, str]:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.width, image.height, image.mode


def jpeg_instance(seed: int, key: str) -> dict:
    return {"image_bytes": {"b64": base64.b64encode(jpeg_bytes(seed, size=48)).decode()}, "key": key}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A GENART_HOME with a finished job of each model (untrained), deployed as version 1 by the registry."""
    home = str(tmp_path_factory.mktemp("real-home"))
    for name, kind in MODELS.items():
        stage_job(home, name, kind)
        assert registry.deploy(name, home=home)[:2] == (name, 1)
    return home


@pytest.fixture(scope="module")
def server(home):
    process = ServerProcess("--model-config-file", model_tree.models_config_path(home),
                            log_path=os.path.join(home, "server.log"))
    yield process
    assert process.stop() == 0, process.log()


def rest_predict(server, model: str, body: dict) -> list[dict]:
    response = httpx.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_vaegan_round_trip_over_rest_feeds_predictions_back_unchanged(server):
    z = np.random.RandomState(0).randn(3, LATENT_DIM).round(4).tolist()
    images = rest_predict(server, "vae", {"instances": [{"embeddings": v, "key": str(i)} for i, v in enumerate(z)]})
    assert [p["key"] for p in images] == ["0", "1", "2"]
    assert all(png_size(base64.b64decode(p["image_bytes"]["b64"])) == (IMAGE_SIZE, IMAGE_SIZE, "RGB")
               for p in images)
    # every prediction is a valid instance for the opposite signature, as it is
    embeddings = rest_predict(server, "vae", {"instances": images})
    assert [p["key"] for p in embeddings] == ["0", "1", "2"]
    assert np.array(embeddings[0]["embeddings"]).shape == (LATENT_DIM,)
    again = rest_predict(server, "vae", {"instances": images})
    assert again == embeddings  # the posterior mean: the same request gives the very same vectors
    alone = rest_predict(server, "vae", {"instances": images[:1]})  # another batch size: other CPU kernels
    np.testing.assert_allclose(alone[0]["embeddings"], embeddings[0]["embeddings"], rtol=1e-5, atol=1e-6)


def test_vaegan_both_signatures_over_grpc_with_a_plain_stub(server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "vae"
    request.inputs["embeddings"].CopyFrom(tf.make_tensor_proto(np.zeros([2, LATENT_DIM], np.float32)))
    request.inputs["key"].CopyFrom(tf.make_tensor_proto(["a", "b"]))
    reply = stub.Predict(request, timeout=60)
    pngs = tf.make_ndarray(reply.outputs["image_bytes"])
    assert reply.model_spec.signature_name == "embeddings" and len(pngs) == 2
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "vae"
    request.model_spec.signature_name = "image_bytes"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(list(pngs)))
    reply = stub.Predict(request, timeout=60)
    assert tf.make_ndarray(reply.outputs["embeddings"]).shape == (2, LATENT_DIM)
    assert list(tf.make_ndarray(reply.outputs["key"])) == [b"0", b"1"]  # filled from the instance index


@pytest.mark.parametrize("signature", [None, "a_to_b", "b_to_a"])
def test_cyclegan_both_directions_over_rest(server, signature):
    body = {"instances": [jpeg_instance(1, "x"), jpeg_instance(2, "y")]}
    if signature:
        body["signature_name"] = signature
    rows = rest_predict(server, "cyc", body)
    assert [r["key"] for r in rows] == ["x", "y"]
    assert all(png_size(base64.b64decode(r["image_bytes"]["b64"])) == (IMAGE_SIZE, IMAGE_SIZE, "RGB") for r in rows)


def test_cyclegan_directions_differ_and_default_is_a_to_b_over_grpc(server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_target))
    outputs = {}
    for signature in ("", "a_to_b", "b_to_a"):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "cyc"
        request.model_spec.signature_name = signature
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([jpeg_bytes(3, size=48)]))
        outputs[signature] = tf.make_ndarray(stub.Predict(request, timeout=60).outputs["image_bytes"])[0]
    assert outputs[""] == outputs["a_to_b"] != outputs["b_to_a"]


def test_metadata_lists_exactly_the_contract_signatures(server):
    for model, expected in (("vae", {"embeddings", "image_bytes", "serving_default"}),
                            ("cyc", {"a_to_b", "b_to_a", "serving_default"})):
        meta = httpx.get(f"{server.url}/v1/models/{model}/metadata", timeout=30).json()
        # like TF Serving, the map is the MetaGraph's own, which also holds the init op
        assert set(meta["metadata"]["signature_def"]["signature_def"]) - {"__saved_model_init_op"} == expected


def test_predict_with_model_dir_writes_pngs_and_embeddings(home, tmp_path, capsys):
    export_dir = model_tree.resolve_model_dir("vae", home=home)
    out = tmp_path / "out"
    requests = {"z.json": {"embeddings": [0.5] * LATENT_DIM, "key": "img0"}, "photos.json": jpeg_instance(4, "photo")}
    for file_name, instance in requests.items():
        (tmp_path / file_name).write_text(json.dumps(instance) + "\n")
        assert predict.main(["--model", "vae", "--model-dir", export_dir, "--json-instances",
                             str(tmp_path / file_name), "--output-dir", str(out)]) == 0
        [prediction] = json.loads(capsys.readouterr().out)["predictions"]
        assert prediction["key"] == instance["key"]
    assert png_size((out / "img0.png").read_bytes()) == (IMAGE_SIZE, IMAGE_SIZE, "RGB")
    assert len(json.loads((out / "photo.json").read_text())) == LATENT_DIM  # the bare vector


def test_batch_prediction_runs_on_the_cyclegan_export(home, tmp_path, monkeypatch):
    monkeypatch.setenv("GENART_HOME", home)
    inputs = tmp_path / "requests.json"
    inputs.write_text("\n".join(json.dumps(jpeg_instance(i, f"k{i}")) for i in range(5)) + "\n{not json\n")
    out = tmp_path / "predictions"
    assert batch_predict.main(["--model", "cyc", "--signature-name", "b_to_a", "--input-paths", str(inputs),
                               "--output-path", str(out)]) == 0
    results = [json.loads(line) for f in sorted(out.glob("prediction.results-*")) for line in f.read_text().splitlines()]
    errors = [json.loads(line) for f in sorted(out.glob("prediction.errors_stats-*"))
              for line in f.read_text().splitlines()]
    assert sorted(r["key"] for r in results) == [f"k{i}" for i in range(5)]
    assert all(png_size(base64.b64decode(r["image_bytes"]["b64"]))[:2] == (IMAGE_SIZE, IMAGE_SIZE) for r in results)
    assert len(errors) == 1 and errors[0]["line"] == 6 and "JSON" in errors[0]["error"]
