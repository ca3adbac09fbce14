"""Small deterministic SavedModels with exactly the signatures of INTERFACE.md section 3, for serving tests.

- VAE-GAN-like: `embeddings` (= `serving_default`): embeddings float32 [-1, 100] + key -> image_bytes (PNG) + key,
  through a fixed linear map + tanh; `image_bytes`: image_bytes + key -> embeddings + key, through the shared
  decode/center-crop/resize function, a fixed projection and tanh. Every embedding output equals
  `version + 0.01 * tanh(...)`, so `round(embeddings[0]) == version` tells versions apart; images differ by version.
- CycleGAN-like: `a_to_b` (= `serving_default`) inverts the colours, `b_to_a` darkens them (both plus a
  version-dependent offset), image_bytes + key -> image_bytes + key.
- `dcgan=True` (VAE-GAN-like only): a DCGAN-sized decoder (dense + 4 transposed convolutions to 64x64), for
  benchmarks that want a realistic amount of work per instance.

Models are written once per process into a cache and copied into registry trees `models/NAME/N/` on demand.
"""
from __future__ import annotations

import atexit
import base64
import io
import json
import os
import shutil
import tempfile
import uuid

import numpy as np
import tensorflow as tf

from preprocess.records import decode_and_preprocess, to_uint8

LATENT_DIM = 100
IMAGE_SIZE = 8
KEY_SPEC = tf.TensorSpec([None], tf.string, name="key")
IMAGES_SPEC = tf.TensorSpec([None], tf.string, name="image_bytes")


def _decode(image_bytes, size):
    return tf.map_fn(lambda one: decode_and_preprocess(one, size), image_bytes,
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


def _encode(images):
    return tf.map_fn(tf.io.encode_png, to_uint8(images), fn_output_signature=tf.TensorSpec([], tf.string))


def _same_count(values, key):
    tf.debugging.assert_equal(tf.shape(key)[0], tf.shape(values)[0],
                              message="inputs and 'key' must have the same number of instances")


class VaeganLike(tf.Module):
    def __init__(self, version: int, latent_dim: int = LATENT_DIM, image_size: int = IMAGE_SIZE, dcgan: bool = False):
        super().__init__(name="vaegan_like")
        rng = np.random.default_rng(1234)
        self.size, self.version = (64 if dcgan else image_size), float(version)
        pixels = self.size * self.size * 3
        self.w_enc = tf.Variable((rng.normal(size=(pixels, latent_dim)) / np.sqrt(pixels)).astype(np.float32),
                                 trainable=False)
        if dcgan:
            self.layers = [tf.Variable(rng.normal(size=(latent_dim, 4 * 4 * 512)).astype(np.float32) * 0.05)]
            for cin, cout in ((512, 256), (256, 128), (128, 64), (64, 3)):
                self.layers.append(tf.Variable(rng.normal(size=(4, 4, cout, cin)).astype(np.float32) * 0.05))
        else:
            self.layers = [tf.Variable((rng.normal(size=(latent_dim, pixels)) / np.sqrt(latent_dim)).astype(np.float32),
                                       trainable=False)]
        self.dcgan = dcgan

        @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="embeddings"), KEY_SPEC],
                     autograph=False)
        def generate(embeddings, key):
            _same_count(embeddings, key)
            return {"image_bytes": _encode(self._decoder(embeddings)), "key": tf.identity(key)}

        @tf.function(input_signature=[IMAGES_SPEC, KEY_SPEC], autograph=False)
        def encode(image_bytes, key):
            _same_count(image_bytes, key)
            flat = tf.reshape(_decode(image_bytes, self.size), [-1, pixels])
            return {"embeddings": self.version + 0.01 * tf.tanh(flat @ self.w_enc), "key": tf.identity(key)}

        self.generate, self.encode = generate, encode

    def _decoder(self, z):
        shift = 0.3 * (self.version - 1.0)
        if not self.dcgan:
            return tf.reshape(tf.tanh(z @ self.layers[0] + shift), [-1, self.size, self.size, 3])
        x = tf.nn.relu(tf.reshape(z @ self.layers[0], [-1, 4, 4, 512]))
        for i, kernel in enumerate(self.layers[1:]):
            n, h = tf.shape(x)[0], x.shape[1] * 2
            x = tf.nn.conv2d_transpose(x, kernel, tf.stack([n, h, h, kernel.shape[2]]), strides=2)
            x = tf.nn.relu(x) if i < 3 else tf.tanh(x + shift)
        return x

    def signatures(self) -> dict:
        generate, encode = self.generate.get_concrete_function(), self.encode.get_concrete_function()
        return {"serving_default": generate, "embeddings": generate, "image_bytes": encode}


