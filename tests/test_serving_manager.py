"""serving.server.manager on real exports of untrained networks (version policies, labels, failed loads, config
reload, unload after in-flight requests) and serving.server.batching (merging, splitting, isolating a bad request)."""
from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import LATENT_DIM, install_version, write_models_config

from serving.server import core
from serving.server.batching import Batcher, BatchingOptions
from serving.server.manager import AVAILABLE, END, UNLOADING, ModelManager
from serving.server.model_config import ModelSpec, specs_from_config_file


@pytest.mark.parametrize("policy, expected", [
    (ModelSpec("m", "/x"), [5]),
    (ModelSpec("m", "/x", num_versions=2), [3, 5]),
    (ModelSpec("m", "/x", policy="all"), [1, 3, 5]),
    (ModelSpec("m", "/x", policy="specific", versions=(1, 4, 5)), [1, 5]),
])
def test_version_policies(policy, expected):
    assert policy.wanted([1, 3, 5]) == expected


def test_models_config_parsing(tmp_path):
    path = write_models_config(str(tmp_path), {
        "a": "    model_version_policy { latest { num_versions: 2 } }\n",
        "b": '    model_version_policy { specific { versions: 3 versions: 1 } }\n'
             '    version_labels { key: "stable" value: 1 }\n',
        "c": "    model_version_policy { all {} }\n", "d": ""})
    specs = {s.name: s for s in specs_from_config_file(path)}
    assert (specs["a"].policy, specs["a"].num_versions) == ("latest", 2)
    assert (specs["b"].policy, specs["b"].versions, specs["b"].labels) == ("specific", (1, 3), {"stable": 1})
    assert specs["c"].policy == "all" and (specs["d"].policy, specs["d"].num_versions) == ("latest", 1)
    assert specs["a"].base_path == os.path.join(str(tmp_path), "a")


def test_specific_policy_labels_and_unload_after_in_flight(tmp_path):
    models_dir = str(tmp_path / "models")
    for version in (1, 2, 3):
        install_version(models_dir, "m", version)
    spec = ModelSpec("m", os.path.join(models_dir, "m"), policy="specific", versions=(1, 3), labels={"stable": 1})
    manager = ModelManager([spec], poll_seconds=-1)
    manager.poll_once()
    assert [(s.version, s.state) for s in manager.status("m")] == [(1, AVAILABLE), (3, AVAILABLE)]
    with manager.use("m", label="stable") as served:
        assert served.model.version == 1
    with manager.use("m") as served:
        assert served.model.version == 3
    with pytest.raises(core.NotFound, match="Specific\\(m, 2\\)"):
        manager.use("m", version=2).__enter__()
    with pytest.raises(core.NotFound, match="label: beta"):
        manager.use("m", label="beta").__enter__()
    # version 3 leaves the policy while a request holds it: UNLOADING until that request is done, then END
    holding = manager.use("m", version=3)
    held = holding.__enter__()
    spec.versions = (1,)
    manager.poll_once()
    assert manager.status("m", 3)[0].state == UNLOADING
    assert held.runner(*_embedding_batch(held.model))["key"].shape == (1,)  # still usable
    holding.__exit__(None, None, None)
    assert manager.status("m", 3)[0].state == END
    with manager.use("m") as served:
        assert served.model.version == 1
    manager.stop()


def _embedding_batch(model):
    signature = model.signature("embeddings")
    return signature, {"embeddings": np.zeros((1, LATENT_DIM), np.float32),
                       "key": np.array([b"k"], dtype=object)}


def test_failed_load_is_reported_and_retried_when_fixed(tmp_path):
    base = tmp_path / "models" / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"not a saved model")
    manager = ModelManager([ModelSpec("m", str(base))], poll_seconds=-1)
    manager.poll_once()
    [status] = manager.status("m")
    assert status.state == END and status.error_code == "DATA_LOSS" and "Failed to load" in status.error_message
    assert not manager.ready()
    with pytest.raises(core.Unavailable, match="Failed to load"):
        manager.use("m").__enter__()
    manager.poll_once()  # unchanged: not retried
    shutil.rmtree(base / "1")
    install_version(str(tmp_path / "models"), "m", 1)
    os.utime(base / "1" / "saved_model.pb", (time.time() + 5, time.time() + 5))
    manager.poll_once()
    assert manager.status("m")[0].state == AVAILABLE and manager.ready()
    manager.stop()


