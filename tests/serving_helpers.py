"""Test utilities of the serving, batch and predict tests (not product code; `bench/` uses
`trainer.sample_exports` directly).

- Real exports: `export_path(kind, seed)` is the SavedModel of an untrained tiny 'vaegan' or 'cyclegan' written by
  `trainer.sample_exports` (so by `trainer.export`, as a job's), built once per test process and cached;
  `install_version`, `build_registry` and `stage_job` copy them into model trees and job dirs. Version N of a
  tree built here is the export of seed N, so versions differ in their weights and hence in their outputs.
- Telling versions apart: `which_version(embeddings, image)` names the seed whose export, called directly
  (`tf.saved_model.load`, no serving code), gives those embeddings for that image.
- Instances like the seed's files (`embedding_lines`, `image_lines`, `jpeg_bytes`), batch-output reading, and
  `ServerProcess`: the real `python -m serving.server` as a subprocess on free ports (`peak_rss` of it).
- A model that hangs for real: `export_gated`, the VAE-GAN export whose `embeddings` graph first reads a FIFO.
- What hostile clients send: `gif_bomb`, `encoded_image` (any size, kind, frames), `tensor_proto` (any declared
  shape and value count).
"""
from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import io
import json
import os
import shutil
import tempfile
import uuid

import numpy as np

from artifacts import jobs, storage
from artifacts.home import jobs_dir
from trainer import sample_exports

LATENT_DIM = sample_exports.LATENT_DIM
IMAGE_SIZE = sample_exports.IMAGE_SIZE
MATCH_TOLERANCE = 1e-3  # float noise of other batch sizes is ~1e-6; other seeds differ by ~0.1


# ---------------------------------------------------------------- real exports, cached per process


@functools.cache
def _cache_dir() -> str:
    path = tempfile.mkdtemp(prefix="genart-test-exports-")
    atexit.register(shutil.rmtree, path, True)
    return path


def export_path(kind: str = "vaegan", seed: int = 1, image_size: int = IMAGE_SIZE) -> str:
    """The SavedModel of an untrained `kind` whose weights come from `seed` (exported on first use)."""
    return _export(kind, seed, image_size)


@functools.cache
def _export(kind: str, seed: int, image_size: int) -> str:
    return sample_exports.export_untrained(kind, os.path.join(_cache_dir(), f"{kind}-{seed}-{image_size}"),
                                           seed=seed, image_size=image_size)


def install_version(models_dir: str, name: str, version: int, kind: str = "vaegan", seed: int | None = None) -> str:
    """Copy the export of `seed` (default: `version`) to `models_dir/name/version/` atomically (temp dir + rename,
    like the registry); return that path."""
    base = os.path.join(models_dir, name)
    os.makedirs(base, exist_ok=True)
    staging = os.path.join(base, f".tmp-{uuid.uuid4().hex[:8]}")
    shutil.copytree(export_path(kind, version if seed is None else seed), staging)
    final = os.path.join(base, str(version))
    os.rename(staging, final)
    return final


def write_models_config(models_dir: str, entries: dict[str, str]) -> str:
    """`models.config` naming `entries` {model name: extra text-format fields ('' for none)}; returns its path."""
    text = "model_config_list {\n"
    for name, extra in entries.items():
        text += (f'  config {{\n    name: "{name}"\n    base_path: "{os.path.join(models_dir, name)}"\n'
                 f'    model_platform: "tensorflow"\n{extra}  }}\n')
    path = os.path.join(models_dir, "models.config")
    with open(path, "w") as f:
        f.write(text + "}\n")
    return path


def build_registry(home: str, models: dict[str, tuple[str, list[int]]], extra: dict[str, str] | None = None) -> str:
    """A `$GENART_HOME`-like tree: `home/models/NAME/N/` (the export of seed N) for {name: (kind, versions)}, plus
    models.config. Returns the models.config path."""
    models_dir = os.path.join(home, "models")
    for name, (kind, versions) in models.items():
        for version in versions:
            install_version(models_dir, name, version, kind)
    return write_models_config(models_dir, {name: (extra or {}).get(name, "") for name in models})


def stage_job(home: str, job_name: str, kind: str = "vaegan", seed: int = 1) -> str:
    """A finished job under `home/jobs/` holding the export of `seed`, as training would leave it, ready for
    `registry.deploy`; returns the job dir."""
    job_dir = os.path.join(jobs_dir(home), job_name)
    shutil.copytree(export_path(kind, seed), jobs.export_dir(job_dir))
    jobs.Job.open(job_dir, model=kind).set_state(jobs.SUCCEEDED)
    return job_dir


