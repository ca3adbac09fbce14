"""Batch prediction (`python -m serving.batch_predict`, INTERFACE.md section 7) on the DirectRunner.

The main job: 500 instances over 3 JSON-lines files picked by a wildcard (plus a decoy the wildcard must skip):
embeddings lines, image lines, 20 malformed lines (bad JSON, wrong length, bad base64, NaN), lines without a key
or with a numeric key, and blank lines (ignored). It runs once locally (--model-dir) and once against
gcp-storage-emulator (gs:// inputs, outputs and GENART_HOME, --model via the registry); every assertion below
reads the outputs of those shared runs. Further runs: TF_RECORD input (JSON, raw image, tf.train.Example and
garbage records, one file gzipped) with --model/--version on a local registry; a batch that blows up inside
RunInference (dead-letter output); the real `python -m` entry point with Beam options passed through.
Models are real exports of untrained tiny VAE-GANs (`serving_helpers`, version N = seed N); which version answered
is read from the embeddings, matched against each export called directly.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
from PIL import Image
from serving_helpers import (IMAGE_SIZE, LATENT_DIM, b64, build_registry, embedding_lines, export_path, jpeg_bytes,
                             random_embedding, read_batch_outputs, which_versions)

from artifacts import storage
from preprocess.records import make_example
from serving.batch import beam_inference
from serving.batch import cli as batch_predict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MALFORMED = {  # kind -> the words its error message must contain
    "bad_json": "not a JSON instance",
    "wrong_length": "expected 100 values, got 99",
    "bad_b64": "not valid base64",
    "nan": "non-finite value NaN",
}


# ---------------------------------------------------------------- the 500-instance job


def make_job() -> tuple[dict[str, list[str]], list[dict]]:
    """({file name: lines}, [{file, line, kind, key (None: missing)}]) — 500 instances, 20 of them malformed."""
    rng = np.random.default_rng(7)
    kinds = ["embeddings"] * 440 + ["image"] * 40 + [k for k in MALFORMED for _ in range(5)]
    order = rng.permutation(len(kinds))
    files: dict[str, list[str]] = {f"part-{i}.json": [] for i in range(3)}
    expected = []
    for n, index in enumerate(order):
        kind, name = kinds[index], f"part-{n % 3}.json"
        key: str | None = f"{kind}-{n}"
        if kind == "embeddings":
            instance = {"embeddings": random_embedding(rng), "key": key}
            if n % 50 == 0:  # no key: filled with the location
                del instance["key"]
                key = None
            elif n % 70 == 1:  # a numeric key becomes its decimal string
                instance["key"], key = 9000 + n, str(9000 + n)
            line = json.dumps(instance)
        elif kind == "image":
            line = json.dumps({"image_bytes": {"b64": b64(jpeg_bytes(n))}, "key": key})
        elif kind == "bad_json":
            line = f'{{"key": "{key}", "embeddings": [0.5, 0.25,'  # truncated; its key is still readable
        elif kind == "wrong_length":
            line = json.dumps({"embeddings": random_embedding(rng, LATENT_DIM - 1), "key": key})
        elif kind == "bad_b64":
            line = json.dumps({"image_bytes": {"b64": "not*base64!"}, "key": key})
        else:
            line = json.dumps({"embeddings": [float("nan")] + random_embedding(rng, LATENT_DIM - 1), "key": key})
        lines = files[name]
        if n % 25 == 3:
            lines.append("" if n % 2 else "   \t")  # blank lines are not instances
        lines.append(line)
        expected.append({"file": name, "line": len(lines), "kind": kind, "key": key,
                         **({"image": jpeg_bytes(n)} if kind == "image" else {})})
    files["part-0.json"].append("")  # a trailing blank line too
    return files, expected


def expected_keys(expected: list[dict], base: str) -> dict[str, dict]:
    """{key: instance} where a missing key is `<input path>:<line>`."""
    out = {}
    for item in expected:
        key = item["key"] or f"{base}/{item['file']}:{item['line']}"
        assert key not in out
        out[key] = {**item, "path": f"{base}/{item['file']}"}
    return out


def run_main(args: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = batch_predict.main(args)
    return code, stdout.getvalue(), stderr.getvalue()


def write_job(base: str, files: dict[str, list[str]]) -> None:
    for name, lines in files.items():
        storage.write_text(storage.join(base, name), "\n".join(lines) + "\n")
    storage.write_text(storage.join(base, "notes.txt"), "not an instance file\n")  # the wildcard skips it


@pytest.fixture(scope="module")
def job():
    return make_job()


@pytest.fixture(scope="module")
def local_run(job, tmp_path_factory):
    files, expected = job
    root = str(tmp_path_factory.mktemp("batch-local"))
    write_job(os.path.join(root, "in"), files)
    out = os.path.join(root, "out")
    code, stdout, stderr = run_main(["--input-paths", os.path.join(root, "in", "part-*.json"), "--output-path", out,
                                     "--model-dir", export_path("vaegan", 1), "--batch-size", "32"])
    assert code == 0, stderr
    return {"version": 1, "keys": expected_keys(expected, os.path.join(root, "in")), "stdout": stdout,
            **read_batch_outputs(out)}


@pytest.fixture(scope="module")
def gcs_run(job, gcs_emulator):
    files, expected = job
    bucket = f"gs://batch-{uuid.uuid4().hex[:10]}"
    storage.gcs_client().create_bucket(bucket[len("gs://"):])
    home = f"{bucket}/home"
    storage.copytree(export_path("vaegan", 3), f"{home}/models/vae/3")  # a gs:// registry: --model vae -> 3
    write_job(f"{bucket}/in", files)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENART_HOME", home)
        code, stdout, stderr = run_main(["--input-paths", f"{bucket}/in/part-*.json", "--output-path",
                                         f"{bucket}/out", "--model", "vae"])
    assert code == 0, stderr
    return {"version": 3, "keys": expected_keys(expected, f"{bucket}/in"), "stdout": stdout,
            **read_batch_outputs(f"{bucket}/out")}


@pytest.fixture(params=["local", "gcs"])
def run(request):
    return request.getfixturevalue(f"{request.param}_run")


def test_every_instance_in_exactly_one_output(run):
    result_keys = [row["key"] for row in run["results"]]
    error_keys = [row["key"] for row in run["errors"]]
    assert len(result_keys) + len(error_keys) == 500
    assert len(set(result_keys + error_keys)) == 500, "duplicates"
    assert set(result_keys) | set(error_keys) == set(run["keys"])
    assert {k for k in error_keys} == {k for k, item in run["keys"].items() if item["kind"] in MALFORMED}
    for prefix in ("results", "errors_stats"):  # shards as gcloud names them: one per worker bundle here
        names = run[f"{prefix.split('_')[0]}_files"]
        assert names == [f"prediction.{prefix}-{i:05d}-of-{len(names):05d}" for i in range(len(names))], names
    assert "500 instances read, 480 predicted, 20 failed" in run["stdout"]


def test_each_error_names_its_cause_and_place(run):
    assert len(run["errors"]) == 20
    for error in run["errors"]:
        assert set(error) == {"key", "input_path", "line", "error"}
        item = run["keys"][error["key"]]
        assert MALFORMED[item["kind"]] in error["error"], error
        assert (error["input_path"], error["line"]) == (item["path"], item["line"])  # blank lines are counted


def test_results_are_valid_pngs_and_embeddings(run):
    kinds = {"embeddings": 0, "image": 0}
    for row in run["results"]:
        kind = run["keys"][row["key"]]["kind"]
        kinds[kind] += 1
        if kind == "embeddings":
            assert set(row) == {"image_bytes", "key"}
            with Image.open(io.BytesIO(base64.b64decode(row["image_bytes"]["b64"]))) as image:
                assert (image.format, image.size, image.mode) == ("PNG", (IMAGE_SIZE, IMAGE_SIZE), "RGB")
        else:
            assert set(row) == {"embeddings", "key"}
            assert len(row["embeddings"]) == LATENT_DIM and all(math.isfinite(x) for x in row["embeddings"])
    assert kinds == {"embeddings": 440, "image": 40}
    images = [row for row in run["results"] if "embeddings" in row]  # answered by the model version asked for:
    assert set(which_versions([row["embeddings"] for row in images],
                              [run["keys"][row["key"]]["image"] for row in images])) == {run["version"]}


def test_missing_keys_are_the_location_and_numeric_keys_decimal(run):
    filled = [k for k, item in run["keys"].items() if item["key"] is None]
    numeric = [k for k in run["keys"] if k.isdigit()]
    assert filled and numeric
    result_keys = {row["key"] for row in run["results"]}
    for key in filled:
        assert key in result_keys and key.startswith(run["keys"][key]["path"] + ":")
    assert set(numeric) <= result_keys


def test_results_match_a_direct_model_call(local_run):
    """The pipeline's PNG for an instance is byte for byte what the signature returns for it alone."""
    from serving.server import core

    model = core.load_model(export_path("vaegan", 1))
    row = next(r for r in local_run["results"] if "image_bytes" in r)
    item = local_run["keys"][row["key"]]
    with open(item["path"]) as f:
        instance = json.loads(f.read().splitlines()[item["line"] - 1])
    signature, prepared = core.prepare_instances(model, [instance])
    assert core.run(signature, prepared)[0]["image_bytes"] == row["image_bytes"]


