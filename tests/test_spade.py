"""SPADE end to end (INTERFACE.md section 11): a tiny model learns a colour-by-class mapping (measured through the
exported `label_map` signature), whose export has exactly the contract's signature and is served by REST, gRPC and
batch prediction with `label_map` instances; SPADE's normalisation is the paper's formula."""
from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image
from saved_model_tools import show_signatures
from serving_helpers import loaded_manager, read_batch_outputs, write_models_config

import spade_data
from preprocess import pipeline
from serving.batch import cli as batch_predict
from serving.client.grpc_client import GrpcClient
from serving.server.grpc_api import GrpcServer
from serving.server.rest import create_app

SIZE = 16
TRAIN_STEPS = 500  # ~20 s on 2 cores: the class colour error falls ~4.7x (measured), the test asks for 3x
TINY = ["--image-size", str(SIZE), "--batch-size", "8", "--base-filters", "8", "--spade-filters", "16",
        "--discriminator-layers", "3", "--sample-every-steps", "1000", "--checkpoint-every-steps", "1000",
        "--eval-every-steps", "0"]


def label_png(ids: np.ndarray) -> bytes:
    return spade_data.png(spade_data.LABEL_COLORS[ids])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(export before training, export after TRAIN_STEPS) of a tiny SPADE on the toy pairs."""
    import keras

    from trainer import export, loop
    from trainer.models import model_class
    from trainer.task import resolve_config

    root = tmp_path_factory.mktemp("spade")
    spade_data.write_pairs(str(root / "pairs"), 48, SIZE)
    pipeline.run(str(root / "pairs"), str(root / "data"),
                 pipeline.Options(image_size=SIZE, center_crop=True, workers=1), progress=False)
    config = resolve_config(["--model", "spade", "--data-dir", str(root / "data"), "--job-dir", str(root / "job"),
                             "--max-steps", str(TRAIN_STEPS), *TINY])
    keras.utils.set_random_seed(config.seed)  # the weights the loop starts from
    untrained = model_class("spade")(config)
    untrained.build_for_training()
    before = export.export_model(untrained, str(root / "untrained"))
    return before, loop.train(config).export_dir


def generate(export_dir: str, label_maps: list[bytes]) -> np.ndarray:
    signature = tf.saved_model.load(export_dir).signatures["label_map"]
    out = signature(label_map=tf.constant(label_maps), key=tf.constant([str(i) for i in range(len(label_maps))]))
    return np.stack([np.asarray(Image.open(io.BytesIO(png)), np.float64) for png in out["image_bytes"].numpy()])


def test_a_tiny_spade_learns_the_colour_of_each_class_through_the_export(trained):
    rng = np.random.default_rng(123)  # layouts never seen in training
    ids = np.stack([spade_data.layout(rng, SIZE) for _ in range(8)])
    maps = [label_png(one) for one in ids]
    before = spade_data.class_colour_error(generate(trained[0], maps), ids)
    after = spade_data.class_colour_error(generate(trained[1], maps), ids)
    print(f"per-class mean colour error: {before:.1f} untrained -> {after:.1f} after {TRAIN_STEPS} steps "
          f"({before / after:.1f}x)")
    assert before >= 3 * after


def test_anti_aliased_and_index_label_maps_map_to_the_nearest_class(trained):
    rng = np.random.default_rng(5)
    ids = spade_data.layout(rng, SIZE)
    colours = spade_data.LABEL_COLORS[ids].astype(np.int16)
    smudged = np.clip(colours + rng.integers(-40, 41, colours.shape), 0, 255).astype(np.uint8)  # off-palette
    rgba = np.dstack([smudged, np.full(ids.shape, 255, np.uint8)])
    index = spade_data.png(ids)  # grey: pixel = class id
    big = np.asarray(Image.fromarray(spade_data.LABEL_COLORS[ids]).resize((SIZE * 3, SIZE * 3), Image.NEAREST))
    exact, *others = generate(trained[1], [label_png(ids), spade_data.png(smudged), spade_data.png(rgba), index,
                                           spade_data.png(big)])
    for other in others:
        np.testing.assert_array_equal(other, exact)


def test_saved_model_cli_lists_exactly_the_label_map_signature(trained):
    shown = show_signatures(trained[1])
    contract = ({"label_map": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))},
                {"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))}, "tensorflow/serving/predict")
    assert set(shown) - {"__saved_model_init_op"} == {"label_map", "serving_default"}
    assert shown["label_map"] == contract and shown["serving_default"] == contract
    classes = json.load(open(os.path.join(trained[1], "assets", "classes.json")))["classes"]
    assert classes == [{"name": n, "color": list(c)} for n, c, _ in spade_data.CLASSES]


# ---------------------------------------------------------------- served


@pytest.fixture(scope="module")
def models_dir(trained, tmp_path_factory):
    home = tmp_path_factory.mktemp("spade-home")
    os.makedirs(home / "models" / "landscape")
    os.symlink(trained[1], home / "models" / "landscape" / "1")
    return str(home / "models")


@pytest.fixture(scope="module")
def manager(models_dir):
    with loaded_manager(write_models_config(models_dir, {"landscape": ""})) as manager:
        yield manager


def instances(count: int) -> list[dict]:
    rng = np.random.default_rng(7)
    return [{"label_map": {"b64": base64.b64encode(label_png(spade_data.layout(rng, SIZE))).decode()}}
            for _ in range(count)]


def test_rest_infers_the_label_map_signature_and_lists_the_classes(manager):
    with TestClient(create_app(manager), raise_server_exceptions=False) as client:
        response = client.post("/v1/models/landscape:predict", json={"instances": instances(2)})
        assert response.status_code == 200, response.text
        rows = response.json()["predictions"]
        assert [row["key"] for row in rows] == ["0", "1"]
        assert all(base64.b64decode(row["image_bytes"]["b64"]).startswith(b"\x89PNG") for row in rows)
        bad = client.post("/v1/models/landscape:predict", json={"instances": [{"label_map": {"b64": "AAAA"}}]})
        assert bad.status_code == 400 and "label_map" in bad.json()["error"]
        metadata = client.get("/v1/models/landscape/metadata").json()["metadata"]
        assert metadata["classes"] == [{"name": n, "color": list(c)} for n, c, _ in spade_data.CLASSES]


def test_grpc_predicts_label_map_instances(manager):
    server = GrpcServer(manager, port=0).start()
    try:
        client = GrpcClient(f"127.0.0.1:{server.port}")
        rows = client.predict("landscape", instances(2))
        assert len(rows) == 2 and all(base64.b64decode(row["image_bytes"]["b64"]).startswith(b"\x89PNG")
                                      for row in rows)
        client.close()
    finally:
        server.stop(0)


def test_batch_prediction_of_label_map_instances(trained, tmp_path):
    lines = [json.dumps({**row, "key": f"k{i}"}) for i, row in enumerate(instances(3))]
    lines.append(json.dumps({"label_map": {"b64": base64.b64encode(b"not a png").decode()}, "key": "bad"}))
    (tmp_path / "in.json").write_text("\n".join(lines) + "\n")
    code = batch_predict.main(["--input-paths", str(tmp_path / "in.json"), "--output-path", str(tmp_path / "out"),
                               "--model-dir", trained[1]])
    assert code == 0
    outputs = read_batch_outputs(str(tmp_path / "out"))
    assert sorted(row["key"] for row in outputs["results"]) == ["k0", "k1", "k2"]
    assert [row["key"] for row in outputs["errors"]] == ["bad"]
