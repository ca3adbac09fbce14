"""A cgan export served: `{"embeddings", "label", "key"}` instances find the `embeddings` signature without a
signature name (REST, gRPC, batch prediction), the metadata carries the classes, and the clients send labels.
Untrained tiny network."""
from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_helpers import loaded_manager, write_models_config

from serving.batch import cli as batch_predict
from serving.client import rest as rest_client
from serving.client.grpc_client import GrpcClient
from serving.server.grpc_api import GrpcServer
from serving.server.rest import create_app
from trainer.export import export_model
from trainer.models.gan import GANZoo
from trainer.models.gan_config import GANZooConfig

LATENT = 8


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A model tree holding the cgan export as pets/1."""
    home = tmp_path_factory.mktemp("zoo-home")
    config = GANZooConfig(generator="cgan", discriminator="cgan", image_size=16, latent_dim=LATENT,
                          generator_filters=4, discriminator_filters=4, classes=["cat", "dog", "owl"]).validate()
    model = GANZoo(config)
    model.build_for_training()
    os.makedirs(home / "models" / "pets")
    os.rename(export_model(model, str(home / "job")), home / "models" / "pets" / "1")
    return str(home / "models")


@pytest.fixture(scope="module")
def manager(models_dir):
    with loaded_manager(write_models_config(models_dir, {"pets": ""})) as manager:
        yield manager


@pytest.fixture(scope="module")
def client(manager):
    with TestClient(create_app(manager), raise_server_exceptions=False) as c:
        yield c


def test_label_instances_route_to_the_embeddings_signature(client):
    instances = rest_client._embedding_instances(np.zeros([3, LATENT]), labels=[0, 2, 1])
    assert instances[1] == {"embeddings": [0.0] * LATENT, "key": "1", "label": 2}
    response = client.post("/v1/models/pets:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert [row["key"] for row in rows] == ["0", "1", "2"]
    assert all(base64.b64decode(row["image_bytes"]["b64"]).startswith(b"\x89PNG") for row in rows)
    bad = client.post("/v1/models/pets:predict", json={"instances": [{"embeddings": [0.0] * LATENT, "label": 7}]})
    assert bad.status_code == 400 and "class id in [0, 3)" in bad.json()["error"]


def test_metadata_lists_the_classes(client):
    metadata = client.get("/v1/models/pets/metadata").json()["metadata"]
    assert metadata["classes"] == [{"name": "cat"}, {"name": "dog"}, {"name": "owl"}]
    inputs = metadata["signature_def"]["signature_def"]["embeddings"]["inputs"]
    assert set(inputs) == {"embeddings", "label", "key"} and inputs["label"]["dtype"] == "DT_INT64"


def test_grpc_client_sends_labels(manager):
    server = GrpcServer(manager, port=0).start()
    try:
        client = GrpcClient(f"127.0.0.1:{server.port}")
        images = client.generate("pets", np.zeros([2, LATENT]), labels=[2, 0])
        assert len(images) == 2 and all(image.startswith(b"\x89PNG") for image in images)
        client.close()
    finally:
        server.stop(0)


def test_batch_prediction_of_label_instances(models_dir, tmp_path):
    lines = [json.dumps({"embeddings": [0.1] * LATENT, "label": i % 3, "key": f"k{i}"}) for i in range(4)]
    lines.append(json.dumps({"embeddings": [0.1] * LATENT, "label": 9, "key": "bad"}))
    (tmp_path / "in.json").write_text("\n".join(lines) + "\n")
    code = batch_predict.main(["--input-paths", str(tmp_path / "in.json"), "--output-path", str(tmp_path / "out"),
                               "--model-dir", os.path.join(models_dir, "pets", "1")])
    assert code == 0
    results, errors = [], []
    for name in os.listdir(tmp_path / "out"):
        target = results if name.startswith("prediction.results") else errors
        target += [json.loads(line) for line in open(tmp_path / "out" / name) if line.strip()]
    assert sorted(row["key"] for row in results) == ["k0", "k1", "k2", "k3"]
    assert [row["key"] for row in errors] == ["bad"] and "class id in [0, 3)" in errors[0]["error"]