# ---------------------------------------------------------------- TF_RECORD, --model/--version


@pytest.fixture(scope="module")
def tfrecord_run(tmp_path_factory):
    import tensorflow as tf

    root = str(tmp_path_factory.mktemp("batch-tfrecord"))
    home = os.path.join(root, "home")
    build_registry(home, {"vae": ("vaegan", [1, 2])})
    rng = np.random.default_rng(3)
    png = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(png, "PNG")
    records = {
        "a.tfrecord": [json.dumps({"embeddings": random_embedding(rng), "key": "json-0"}).encode(),
                       json.dumps({"embeddings": random_embedding(rng)}).encode(),  # key: a.tfrecord:2
                       jpeg_bytes(1),  # raw image: key a.tfrecord:3
                       make_example(png.getvalue(), 12, 12, "cats/1.png"),  # key: its image/filename
                       b"\x00\x01 neither JSON nor an image",
                       b'{"key": "json-broken", "embeddings": [1,'],
        "b.tfrecord.gz": [jpeg_bytes(2), json.dumps({"image_bytes": {"b64": b64(jpeg_bytes(3))},
                                                         "key": 5}).encode()],
    }
    for name, items in records.items():
        options = tf.io.TFRecordOptions(compression_type="GZIP" if name.endswith(".gz") else "")
        with tf.io.TFRecordWriter(os.path.join(root, name), options) as writer:
            for record in items:
                writer.write(record)
    out = os.path.join(root, "out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENART_HOME", home)
        code, stdout, stderr = run_main(["--input-paths", f"{root}/a.tfrecord,{root}/b.*", "--output-path", out,
                                         "--model", "vae", "--version", "1", "--data-format", "tf-record"])
    assert code == 0, stderr
    return {"root": root, "stdout": stdout, "png": png.getvalue(), **read_batch_outputs(out)}


