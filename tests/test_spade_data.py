"""SPADE's data (INTERFACE.md section 11) and its normalisation: label maps stay aligned with their images through
preprocessing and the trainer's random crop + flip, `--auto-labels` is deterministic, mismatched pairs are listed
in `skipped`, and a SPADE layer computes the paper's formula."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from artifacts.labels import LABEL_MAP_FEATURE, palette_color
from preprocess import pipeline
from preprocess.records import make_dataset

BLOCK_COLOURS = np.asarray([(240, 220, 40), (30, 60, 200), (200, 40, 160)], np.uint8)
SIZE = 16


def block_picture(height: int = 40, width: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric picture of three flat colours (a flip or a shifted crop would show) and its class ids,
    derived from its own pixels."""
    ids = np.zeros((height, width), np.uint8)
    ids[: height // 2, : width // 3] = 1
    ids[height // 2:, width // 2:] = 2
    ids[5:12, 30:34] = 1
    return BLOCK_COLOURS[ids], ids


def write_pair_folder(root, pictures: int = 4, labels_json: bool = False) -> str:
    for folder in ("images", "labels"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for i in range(pictures):
        rgb, ids = block_picture()
        Image.fromarray(np.ascontiguousarray(rgb[:, ::-1] if i % 2 else rgb)).save(f"{root}/images/p{i}.png")
        Image.fromarray(np.ascontiguousarray(ids[:, ::-1] if i % 2 else ids), "L").save(f"{root}/labels/p{i}.png")
    if labels_json:
        with open(os.path.join(root, "labels.json"), "w") as f:
            json.dump({"classes": [{"name": f"c{i}", "color": c.tolist()} for i, c in enumerate(BLOCK_COLOURS)]}, f)
    return str(root)


def stored_pairs(data_dir: str) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for name in sorted(os.listdir(data_dir)):
        if name.endswith(".tfrecord"):
            for record in tf.data.TFRecordDataset(os.path.join(data_dir, name)):
                example = tf.train.Example.FromString(record.numpy()).features.feature
                image = tf.io.decode_png(example["image/encoded"].bytes_list.value[0]).numpy()
                ids = tf.io.decode_png(example[LABEL_MAP_FEATURE].bytes_list.value[0]).numpy()[:, :, 0]
                pairs.append((image, ids))
    return pairs


def assert_aligned(image: np.ndarray, ids: np.ndarray, colours: np.ndarray, tolerance: float = 12) -> None:
    """Every pixel whose 3x3 neighbourhood is one class has (about) that class's colour."""
    padded = np.pad(ids.astype(int), 1, constant_values=-1)  # border pixels: neighbours unknown
    windows = np.stack([padded[dy:dy + ids.shape[0], dx:dx + ids.shape[1]] for dy in range(3) for dx in range(3)])
    interior = (windows == ids).all(axis=0)
    assert interior.mean() > 0.3
    error = np.abs(image.astype(float) - colours[ids].astype(float)).max(axis=-1)
    assert error[interior].max() <= tolerance, error[interior].max()


def test_label_maps_stay_aligned_through_preprocessing_and_the_random_crop_and_flip(tmp_path):
    source = write_pair_folder(tmp_path / "pairs")
    summary = pipeline.run(source, str(tmp_path / "data"), pipeline.Options(image_size=SIZE, workers=1),
                           progress=False)
    manifest = json.load(open(tmp_path / "data" / "manifest.json"))
    assert manifest["classes"] == [{"name": f"class_{i}", "color": palette_color(i)} for i in range(3)]
    assert sum(d.usable for d in summary.datasets) == 4
    for image, ids in stored_pairs(str(tmp_path / "data")):
        assert image.shape[:2] == ids.shape == (18, 25)  # load_size 18, aspect kept
        assert_aligned(image, ids, BLOCK_COLOURS)
    files = [str(p) for p in (tmp_path / "data").glob("*.tfrecord")]
    crops = make_dataset(files, SIZE, False, 4, training=True, label_maps=True)
    seen = set()
    for images, ids in crops.take(10):
        for image, one in zip(images.numpy(), ids.numpy()):
            assert one.dtype == np.int32 and one.shape == (SIZE, SIZE)
            assert_aligned(np.round((image + 1) * 127.5), one, BLOCK_COLOURS)
            seen.add(one.tobytes())
    assert len(seen) > 5  # the crops (and flips) vary, and each label map went with its image


def test_auto_labels_quantise_the_images_deterministically(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        rgb, _ = block_picture()
        noisy = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
        Image.fromarray(np.ascontiguousarray(noisy[:, ::-1] if i % 2 else noisy)).save(folder / f"{i}.jpg", quality=97)
    runs = []
    for run in ("a", "b"):
        pipeline.run(str(folder), str(tmp_path / run), pipeline.Options(image_size=SIZE, workers=1, auto_labels=3,
                                                                        seed=4), progress=False)
        runs.append((json.load(open(tmp_path / run / "manifest.json")), stored_pairs(str(tmp_path / run))))
    (manifest, pairs), (manifest_b, pairs_b) = runs
    assert manifest["classes"] == manifest_b["classes"] and manifest["auto_labels"] == 3
    assert all((a[1] == b[1]).all() for a, b in zip(pairs, pairs_b))
    colours = np.asarray([c["color"] for c in manifest["classes"]])
    assert len({tuple(c) for c in colours}) == 3
    assert np.abs(np.sort(colours, axis=0) - np.sort(BLOCK_COLOURS.astype(int), axis=0)).max() <= 12
    for image, ids in pairs:
        assert_aligned(image, ids, colours, tolerance=16)


def test_mismatched_pairs_are_listed_in_skipped(tmp_path):
    root = write_pair_folder(tmp_path / "pairs", pictures=2, labels_json=True)
    rgb, ids = block_picture()
    Image.fromarray(rgb).save(f"{root}/images/lonely.png")
    Image.fromarray(ids, "L").save(f"{root}/labels/orphan.png")
    Image.fromarray(rgb).save(f"{root}/images/tall.png")
    Image.fromarray(ids.T.copy(), "L").save(f"{root}/labels/tall.png")
    Image.fromarray(rgb).save(f"{root}/images/odd.png")
    odd = BLOCK_COLOURS[ids].copy()
    odd[0, 0] = (1, 2, 3)
    Image.fromarray(odd).save(f"{root}/labels/odd.png")
    half = BLOCK_COLOURS[ids][::2, ::2].copy()  # same ratio, half the size: resized nearest, used
    Image.fromarray(rgb).save(f"{root}/images/half.png")
    Image.fromarray(half).save(f"{root}/labels/half.png")
    pipeline.run(root, str(tmp_path / "data"), pipeline.Options(image_size=SIZE, workers=1), progress=False)
    manifest = json.load(open(tmp_path / "data" / "manifest.json"))
    reasons = {item["path"]: item["reason"] for item in manifest["skipped"]}
    assert set(reasons) == {"images/lonely.png", "labels/orphan.png", "images/tall.png", "images/odd.png"}
    assert "no label map" in reasons["images/lonely.png"] and "no image" in reasons["labels/orphan.png"]
    assert "aspect ratio" in reasons["images/tall.png"] and "[1, 2, 3]" in reasons["images/odd.png"]
    assert sum(manifest["counts"].values()) == 3
    assert [c["name"] for c in manifest["classes"]] == ["c0", "c1", "c2"]


def test_auto_labels_flag_is_checked_and_refused_beside_own_label_maps(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    bad = subprocess.run([sys.executable, "-m", "preprocess", "--input-dir", str(tmp_path), "--output-dir",
                          str(tmp_path / "o"), "--auto-labels", "300"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "at most 256" in bad.stderr
    root = write_pair_folder(tmp_path / "pairs", pictures=1)
    with pytest.raises(pipeline.PreprocessError, match="leave --auto-labels out"):
        pipeline.run(root, str(tmp_path / "data"), pipeline.Options(image_size=SIZE, workers=1, auto_labels=3),
                     progress=False)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_spade_normalisation_is_the_papers_formula(norm):
    from trainer.networks.spade import EPSILON, SPADE

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2.0, 3.0, (2, 4, 4, 3)), tf.float32)
    labels = tf.one_hot(rng.integers(0, 2, (2, 8, 8)), 2)
    layer = SPADE(hidden=5, norm=norm)
    out = layer([x, labels], training=True).numpy()
    gamma, beta = (t.numpy() for t in layer.modulation(labels, 4, 4))
    axes = (1, 2) if norm == "instance" else (0, 1, 2)
    value = x.numpy()
    normalized = (value - value.mean(axes, keepdims=True)) / np.sqrt(value.var(axes, keepdims=True) + EPSILON)
    np.testing.assert_allclose(out, normalized * (1 + gamma) + beta, rtol=1e-4, atol=1e-4)
    nearest = labels.numpy()[:, 1::2, 1::2]  # nearest-neighbour 8 -> 4 (half-pixel centres): pixels 1, 3, 5, 7
    shared = np.maximum(tf.nn.conv2d(nearest, layer.shared.kernel, 1, "SAME").numpy() + layer.shared.bias.numpy(), 0)
    np.testing.assert_allclose(gamma, tf.nn.conv2d(shared, layer.gamma.kernel, 1, "SAME").numpy()
                               + layer.gamma.bias.numpy(), rtol=1e-4, atol=1e-4)


def test_run_training_hands_auto_labels_to_preprocessing_and_redoes_it_when_k_changes(tmp_path):
    from trainer import prepare

    folder = tmp_path / "plain"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(block_picture()[0]).save(folder / f"{i}.png")
    job = ["--model", "spade", "--data-dir", str(tmp_path / "job" / "data"), "--job-dir", str(tmp_path / "job"),
           "--image-size", str(SIZE)]
    for k in (3, 2):
        assert prepare.main(["--source", str(folder), "--", *job, "--auto-labels", str(k)]) == 0
        manifest = json.load(open(tmp_path / "job" / "data" / "manifest.json"))
        assert manifest["auto_labels"] == k and len(manifest["classes"]) == k
    assert prepare.stale_reason(str(tmp_path / "job" / "data"), str(folder), SIZE, False, auto_labels=2) is None
