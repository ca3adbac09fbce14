"""`python -m preprocess` as a whole: crop geometry, the split, shards, atomic re-runs, the unpaired layout, gs://,
the CLI's exit codes and summary, and the parallel (forkserver) path producing the same bytes as one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st
from PIL import Image

from artifacts import dataset as layout
from artifacts import storage
from preprocess import pipeline, records
from preprocess.__main__ import main as cli_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_image(path, height: int, width: int, seed: int = 0, fmt: str = "PNG") -> None:
    """A smooth gradient plus noise: every crop of it looks different."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1)
    pixels = np.clip(pixels + rng.integers(-20, 21, size=pixels.shape), 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    Image.fromarray(pixels).save(str(path), fmt)


def image_folder(root, count: int, size=(30, 40)) -> list[str]:
    names = [f"img_{i:03d}.png" for i in range(count)]
    for i, name in enumerate(names):
        write_image(os.path.join(str(root), name), *size, seed=i)
    return names


def read_split(data_dir: str, split: str) -> list[dict]:
    """Every record of one split, shard by shard, in file order."""
    out = []
    for shard in layout.split_files(data_dir, split):
        for serialized in tf.data.TFRecordDataset(shard):
            features = records.parse_example(serialized)
            out.append({"filename": features["image/filename"].numpy().decode(),
                        "height": int(features["image/height"]), "width": int(features["image/width"]),
                        "format": features["image/format"].numpy(), "png": features["image/encoded"].numpy()})
    return out


def run(source, out, **options) -> pipeline.Summary:
    options.setdefault("workers", 1)
    return pipeline.run(str(source), str(out), pipeline.Options(**options), progress=False)


# ---------------------------------------------------------------- crop geometry


def test_random_crop_records_keep_aspect_at_load_size(tmp_path):
    for name, (height, width) in {"wide.png": (30, 50), "tall.png": (90, 40), "pano.png": (10, 200),
                                  "square.png": (100, 100), "tiny.png": (3, 5)}.items():
        write_image(tmp_path / "in" / name, height, width)
    run(tmp_path / "in", tmp_path / "out", image_size=32, val_fraction=0.0)
    manifest = layout.read_manifest(str(tmp_path / "out"))
    load = manifest["load_size"]
    assert load == records.load_size_for(32) == 36 and manifest["center_crop"] is False
    stored = {r["filename"]: r for r in read_split(str(tmp_path / "out"), "train")}
    for r in stored.values():
        pixels = tf.io.decode_png(r["png"]).numpy()
        assert pixels.shape == (r["height"], r["width"], 3) and r["format"] == b"png"
        assert min(r["height"], r["width"]) == load and max(r["height"], r["width"]) <= 2 * load
    assert (stored["wide.png"]["height"], stored["wide.png"]["width"]) == (36, 60)
    assert (stored["pano.png"]["height"], stored["pano.png"]["width"]) == (36, 72)  # 20:1 keeps its middle 2:1


def test_random_crop_varies_between_epochs(tmp_path):
    write_image(tmp_path / "in" / "only.png", 40, 60)
    run(tmp_path / "in", tmp_path / "out", image_size=32, val_fraction=0.0)
    dataset = records.make_dataset(layout.split_files(str(tmp_path / "out"), "train"), 32, center_crop=False,
                                   batch_size=1, training=True, seed=1)
    epochs = [batch.numpy() for batch in dataset.take(6)]  # one image per epoch
    assert all(e.shape == (1, 32, 32, 3) and -1.0 <= e.min() and e.max() <= 1.0 for e in epochs)
    assert len({e.tobytes() for e in epochs}) > 1


def test_center_crop_record_equals_the_serving_function(tmp_path):
    write_image(tmp_path / "in" / "photo.png", 48, 80, seed=7)
    run(tmp_path / "in", tmp_path / "out", image_size=32, center_crop=True, val_fraction=0.0)
    (record,) = read_split(str(tmp_path / "out"), "train")
    assert (record["height"], record["width"]) == (32, 32)
    assert layout.read_manifest(str(tmp_path / "out"))["center_crop"] is True
    trained = records.to_float(tf.io.decode_png(record["png"], channels=3)).numpy()
    served = records.decode_and_preprocess(tf.constant((tmp_path / "in" / "photo.png").read_bytes()), 32).numpy()
    assert np.abs(trained - served).max() < 1e-5
    through_reader = next(iter(records.make_dataset(layout.split_files(str(tmp_path / "out"), "train"), 32,
                                                    center_crop=True, batch_size=1, training=False)))
    assert np.abs(through_reader.numpy()[0] - served).max() < 1e-5


# ---------------------------------------------------------------- split and shards


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), fraction=st.floats(0.0, 0.99), seed=st.integers(0, 2 ** 31))
def test_split_is_a_deterministic_partition(n, fraction, seed):
    paths = [f"p{i}.png" for i in range(n)]
    train, val = pipeline.split_paths(list(reversed(paths)), fraction, seed)
    assert (train, val) == pipeline.split_paths(paths, fraction, seed)  # input order does not matter
    assert sorted(train + val) == sorted(paths)
    if n >= 2 and fraction > 0:
        assert 1 <= len(val) <= n - 1 and abs(len(val) - n * fraction) <= 1


