"""A cgan export served: `{"embeddings", "label", "key"}` instances find the `embeddings` signature without a
signature name, the metadata carries the classes, and the clients send labels. Untrained tiny network."""
from __future__ import annotations

import base64
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_helpers import write_models_config

from serving.client import rest as rest_client
from serving.server.manager import ModelManager
from serving.server.rest import create_app
from trainer.export import export_model
from trainer.models.gan import GANZoo
from trainer.models.gan_config import GANZooConfig

LATENT = 8


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("zoo-home")
    config = GANZooConfig(generator="cgan", discriminator="cgan", image_size=16, latent_dim=LATENT,
                          generator_filters=4, discriminator_filters=4, classes=["cat", "dog", "owl"]).validate()
    model = GANZoo(config)
    model.build_for_training()
    os.makedirs(home / "models" / "pets")
    os.rename(export_model(model, str(home / "job")), home / "models" / "pets" / "1")
    manager = ModelManager(config_path=write_models_config(str(home / "models"), {"pets": ""}), poll_seconds=-1)
    manager.poll_once()
    assert manager.ready(), manager.states()
    with TestClient(create_app(manager), raise_server_exceptions=False) as c:
        yield c
    manager.stop()


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
