"""`python -m serving.predict`: the local `gcloud ml-engine predict` (INTERFACE.md section 6).

    python -m serving.predict --model NAME --json-instances FILE [--version N] [--signature-name S]
                              [--server http://127.0.0.1:8501 | --model-dir EXPORT_DIR] [--output-dir DIR]

Reads one JSON instance per line (blank lines ignored; `-` reads stdin), predicts through the server (REST, or
gRPC with `--server grpc://host:8500`) or locally with `--model-dir` (a SavedModel dir, or a dir of numbered
versions: the highest, or `--version`; no server needed), and prints `{"predictions": [...]}`. With
`--output-dir`, each `image_bytes` output is also written to `DIR/<key>.png` and each `embeddings` output to
`DIR/<key>.json` (keys made safe as file names; other `_bytes` outputs go to `DIR/<key>.<output>.bin`).
Exit status: 0 ok, 1 prediction refused (the server's error is printed), 2 bad usage or input file.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys

from artifacts import console, export, storage
from artifacts.export import BYTES_SUFFIX, EMBEDDINGS, IMAGE_BYTES, KEY
from serving.client.common import ServingError  # the clients import TensorFlow only for gRPC
from serving.client.default import connect


def read_instances(path: str) -> list:
    """One JSON value per non-blank line; ValueError naming the line otherwise."""
    text = sys.stdin.read() if path == "-" else storage.read_text(path)
    instances = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            instances.append(json.loads(line))
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: not a JSON instance ({err})") from None
    if not instances:
        raise ValueError(f"{path} holds no instances")
    return instances


def safe_name(key, index: int) -> str:
    """A file name for an instance key: letters, digits, '.', '_', '-' only; never hidden, empty or a path."""
    text = str(key) if key is not None else str(index)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:120].lstrip(".")
    return name or f"instance_{index}"


def write_outputs(predictions: list, output_dir: str) -> list[str]:
    """Write image_bytes -> <key>.png, embeddings -> <key>.json (other _bytes -> <key>.<alias>.bin)."""
    written, used = [], set()
    for index, row in enumerate(predictions):
        if not isinstance(row, dict):
            continue
        stem = safe_name(row.get(KEY), index)
        if stem in used:
            stem = f"{stem}-{index}"
        used.add(stem)
        for alias, value in row.items():
            if alias == IMAGE_BYTES and isinstance(value, dict) and "b64" in value:
                path, data = storage.join(output_dir, f"{stem}.png"), base64.b64decode(value["b64"])
            elif alias == EMBEDDINGS:
                path, data = storage.join(output_dir, f"{stem}.json"), (json.dumps(value) + "\n").encode()
            elif alias.endswith(BYTES_SUFFIX) and isinstance(value, dict) and "b64" in value:
                path, data = storage.join(output_dir, f"{stem}.{safe_name(alias, 0)}.bin"), \
                    base64.b64decode(value["b64"])
            else:
                continue
            storage.write_bytes(path, data)
            written.append(path)
    return written


def predict_local(model_dir: str, name: str, instances: list, signature_name: str | None,
                  version: int | None) -> list:
    from serving.server import core

    with storage.local_copy(model_dir, "genart-predict-") as model_dir:
        if version is not None and os.path.isdir(os.path.join(model_dir, str(version))):
            model_dir = os.path.join(model_dir, str(version))
        model_dir = export.latest_export(model_dir)
        model = core.load_model(model_dir, name, version or 0)
        body = {"instances": instances, **({"signature_name": signature_name} if signature_name else {})}
        return core.predict_json(model, body)["predictions"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.predict", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n  python -m serving.predict --model faces --json-instances embeddings.json --output-dir out/\n"
               "  python -m serving.predict --model faces --json-instances images.json "
               "--model-dir workspace/jobs/faces/export",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--json-instances", required=True, help="file of JSON instances, one per line ('-': stdin)")
    parser.add_argument("--version", type=int, default=None, help="model version (default: the latest)")
    parser.add_argument("--signature-name", default=None, help="signature (default: chosen by the input names)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", default=None, help="http://HOST:PORT (REST) or grpc://HOST:PORT "
                                                       "(default: $GENART_SERVER or http://127.0.0.1:8501)")
    where.add_argument("--model-dir", default=None, help="predict locally from this SavedModel (or versions) dir")
    parser.add_argument("--output-dir", default=None, help="also write <key>.png / <key>.json files here")
    parser.add_argument("--auth-token-file", default=None, help="bearer token for the server")
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    args = parser.parse_args(argv)
    try:
        if args.model_dir and not storage.exists(args.model_dir):
            raise FileNotFoundError(f"--model-dir {args.model_dir} not found")
        instances = read_instances(args.json_instances)
        token = storage.read_text(args.auth_token_file).strip() if args.auth_token_file else None
    except (OSError, ValueError) as err:
        return console.usage_error(err)
    failures: tuple = (ServingError,)
    try:
        if args.model_dir:
            console.import_tensorflow(console.set_verbose(argv))
            from serving.server import core

            failures += (core.PredictionError,)
            predictions = predict_local(args.model_dir, args.model, instances, args.signature_name, args.version)
        else:
            predictions = connect(args.server, token).predict(
                args.model, instances, signature_name=args.signature_name, version=args.version)
    except failures as err:
        print(f"error: prediction failed: {err}", file=sys.stderr)
        return 1
    except (OSError, FileNotFoundError, ValueError) as err:
        return console.usage_error(err)
    print(json.dumps({"predictions": predictions}))
    if args.output_dir:
        written = write_outputs(predictions, args.output_dir)
        print(f"wrote {len(written)} files to {args.output_dir}", file=sys.stderr)
    return 0