def test_split_is_deterministic_per_seed_and_shards_hold_everything(tmp_path):
    image_folder(tmp_path / "in", 20, size=(8, 8))
    split_of = {}
    for seed, out in ((3, "a"), (3, "b"), (4, "c")):
        run(tmp_path / "in", tmp_path / out, seed=seed, val_fraction=0.25, shards=3)
        split_of[out] = {s: sorted(r["filename"] for r in read_split(str(tmp_path / out), s)) for s in layout.SPLITS}
    assert split_of["a"] == split_of["b"] and split_of["a"] != split_of["c"]
    assert len(split_of["a"]["val"]) == 5 and len(split_of["a"]["train"]) == 15
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == ["manifest.json"] + [layout.shard_name(s, i, 3) for s in ("train", "val") for i in range(3)]


def test_rerun_replaces_shards_atomically_and_refuses_foreign_dirs(tmp_path):
    image_folder(tmp_path / "in", 4, size=(8, 8))
    run(tmp_path / "in", tmp_path / "out", shards=4)
    run(tmp_path / "in", tmp_path / "out", shards=1, image_size=16)
    assert sorted(os.listdir(tmp_path / "out")) == ["manifest.json", "train-00000-of-00001.tfrecord",
                                                     "val-00000-of-00001.tfrecord"]
    assert layout.read_manifest(str(tmp_path / "out"))["image_size"] == 16
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]  # no staging or moved-aside dirs left behind
    (tmp_path / "out" / "my_notes.txt").write_text("precious")
    with pytest.raises(pipeline.PreprocessError, match="my_notes.txt"):
        run(tmp_path / "in", tmp_path / "out")
    assert (tmp_path / "out" / "my_notes.txt").read_text() == "precious"


# ---------------------------------------------------------------- unpaired layout


def test_unpaired_layout_with_and_without_test_dirs(tmp_path):
    for folder, count in (("trainA", 5), ("trainB", 6), ("testA", 2)):
        image_folder(tmp_path / "in" / folder, count, size=(8, 8))
    summary = run(tmp_path / "in", tmp_path / "out", val_fraction=0.2, center_crop=True, image_size=8)
    assert sorted(os.listdir(tmp_path / "out")) == ["A", "B"]
    a, b = (layout.read_manifest(str(tmp_path / "out" / d)) for d in "AB")
    assert a["counts"] == {"train": 5, "val": 2}  # testA/ is A's val split
    assert b["counts"] == {"train": 5, "val": 1}  # no testB/: --val-fraction of trainB/
    assert {r["filename"] for r in read_split(str(tmp_path / "out" / "A"), "val")} == {"testA/img_000.png",
                                                                                        "testA/img_001.png"}
    assert summary.line().startswith("13 images: 10 train, 3 val, 0 skipped → ")
    assert "A: 7 images: 5 train, 2 val, 0 skipped; B: 6 images: 5 train, 1 val, 0 skipped" in summary.line()