def export_gated(path: str, gate: str) -> str:
    """A SavedModel at `path` whose `embeddings` signature (also `serving_default`) is the VAE-GAN export of seed
    1 behind a gate: for a non-empty batch its graph first reads the FIFO `gate` (`tf.io.read_file`), so every
    call blocks inside a real TensorFlow op — as on a hung file system — until something opens the FIFO's other
    end (`open_gate`); the read then fails (a pipe cannot be seeked), so a released call answers 400. An empty
    batch (the server's warm-up) passes without reading. Returns `path`."""
    import tensorflow as tf

    if not os.path.exists(gate):
        os.mkfifo(gate)
    class Gated(tf.Module):
        def __init__(self):
            super().__init__()
            self.loaded = tf.saved_model.load(export_path("vaegan", 1))  # keeps the variables alive
            self.inner = self.loaded.signatures["embeddings"]

        @tf.function(input_signature=[tf.TensorSpec([None, LATENT_DIM], tf.float32, name="embeddings"),
                                      tf.TensorSpec([None], tf.string, name="key")])
        def embeddings(self, embeddings, key):
            # the path depends on the input, so the read is never constant-folded when the graph is optimised
            where = tf.strings.join([gate, tf.strings.substr(tf.strings.reduce_join(key), 0, 0)])
            read = tf.cond(tf.size(key) > 0, lambda: tf.io.read_file(where), lambda: tf.constant(""))
            with tf.control_dependencies([read]):
                return self.inner(embeddings=tf.identity(embeddings), key=tf.identity(key))

    module = Gated()
    tf.saved_model.save(module, path, signatures={"serving_default": module.embeddings,
                                                  "embeddings": module.embeddings})
    return path


def open_gate(gate: str) -> int:
    """Release every call blocked on (and every later call through) `export_gated`'s FIFO; returns the fd that
    holds it open (close it to shut the gate again)."""
    return os.open(gate, os.O_RDWR | os.O_NONBLOCK)


# ---------------------------------------------------------------- telling versions apart


@functools.lru_cache(maxsize=64)
def _direct_embeddings(seed: int, images: tuple[bytes, ...]) -> np.ndarray:
    import tensorflow as tf

    signature = _loaded(seed).signatures["image_bytes"]
    return signature(image_bytes=tf.constant(images), key=tf.constant([""] * len(images)))["embeddings"].numpy()


@functools.cache
def _loaded(seed: int):
    import tensorflow as tf

    return tf.saved_model.load(export_path("vaegan", seed))


def direct_embeddings(images: list[bytes], seed: int) -> np.ndarray:
    """The `image_bytes` signature of the VAE-GAN export of `seed` called directly on `images` (no serving code):
    float32 [len(images), LATENT_DIM]."""
    return _direct_embeddings(seed, tuple(images))


def which_versions(embeddings, images: list[bytes], versions=(1, 2, 3)) -> list[int]:
    """For each served embeddings vector of `images[i]`, the version (= seed) whose export gives it; fails unless
    exactly one of `versions` matches each."""
    served = np.asarray(embeddings, np.float32)
    distances = {v: np.abs(served - direct_embeddings(images, v)).max(axis=1) for v in versions}
    found = []
    for i in range(len(served)):
        matches = [v for v in versions if distances[v][i] <= MATCH_TOLERANCE]
        assert len(matches) == 1, f"instance {i}: {len(matches)} of versions {versions} match " \
                                  f"(distances {[float(distances[v][i]) for v in versions]})"
        found.append(matches[0])
    return found


def which_version(embeddings, image: bytes, versions=(1, 2, 3)) -> int:
    """The version (= seed) whose VAE-GAN export gives `embeddings` for `image`."""
    return which_versions([embeddings], [image], versions)[0]


# ---------------------------------------------------------------- instances like the seed's files


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jpeg_bytes(seed: int = 0, size: int = 24) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size, size + 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def encoded_image(kind: str, side: int, frames: int = 1) -> bytes:
    """A side x side image in `kind` ("PNG", "GIF", "JPEG"...), animated when `frames` > 1 (each frame differs)."""
    from PIL import Image

    pictures = [Image.new("RGB", (side, side), (40 * i % 256, 90, 200)) for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, kind, save_all=frames > 1, append_images=pictures[1:])
    return out.getvalue()


