"""Helpers for the export tests: test pictures, `saved_model_cli` (TF Serving's TF1 loader) and signature calls."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
PREDICT_METHOD = "tensorflow/serving/predict"


def pattern(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth, distinctive RGB picture (gradients + a blob), uint8 [height, width, 3]."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    cy, cx = rng.uniform(0.2, 0.8, 2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) * 20)
    channels = [np.clip(rng.uniform(0.2, 1) * x + rng.uniform(0, 1) * y * c + blob * rng.uniform(-1, 1), 0, 1)
                for c in (1, -1, 0.5)]
    return (np.stack(channels, -1) * 255).astype(np.uint8)


def encode_image(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def transparent_image(seed: int, height: int, width: int, mode: str, fmt: str = "PNG") -> bytes:
    """`pattern` with transparency, encoded: mode RGBA or LA (a varying alpha channel), or P (a palette image
    whose colour 0 is transparent: tRNS in a PNG, the transparent index in a GIF)."""
    rgb = pattern(seed, height, width)
    alpha = np.clip(np.mgrid[0:height, 0:width][1] * 255 // max(width - 1, 1), 0, 255).astype(np.uint8)
    if mode == "P":
        image = Image.fromarray(rgb).quantize(colors=16, dither=Image.Dither.NONE)
        indices = np.asarray(image).copy()
        indices[: height // 2, : width // 3] = 0  # a transparent corner
        image = Image.fromarray(indices, "P")
        image.putpalette(Image.fromarray(rgb).quantize(colors=16, dither=Image.Dither.NONE).getpalette())
        save_args = {"transparency": 0}
    else:
        image = Image.fromarray(np.dstack([rgb, alpha])).convert(mode)
        save_args = {}
    out = io.BytesIO()
    image.save(out, fmt, **save_args)
    return out.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 [H, W, 3]; fails unless they are an RGB PNG."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGB", (image.format, image.mode)
    return np.asarray(image)


def run_cli(*args: str) -> str:
    """Run `saved_model_cli ARGS...` (CPU only) and return its stdout; fail the test on a non-zero exit."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([SAVED_MODEL_CLI, *args], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def parse_show_all(text: str) -> dict:
    """`saved_model_cli show --all` -> {signature: ({input: (dtype, shape)}, {output: (dtype, shape)}, method)}."""
    signatures = {}
    for block in re.split(r"^signature_def\['", text, flags=re.M)[1:]:
        name = block.split("'", 1)[0]
        tensors = ({}, {})
        for side, alias, dtype, shape in re.findall(
                r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([^)]*)\)", block):
            dims = tuple(int(d) for d in shape.replace(" ", "").split(",") if d)
            tensors[side == "outputs"][alias] = (dtype, dims)
        method = re.search(r"Method name is: (\S+)", block)
        signatures[name] = (*tensors, method.group(1) if method else None)
    return signatures


def show_signatures(export_dir: str) -> dict:
    """The signatures of the `serve` tag set as `saved_model_cli show --all` lists them (parsed)."""
    return parse_show_all(run_cli("show", "--dir", export_dir, "--all"))


def run_signature(export_dir: str, signature: str, inputs: dict[str, np.ndarray], work_dir: str) -> dict:
    """Execute one signature with `saved_model_cli run` (the TF1 session loader TF Serving uses) on .npy inputs;
    return its outputs as numpy arrays."""
    os.makedirs(work_dir, exist_ok=True)
    specs = []
    for name, value in inputs.items():
        path = os.path.join(work_dir, f"in_{signature}_{name}.npy")
        np.save(path, value, allow_pickle=value.dtype == object)
        specs.append(f"{name}={path}")
    out_dir = os.path.join(work_dir, f"out_{signature}")
    run_cli("run", "--dir", export_dir, "--tag_set", "serve", "--signature_def", signature,
            "--inputs", ";".join(specs), "--outdir", out_dir, "--overwrite")
    return {name[:-4]: np.load(os.path.join(out_dir, name), allow_pickle=True) for name in os.listdir(out_dir)}


def call(loaded, signature: str, **inputs) -> dict:
    """Call a signature of a `tf.saved_model.load`ed export; outputs as numpy arrays."""
    return {name: value.numpy() for name, value in loaded.signatures[signature](**inputs).items()}


def run_python_json(script: str, *args: str, timeout: float = 300) -> dict:
    """Run `script` in a fresh CPU-only Python (e.g. to set up logical devices before TF starts) from the repo root;
    return the JSON object it printed on its last line."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
