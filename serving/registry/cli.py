"""The command line of `create_model.sh` (INTERFACE.md section 4): list recent jobs, or deploy a job's export.

    python -m serving.create_model -l
    python -m serving.create_model -j JOB_NAME [-n MODEL_NAME] [-v VERSION]

All the work is in `serving.registry.deployment`; this file only parses flags and prints. It imports no
TensorFlow, so `-l` and `--help` answer at once.
"""
from __future__ import annotations

import argparse
import sys

from artifacts import home, jobs, model_tree
from serving.registry.deployment import deploy

COLUMNS = ("NAME", "STATE", "MODEL", "STEP", "CREATED")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="create_model.sh",
        description="Deploy a training job's exported SavedModel as a numbered model version under "
                    "$GENART_HOME/models/ (and rewrite models/models.config for TF Serving), "
                    "or list the most recent jobs. A refusal (unknown job, no export yet, bad name or version) "
                    "is one line on stderr and exit status 2.",
        epilog="Examples:\n  ./create_model.sh -l\n  ./create_model.sh -j faces -n portraits",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-l", "--list", action="store_true", help="list the 10 most recent jobs")
    action.add_argument("-j", "--job", metavar="JOB_NAME", help="the job whose export/ to deploy")
    parser.add_argument("-n", "--model-name", metavar="MODEL_NAME", help="model name (default: the job name)")
    parser.add_argument("-v", "--version", metavar="VERSION",
                        help="version, a positive integer (default: highest existing + 1, from 1)")
    return parser


def format_jobs(jobs: list[dict]) -> str:
    """The `-l` table: one line per job, aligned columns."""
    rows = [COLUMNS] + [tuple(str(job.get(key) if job.get(key) is not None else "-")
                              for key in ("name", "state", "model", "step", "created")) for job in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


EXAMPLE_INSTANCES = {  # model -> one instance of its serving_default (others: embeddings)
    "cyclegan": '{"image_bytes": {"b64": "<base64 of a JPEG/PNG>"}, "key": "0"}',
    "spade": '{"label_map": {"b64": "<base64 of a label map PNG, colours as in classes.json>"}, "key": "0"}',
}


def how_to_serve(model: str, config_path: str, kind: str | None) -> str:
    """Where to go next: serve every model of models.config (ours or real TF Serving), then predict."""
    instance = EXAMPLE_INSTANCES.get(kind or "", '{"embeddings": [0.1, -0.3, ...], "key": "0"}')
    return "\n".join([
        "Serve every model in models.config:",
        f"  python -m serving.server --model-config-file {config_path}",
        f"  # or real TF Serving: tensorflow_model_server --model_config_file={config_path} --rest_api_port=8501",
        "Predict:",
        f"  curl -d '{{\"instances\": [{instance}]}}' http://127.0.0.1:8501/v1/models/{model}:predict",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list and (args.model_name or args.version):
        parser.error("-n and -v go with -j, not -l")
    try:
        if args.list:
            recent = jobs.list_jobs(limit=10)
            print(format_jobs(recent) if recent else f"no jobs under {home.jobs_dir()}")
            return 0
        name, version, path = deploy(args.job, args.model_name, args.version)
    except model_tree.ModelTreeError as err:
        print(f"create_model: error: {err}", file=sys.stderr)
        return 2
    print(f"Deployed job {args.job} as model {name} version {version}: {path}")
    job = jobs.read_job(args.job) or {}
    print(how_to_serve(name, model_tree.models_config_path(), job.get("model")))
    return 0
