"""The exporter knows no model: CycleGAN's image -> image signatures come out of the same code as the VAE-GAN's,
and a model whose variables live under a MirroredStrategy (multi-GPU training) exports and serves the same way.

Untrained tiny models (32 px, 8 filters): these tests check signatures and loading, not what the models learned.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from saved_model_tools import (PREDICT_METHOD, call, decode_png, encode_image, pattern, run_python_json, run_signature,
                               show_signatures)
from trainer import export
from trainer.models import model_class
from trainer.models.cyclegan_config import CycleGANConfig

IMAGE_SIZE = 32
IMAGE_TO_IMAGE = ({"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))},
                  {"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))}, PREDICT_METHOD)
IMAGES = [encode_image(pattern(0, 40, 56), "JPEG"), encode_image(pattern(1, 32, 32)), encode_image(pattern(2, 50, 30))]
KEYS = np.array([b"first", b"second", b"third"])


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))


def test_cyclegan_export_has_both_directions(tmp_path):
    config = CycleGANConfig(image_size=IMAGE_SIZE, base_filters=8, n_blocks=1, max_steps=10).validate()
    model = model_class("cyclegan")(config)
    model.build_for_training()
    export_dir = export.export_model(model, str(tmp_path / "job"))

    shown = show_signatures(export_dir)
    assert set(shown) - {"__saved_model_init_op"} == {"a_to_b", "b_to_a", "serving_default"}
    assert shown["a_to_b"] == shown["b_to_a"] == shown["serving_default"] == IMAGE_TO_IMAGE

    loaded = tf.saved_model.load(export_dir)
    served = run_signature(export_dir, "a_to_b", {"image_bytes": np.array(IMAGES, dtype=object), "key": KEYS},
                           str(tmp_path))  # TF Serving's TF1 loader
    direct = call(loaded, "a_to_b", image_bytes=IMAGES, key=KEYS)
    assert list(served["key"]) == list(direct["key"]) == list(KEYS)
    assert list(served["image_bytes"]) == list(direct["image_bytes"])
    assert list(direct["image_bytes"]) == list(call(loaded, "serving_default", image_bytes=IMAGES,
                                                    key=KEYS)["image_bytes"])
    back = call(loaded, "b_to_a", image_bytes=direct["image_bytes"], key=direct["key"])  # a round trip
    assert [decode_png(png).shape for png in back["image_bytes"]] == [(IMAGE_SIZE, IMAGE_SIZE, 3)] * 3

    _, specs = model.export_spec()
    own_bytes = sum(v.numpy().nbytes for v in export.network_variables(specs))
    assert own_bytes <= folder_bytes(os.path.join(export_dir, "variables")) <= 1.10 * own_bytes


MIRRORED_EXPORT = """
import json, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer import export
from trainer.models import model_class
from trainer.models.vaegan_config import VAEGANConfig
config = VAEGANConfig(image_size=32, latent_dim=8, base_filters=8, batch_size=2).validate()
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = model_class("vaegan")(config)
    model.build_for_training()
_, specs = model.export_spec()
variables = export.network_variables(specs)
assert all(isinstance(v, tf.distribute.DistributedValues) for v in variables), type(variables[0])
print(json.dumps({"export": export.export_model(model, sys.argv[1]),
                  "own_bytes": sum(v.numpy().nbytes for v in variables)}))
"""


def test_export_of_a_model_trained_under_a_mirrored_strategy(tmp_path):
    result = run_python_json(MIRRORED_EXPORT, str(tmp_path / "job"))
    export_dir = result["export"]
    assert result["own_bytes"] <= folder_bytes(os.path.join(export_dir, "variables")) <= 1.10 * result["own_bytes"]
    served = run_signature(export_dir, "image_bytes", {"image_bytes": np.array(IMAGES, dtype=object), "key": KEYS},
                           str(tmp_path))
    assert list(served["key"]) == list(KEYS) and served["embeddings"].shape == (3, 8)