def test_config_file_changes_add_and_remove_models(tmp_path):
    models_dir = str(tmp_path / "models")
    install_version(models_dir, "a", 1)
    install_version(models_dir, "b", 1)
    config = write_models_config(models_dir, {"a": ""})
    manager = ModelManager(config_path=config, poll_seconds=-1)
    manager.poll_once()
    assert manager.model_names() == ["a"]
    write_models_config(models_dir, {"b": ""})
    manager.poll_once()
    assert manager.model_names() == ["b"] and manager.ready()
    with pytest.raises(core.NotFound):
        manager.use("a").__enter__()
    with open(config, "w") as f:
        f.write("this is { not a config")
    manager.poll_once()  # a broken file keeps the previous configuration
    assert manager.model_names() == ["b"]
    manager.stop()


class _FakeSignature:
    """Enough of core.Signature for the batcher: the graph rejects any batch holding a negative value."""
    name, model_name = "double", "fake"
    inputs = {"x": core.TensorInfo("x", tf.float32, (None, 2))}

    def __init__(self):
        self.calls: list[int] = []  # rows of each graph call

    def function(self, x):
        self.calls.append(int(x.shape[0]))
        tf.debugging.assert_non_negative(x, message="negative input")
        return {"y": x * 2.0}


def test_batcher_merges_splits_and_isolates():
    """5 concurrent requests of 7 rows in all fill a batch of max_batch_size=7 exactly: one merged graph call,
    whatever the timing (the long timeout only bounds a hung test); the bad request in it is then isolated."""
    signature = _FakeSignature()
    observed = []
    batcher = Batcher(BatchingOptions(max_batch_size=7, batch_timeout_micros=60_000_000, num_batch_threads=1),
                      lambda sig, size: observed.append(size))
    results, errors = {}, {}

    def call(i):
        value = -1.0 if i == 2 else float(i)
        try:
            results[i] = batcher.run(signature, {"x": np.full((1 + i % 2, 2), value, np.float32)})
        except core.InvalidInput as err:
            errors[i] = err

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(errors) == {2} and "negative input" in str(errors[2])
    for i, out in results.items():
        assert out["y"].shape == (1 + i % 2, 2) and np.all(out["y"] == 2.0 * i)
    assert signature.calls[0] == 7, signature.calls  # all requests merged into one call
    assert sorted(signature.calls[1:]) == [1, 1, 1, 2, 2]  # which failed, so each request was re-run alone
    assert sorted(observed) == [1, 1, 2, 2]  # every good instance ran once (the bad request's 1 row failed)
    big = batcher.run(signature, {"x": np.ones((14, 2), np.float32)})  # over max_batch_size: split, never one call
    assert big["y"].shape == (14, 2) and np.all(big["y"] == 2.0) and signature.calls[-2:] == [7, 7]
    batcher.close()


def test_relative_base_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "a" base_path: "a" model_platform: "tensorflow" } }\n')
    assert specs_from_config_file(str(path))[0].base_path == str(tmp_path / "a")


def test_server_cli_accepts_both_spellings(tmp_path):
    from serving.server.cli import parse_args

    base = str(tmp_path)  # a base path must exist (a mistyped one is refused at once)
    dashed = parse_args(["--model-name", "faces", "--model-base-path", base, "--rest-api-port", "0", "--port", "9",
                         "--enable-batching", "--max-batch-size", "8", "--batch-timeout-micros", "10",
                         "--file-system-poll-wait-seconds", "2", "--enable-cors", "--max-request-bytes", "100"])
    underscored = parse_args(["--model_name=faces", f"--model_base_path={base}", "--rest_api_port=0", "--port=9",
                              "--enable_batching=true", "--max_batch_size=8", "--batch_timeout_micros=10",
                              "--file_system_poll_wait_seconds=2", "--enable_cors", "--max_request_bytes=100"])
    assert vars(dashed) == vars(underscored)
    assert dashed.enable_batching is True and dashed.rest_api_port == 0 and dashed.host == "127.0.0.1"
    defaults = parse_args([])
    assert (defaults.rest_api_port, defaults.port, defaults.enable_batching, defaults.max_batch_size,
            defaults.batch_timeout_micros, defaults.max_request_bytes) == (8501, 8500, False, 32, 2000, 16777216)
    assert parse_args(["--enable_batching=false"]).enable_batching is False
    for bad in (["--model-name", "faces"], ["--model-name", "a/b", "--model-base-path", "/m"],
                ["--model-config-file", "c", "--model-name", "a", "--model-base-path", "/m"], ["--port", "70000"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


@pytest.mark.parametrize("key, expected", [
    ("0", "0"), ("cat 1", "cat_1"), ("../../etc/passwd", "_.._etc_passwd"), ("a/b\\c", "a_b_c"),
    ("", "instance_3"), ("...", "instance_3"), (None, "3"), (7, "7"), ("é", "_"),
])
def test_predict_output_file_names_are_safe(key, expected):
    from serving.client.cli import safe_name

    assert safe_name(key, 3) == expected