def gif_bomb(frames: int, side: int) -> bytes:
    """`frames` 1x1 frames on a side x side logical screen: 15 bytes a frame, yet TensorFlow's GIF decoder
    allocates side*side*3 bytes for every one of them."""
    header = b"GIF89a" + side.to_bytes(2, "little") * 2 + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + bytes(4) + (1).to_bytes(2, "little") * 2 + b"\0" + b"\x02\x02\x44\x01\x00"
    return header + frame * frames + b"\x3b"


def tensor_proto(dtype, dims: list[int], **values):
    """A TensorProto as a hostile client may write it: any declared shape `dims`, any values (`float_val=[...]`,
    `string_val=[...]`, `tensor_content=b"..."`)."""
    from tensorflow.core.framework import tensor_pb2

    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    for field, items in values.items():
        if field == "tensor_content":
            proto.tensor_content = items
        else:
            getattr(proto, field).extend(items)
    return proto


def random_embedding(rng: np.random.Generator, size: int = LATENT_DIM) -> list[float]:
    return [round(float(x), 4) for x in rng.normal(size=size)]


def embedding_lines(count: int = 3, latent_dim: int = LATENT_DIM, seed: int = 0) -> list[str]:
    """`{"embeddings": [...100 floats...], "key": "0"}` lines, as in the seed's instance files."""
    rng = np.random.default_rng(seed)
    return [json.dumps({"embeddings": [round(float(x), 6) for x in rng.normal(size=latent_dim)], "key": str(i)})
            for i in range(count)]


def image_lines(count: int = 3) -> list[str]:
    """`{"image_bytes": {"b64": "<jpeg>"}, "key": "0"}` lines (the JPEG of `jpeg_bytes(i)`), as in the seed's
    instance files."""
    return [json.dumps({"image_bytes": {"b64": b64(jpeg_bytes(i))}, "key": str(i)}) for i in range(count)]


def read_batch_outputs(output_path: str) -> dict[str, list[str] | list[dict]]:
    """{"results_files", "errors_files", "results", "errors"} of a finished batch prediction (local or gs://)."""
    names = storage.listdir(output_path)
    out: dict = {"results_files": sorted(n for n in names if n.startswith("prediction.results-")),
                 "errors_files": sorted(n for n in names if n.startswith("prediction.errors_stats-"))}
    for kind in ("results", "errors"):
        out[kind] = [json.loads(line) for name in out[f"{kind}_files"]
                     for line in storage.read_text(storage.join(output_path, name)).splitlines() if line]
    return out


# ---------------------------------------------------------------- the real server as a subprocess


class ServerProcess:
    """`python -m serving.server ...` on free 127.0.0.1 ports; `.url`, `.grpc_target`, `.log()`, `.stop()`."""

    def __init__(self, *args: str, log_path: str, env: dict | None = None, wait_ready: bool = True,
                 timeout: float = 120.0):
        import subprocess
        import sys

        from conftest import REPO_ROOT, free_port, wait_for_port

        self.rest_port, self.grpc_port = free_port(), free_port()
        self.url, self.grpc_target = f"http://127.0.0.1:{self.rest_port}", f"127.0.0.1:{self.grpc_port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "serving.server", "--rest-api-port", str(self.rest_port),
                   "--port", str(self.grpc_port), *args]
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        try:
            wait_for_port(self.rest_port, timeout=timeout, proc=self.proc)
            if wait_ready:
                self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 120.0) -> None:
        from serving.client import wait_until_ready

        try:
            wait_until_ready(self.url, timeout, alive=lambda: self.proc.poll() is None)
        except (TimeoutError, RuntimeError) as err:
            raise TimeoutError(f"{err}:\n{self.log()}") from None

    def peak_rss(self) -> int:
        """The server process's peak resident memory so far (bytes, Linux VmHWM)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, return the exit status (kill after `timeout`)."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@contextlib.contextmanager
def loaded_manager(config_path: str):
    """A ModelManager of `config_path` with every model loaded once (no polling), stopped on exit."""
    from serving.server.manager import ModelManager

    manager = ModelManager(config_path=config_path, poll_seconds=-1)
    manager.poll_once()
    assert manager.ready(), manager.states()
    try:
        yield manager
    finally:
        manager.stop()