def test_tf_record_input(tfrecord_run):
    root = tfrecord_run["root"]
    results = {row["key"]: row for row in tfrecord_run["results"]}
    assert set(results) == {"json-0", f"{root}/a.tfrecord:2", f"{root}/a.tfrecord:3", "cats/1.png",
                            f"{root}/b.tfrecord.gz:1", "5"}
    for key in ("json-0", f"{root}/a.tfrecord:2"):
        assert base64.b64decode(results[key]["image_bytes"]["b64"]).startswith(b"\x89PNG")
    images = {f"{root}/a.tfrecord:3": jpeg_bytes(1), "cats/1.png": tfrecord_run["png"],
              f"{root}/b.tfrecord.gz:1": jpeg_bytes(2), "5": jpeg_bytes(3)}
    assert all(len(results[key]["embeddings"]) == LATENT_DIM for key in images)
    assert which_versions([results[key]["embeddings"] for key in images], list(images.values()),
                          (1, 2)) == [1] * 4  # --version 1, not the latest (2)
    errors = {row["key"]: row for row in tfrecord_run["errors"]}
    assert set(errors) == {f"{root}/a.tfrecord:5", "json-broken"}
    assert "not an encoded image" in errors[f"{root}/a.tfrecord:5"]["error"]
    assert "not a JSON instance" in errors["json-broken"]["error"]
    assert (errors["json-broken"]["input_path"], errors["json-broken"]["line"]) == (f"{root}/a.tfrecord", 6)
    assert "8 instances read, 6 predicted, 2 failed" in tfrecord_run["stdout"]


