"""trainer.sample_exports: the exports of untrained networks that the serving tests and benchmarks run on."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import MATCH_TOLERANCE, direct_embeddings, export_path, jpeg_bytes

from trainer import sample_exports


def test_a_seed_gives_the_same_weights_every_time_and_another_seed_others(tmp_path):
    again = sample_exports.export_untrained("vaegan", str(tmp_path / "again"), seed=1)
    images = [jpeg_bytes(0), jpeg_bytes(1)]
    mine = tf.saved_model.load(again).signatures["image_bytes"](image_bytes=tf.constant(images),
                                                                key=tf.constant(["a", "b"]))["embeddings"].numpy()
    np.testing.assert_array_equal(mine, direct_embeddings(images, 1))
    assert np.abs(mine - direct_embeddings(images, 2)).max() > 10 * MATCH_TOLERANCE  # far beyond float noise
    assert sorted(tf.saved_model.load(export_path("cyclegan", 1)).signatures) == ["a_to_b", "b_to_a",
                                                                                  "serving_default"]


def test_refusals(tmp_path, capsys):
    with pytest.raises(ValueError, match="multiple of 16"):
        sample_exports.export_untrained("vaegan", str(tmp_path / "a"), seed=1, image_size=24)
    with pytest.raises(ValueError, match="unknown kind 'gan'"):
        sample_exports.export_untrained("gan", str(tmp_path / "b"), seed=1)
    with pytest.raises(FileExistsError):
        sample_exports.export_untrained("vaegan", str(tmp_path), seed=1)
    assert sample_exports.main(["--image-size", "40", str(tmp_path / "c")]) == 2
    assert "multiple of 16" in capsys.readouterr().err and not list(tmp_path.iterdir())