def test_unpaired_needs_both_train_dirs(tmp_path):
    image_folder(tmp_path / "in" / "trainA", 2, size=(8, 8))
    with pytest.raises(pipeline.PreprocessError, match="only trainA/"):
        run(tmp_path / "in", tmp_path / "out")


# ---------------------------------------------------------------- gs://


def test_gcs_input_and_output(tmp_path, gcs_bucket):
    image_folder(tmp_path / "in" / "sub", 3, size=(10, 12))
    (tmp_path / "in" / "skip.txt").write_text("not an image")
    storage.copytree(str(tmp_path / "in"), f"{gcs_bucket}/raw")
    storage.write_bytes(f"{gcs_bucket}/data/train-00000-of-00007.tfrecord", b"stale shard of an older run")

    summary = run(f"{gcs_bucket}/raw", f"{gcs_bucket}/data", val_fraction=0.34)
    assert summary.line() == f"3 images: 2 train, 1 val, 0 skipped → {gcs_bucket}/data"
    assert sorted(storage.walk_files(f"{gcs_bucket}/data")) == [
        "manifest.json", "train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"]
    manifest = storage.read_json(f"{gcs_bucket}/data/manifest.json")
    assert manifest["source"] == f"{gcs_bucket}/raw" and manifest["counts"] == {"train": 2, "val": 1}

    run(f"{gcs_bucket}/raw", tmp_path / "local_out", val_fraction=0.34)  # gs:// in, local out
    run(tmp_path / "in", f"{gcs_bucket}/data2", val_fraction=0.34)  # local in, gs:// out
    local_files = sorted(r["filename"] for s in layout.SPLITS for r in read_split(str(tmp_path / "local_out"), s))
    assert local_files == [f"sub/img_00{i}.png" for i in range(3)]
    assert storage.read_json(f"{gcs_bucket}/data2/manifest.json")["counts"] == manifest["counts"]


# ---------------------------------------------------------------- the command line


def test_cli_exit_2_when_nothing_is_usable_or_input_missing(tmp_path, capsys):
    storage.write_bytes(str(tmp_path / "in" / "broken.jpg"), b"definitely not a jpeg")
    assert cli_main(["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no usable image" in err and "broken.jpg" in err and not (tmp_path / "out").exists()
    assert cli_main(["--input-dir", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out")]) == 2
    assert "input dir not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["--input-dir", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "out")]) == 2
    assert "no image files" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["--input-dir", "x", "--output-dir", "y", "--val-fraction", "1.5"])
    assert exc.value.code == 2


def test_help_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "preprocess", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--center-crop" in result.stdout
    assert "tensorflow" not in result.stderr


def test_cli_with_two_workers_writes_the_same_bytes_as_one_process(tmp_path, capsys):
    image_folder(tmp_path / "in", 8, size=(20, 30))
    write_image(tmp_path / "in" / "photo.jpg", 25, 33, fmt="JPEG")
    storage.write_bytes(str(tmp_path / "in" / "bad.png"), b"broken")
    run(tmp_path / "in", tmp_path / "one", workers=1, shards=2)
    assert cli_main(["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "two"),
                     "--workers", "2", "--shards", "2"]) == 0  # forkserver workers: other processes
    assert capsys.readouterr().out.strip() == f"10 images: 8 train, 1 val, 1 skipped → {tmp_path / 'two'}"
    for name in sorted(os.listdir(tmp_path / "one")):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["skipped"] == [{"path": "bad.png", "reason": "not a JPEG, PNG, GIF, BMP or WebP image"}]