# ---------------------------------------------------------------- the command line


def test_cli_refusals(tmp_path, monkeypatch):
    model_dir = export_path("vaegan", 1)
    good = tmp_path / "in.json"
    good.write_text(embedding_lines(1)[0] + "\n")
    monkeypatch.setenv("GENART_HOME", str(tmp_path / "home"))
    build_registry(str(tmp_path / "home"), {"vae": ("vaegan", [1])})
    out = str(tmp_path / "out")
    cases = {
        "no input file matches": ["--input-paths", f"{good},{tmp_path}/missing-*.json", "--output-path", out,
                                  "--model-dir", model_dir],
        "is a directory": ["--input-paths", str(tmp_path), "--output-path", out, "--model-dir", model_dir],
        "no model named 'nope'": ["--input-paths", str(good), "--output-path", out, "--model", "nope"],
        "has no version 7": ["--input-paths", str(good), "--output-path", out, "--model", "vae", "--version", "7"],
        "no SavedModel there": ["--input-paths", str(good), "--output-path", out, "--model-dir", str(tmp_path)],
        "no such signature": ["--input-paths", str(good), "--output-path", out, "--model-dir", model_dir,
                              "--signature-name", "a_to_b"],
    }
    for message, args in cases.items():
        code, _, stderr = run_main(args)
        assert code == 2 and message in stderr, (message, stderr)
    os.makedirs(out)
    (tmp_path / "out" / "prediction.results-00000-of-00001").write_text("")
    code, _, stderr = run_main(["--input-paths", str(good), "--output-path", out, "--model-dir", model_dir])
    assert code == 2 and "already holds predictions" in stderr
    for args in (["--input-paths", str(good), "--output-path", out, "--model-dir", model_dir, "--version", "1"],
                 ["--input-paths", str(good), "--output-path", out],
                 ["--input-paths", str(good), "--output-path", out, "--model-dir", model_dir, "--data-format", "csv"]):
        with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()):
            batch_predict.main(args)
        assert exit_info.value.code == 2


def test_model_dir_may_be_a_base_path_of_versions(tmp_path):
    build_registry(str(tmp_path), {"vae": ("vaegan", [1, 2])})
    args, _ = batch_predict.parse_args(["--input-paths", "x", "--output-path", "y", "--model-dir",
                                        str(tmp_path / "models" / "vae")])
    assert batch_predict.resolve_model(args) == (str(tmp_path / "models" / "vae" / "2"), "", 2)


def test_direct_runner_defaults_to_worker_threads_unless_told():
    from apache_beam.options.pipeline_options import DirectOptions

    def direct(args):
        options = beam_inference.pipeline_options(args).view_as(DirectOptions)
        return options.direct_running_mode, options.direct_num_workers

    assert direct([]) == ("multi_threading", min(4, max(2, os.cpu_count())))
    assert direct(["--runner", "DirectRunner"])[0] == "multi_threading"
    assert direct(["--direct_num_workers=3"]) == ("in_memory", 3)
    assert direct(["--direct_running_mode", "multi_processing"]) == ("multi_processing", 1)
    assert direct(["--runner", "DataflowRunner"]) == ("in_memory", 1)  # Beam's defaults, unused there


def test_python_m_entry_point_with_beam_options(tmp_path):
    """The real command, Beam's in_memory DirectRunner asked for, batches of 4: all good -> empty errors file."""
    lines = embedding_lines(10)
    (tmp_path / "in.json").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "serving.batch_predict", "--input_paths", str(tmp_path / "in.json"),
         "--output_path", str(out), "--model_dir", export_path("vaegan", 2), "--batch_size", "4",
         "--runner", "DirectRunner", "--direct_num_workers", "1", "--direct_running_mode", "in_memory"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "10 instances read, 10 predicted, 0 failed" in proc.stdout
    outputs = read_batch_outputs(str(out))
    assert outputs["errors_files"] == ["prediction.errors_stats-00000-of-00001"] and outputs["errors"] == []
    assert sorted(row["key"] for row in outputs["results"]) == sorted(str(i) for i in range(10))