class CycleganLike(tf.Module):
    def __init__(self, version: int, image_size: int = IMAGE_SIZE):
        super().__init__(name="cyclegan_like")
        self.offset = tf.Variable(0.1 * (version - 1), trainable=False)

        def translate(op):
            @tf.function(input_signature=[IMAGES_SPEC, KEY_SPEC], autograph=False)
            def serve(image_bytes, key):
                _same_count(image_bytes, key)
                images = op(_decode(image_bytes, image_size))
                return {"image_bytes": _encode(tf.clip_by_value(images + self.offset, -1.0, 1.0)),
                        "key": tf.identity(key)}
            return serve

        self.a_to_b = translate(lambda x: -x)
        self.b_to_a = translate(lambda x: 0.5 * x - 0.5)

    def signatures(self) -> dict:
        a_to_b, b_to_a = self.a_to_b.get_concrete_function(), self.b_to_a.get_concrete_function()
        return {"serving_default": a_to_b, "a_to_b": a_to_b, "b_to_a": b_to_a}


_CACHE: dict[tuple, str] = {}
_CACHE_DIR: list[str] = []


def saved_model(kind: str = "vaegan", version: int = 1, **options) -> str:
    """Path of a cached SavedModel of `kind` ('vaegan' or 'cyclegan') at `version` (built on first use)."""
    cache_key = (kind, version, tuple(sorted(options.items())))
    if cache_key not in _CACHE:
        if not _CACHE_DIR:
            _CACHE_DIR.append(tempfile.mkdtemp(prefix="genart-serving-models-"))
            atexit.register(shutil.rmtree, _CACHE_DIR[0], True)
        module = (VaeganLike if kind == "vaegan" else CycleganLike)(version, **options)
        path = os.path.join(_CACHE_DIR[0], f"{kind}-{version}-{uuid.uuid4().hex[:6]}")
        tf.saved_model.save(module, path, signatures=module.signatures())
        _CACHE[cache_key] = path
    return _CACHE[cache_key]


def install_version(models_dir: str, name: str, version: int, kind: str = "vaegan", **options) -> str:
    """Copy a cached SavedModel to `models_dir/name/version/` atomically (temp dir + rename, like the registry)."""
    base = os.path.join(models_dir, name)
    os.makedirs(base, exist_ok=True)
    staging = os.path.join(base, f".tmp-{uuid.uuid4().hex[:8]}")
    shutil.copytree(saved_model(kind, version, **options), staging)
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
    """A `$GENART_HOME`-like tree: `home/models/NAME/N/` for {name: (kind, versions)}, plus models.config.
    Returns the models.config path."""
    models_dir = os.path.join(home, "models")
    for name, (kind, versions) in models.items():
        for version in versions:
            install_version(models_dir, name, version, kind)
    return write_models_config(models_dir, {name: (extra or {}).get(name, "") for name in models})


# ---------------------------------------------------------------- instances like the seed's files


def jpeg_bytes(seed: int = 0, size: int = 24) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size, size + 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def embedding_lines(count: int = 3, latent_dim: int = LATENT_DIM, seed: int = 0) -> list[str]:
    """`{"embeddings": [...100 floats...], "key": "0"}` lines, as in the seed's instance files."""
    rng = np.random.default_rng(seed)
    return [json.dumps({"embeddings": [round(float(x), 6) for x in rng.normal(size=latent_dim)], "key": str(i)})
            for i in range(count)]


def image_lines(count: int = 3) -> list[str]:
    """`{"image_bytes": {"b64": "<jpeg>"}, "key": "0"}` lines, as in the seed's instance files."""
    return [json.dumps({"image_bytes": {"b64": base64.b64encode(jpeg_bytes(i)).decode()}, "key": str(i)})
            for i in range(count)]


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
