"""A text2image export served (INTERFACE.md section 12): exactly the `text` signature, noise a function of (text,
key), `{"text", "key"}` instances over REST, gRPC and batch prediction, and seed 004's `GET /?input=`. Untrained
tiny network (`trainer.sample_exports`)."""
from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from saved_model_tools import show_signatures
from serving_helpers import build_registry, export_path, loaded_manager

from serving.batch import cli as batch_predict
from serving.client.grpc_client import GrpcClient
from serving.server.grpc_api import GrpcServer
from serving.server.rest import create_app

TRICKY = ["Red circle!", "RED   circle", "", "  ,;  ", "Ünïcödé ÉTÉ — café", "日本語 テキスト", "zzyzx qwv unseen",
          "tab\there\nnewline", "a_b-c.d"]


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    home = str(tmp_path_factory.mktemp("text-home"))
    with loaded_manager(build_registry(home, {"painter": ("text2image", [1]), "faces": ("vaegan", [1])})) as m:
        yield m


@pytest.fixture(scope="module")
def client(manager):
    with TestClient(create_app(manager), raise_server_exceptions=False) as c:
        yield c


def _png(b64: str) -> np.ndarray:
    data = base64.b64decode(b64, validate=True)
    assert data.startswith(b"\x89PNG")
    return np.asarray(Image.open(io.BytesIO(data)))


def test_saved_model_cli_lists_exactly_the_text_signature():
    shown = show_signatures(export_path("text2image"))
    assert set(shown) - {"__saved_model_init_op"} == {"text", "serving_default"}
    for name in ("text", "serving_default"):
        inputs, outputs, _ = shown[name]
        assert inputs == {"text": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))}
        assert outputs == {"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))}


def test_text_instances_over_rest_are_a_function_of_text_and_key(client):
    instances = [{"text": text, "key": "k"} for text in TRICKY] + [{"text": "red circle", "key": "other"}]
    rows = client.post("/v1/models/painter:predict", json={"instances": instances}).json()["predictions"]
    again = client.post("/v1/models/painter:predict", json={"instances": instances}).json()["predictions"]
    assert rows == again and len(rows) == len(instances)
    images = [_png(row["image_bytes"]["b64"]) for row in rows]
    assert all(image.shape == (16, 16, 3) for image in images)
    assert not np.array_equal(images[0], images[-1])  # same words, other key: another image
    empty = client.post("/v1/models/painter:predict", json={"instances": [{"text": "red"}]})
    assert empty.status_code == 200 and empty.json()["predictions"][0]["key"] == "0"


def test_get_input_answers_base64_pngs(client):
    images = client.get("/", params={"input": "red", "model": "painter"}).json()
    assert isinstance(images, list) and len(images) == 5
    assert all(_png(image).shape == (16, 16, 3) for image in images)
    sixteen = client.get("/", params={"input": "red circle", "model": "painter", "n": 16, "seed": 3})
    assert len(sixteen.json()) == 16
    assert client.get("/", params={"input": "red circle", "model": "painter", "n": 16, "seed": 3}).json() == \
        sixteen.json()  # keys derived from the seed
    for params, status in (({"input": "", "model": "painter"}, 400),
                           ({"input": "red", "model": "painter", "n": 17}, 400),
                           ({"input": "red", "model": "painter", "n": 0}, 400),
                           ({"input": "red", "model": "faces"}, 400), ({"input": "red", "model": "nope"}, 404)):
        response = client.get("/", params=params)
        assert response.status_code == status and response.json()["error"], params
    assert client.get("/").headers["content-type"].startswith("text/html")


def test_get_input_finds_the_only_text_model(tmp_path):
    with loaded_manager(build_registry(str(tmp_path), {"painter": ("text2image", [1])})) as manager:
        with TestClient(create_app(manager), raise_server_exceptions=False) as client:
            assert len(client.get("/?input=blue+square").json()) == 5


def test_grpc_text_instances(manager):
    server = GrpcServer(manager, port=0).start()
    try:
        client = GrpcClient(f"127.0.0.1:{server.port}")
        rows = client.predict("painter", [{"text": "red circle", "key": "a"}, {"text": "", "key": "b"}])
        client.close()
    finally:
        server.stop(0)
    assert [row["key"] for row in rows] == ["a", "b"]
    assert all(_png(row["image_bytes"]["b64"]).shape == (16, 16, 3) for row in rows)


def test_batch_prediction_of_text_instances(tmp_path):
    lines = [json.dumps({"text": text, "key": f"k{i}"}) for i, text in enumerate(TRICKY)]
    (tmp_path / "in.json").write_text("\n".join(lines) + "\n")
    code = batch_predict.main(["--input-paths", str(tmp_path / "in.json"), "--output-path", str(tmp_path / "out"),
                               "--model-dir", export_path("text2image")])
    assert code == 0
    results = [json.loads(line) for name in os.listdir(tmp_path / "out") if name.startswith("prediction.results")
               for line in open(tmp_path / "out" / name) if line.strip()]
    assert sorted(row["key"] for row in results) == sorted(f"k{i}" for i in range(len(TRICKY)))
    assert all(_png(row["image_bytes"]["b64"]).shape == (16, 16, 3) for row in results)
