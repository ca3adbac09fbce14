"""The Python steps of `scripts/demo.sh`, one subcommand each, so the shell script only sequences commands.

    demo_helpers.py models-config OUT NAME...            a TF Serving models.config naming only these models
    demo_helpers.py wait-ready SERVER_URL PID            until /readyz answers (or the server process exits)
    demo_helpers.py instances OUT_DIR JOB_DIR EXAMPLES FULL   the seed's JSON-instances files
    demo_helpers.py round-trip PREDICTIONS_JSON OUT      predictions, one per line: the next request's instances
    demo_helpers.py training-speed JOB_DIR TRAIN_LOG     "<images/s> (<source>)"
    demo_helpers.py quality JOB_DIR                      the last evaluation's first metric (kid_digits)
    demo_helpers.py label-maps OUT LABELS_DIR COUNT      `label_map` instances (SPADE) of the first label PNGs
    demo_helpers.py free-ports N                         N distinct free TCP ports on 127.0.0.1
"""
from __future__ import annotations

import base64
import glob
import json
import os
import random
import re
import socket
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from artifacts import jobs, model_tree, storage  # noqa: E402
from serving import client  # noqa: E402
from trainer.evaluate import names, report  # noqa: E402 - TensorFlow-free


def models_config(out: str, *names: str) -> None:
    model_tree.write_models_config(names=list(names), path=out)


def wait_ready(server: str, pid: str) -> None:
    def alive() -> bool:
        try:
            os.kill(int(pid), 0)
            return True
        except OSError:
            return False

    client.wait_until_ready(server, timeout=300, alive=alive)
    print(f"server ready: {server}")


def _write_lines(path: str, instances) -> None:
    with open(path, "w") as f:
        for instance in instances:
            f.write(json.dumps(instance) + "\n")


def _image_instances(paths) -> list[dict]:
    return [{"image_bytes": {"b64": base64.b64encode(open(p, "rb").read()).decode("ascii")}, "key": str(i)}
            for i, p in enumerate(paths)]


def instances(out: str, job_dir: str, examples: str, full: str) -> None:
    """gcloud's JSON instances, one per line: `{"embeddings": [...], "key": "0"}`, `{"image_bytes": {"b64"}, ...}`."""
    os.makedirs(out, exist_ok=True)
    latent_dim = storage.read_json(jobs.config_path(job_dir))["latent_dim"]
    rng = random.Random(0)
    _write_lines(os.path.join(out, "embeddings.json"),
                 ({"embeddings": [round(rng.gauss(0, 1), 6) for _ in range(latent_dim)], "key": str(i)}
                  for i in range(8)))
    motifs = sorted(os.listdir(os.path.join(examples, "images")))  # one image of each motif
    _write_lines(os.path.join(out, "images.json"),
                 _image_instances(sorted(glob.glob(os.path.join(examples, "images", m, "*")))[0] for m in motifs))
    if full == "1":
        for domain in ("a", "b"):
            paths = sorted(glob.glob(os.path.join(examples, "unpaired", f"test{domain.upper()}", "*")))[:4]
            _write_lines(os.path.join(out, f"images_{domain}.json"), _image_instances(paths))
    print(f"instances: {out}/embeddings.json (8 x {latent_dim} floats), {out}/images.json ({len(motifs)} images)")


def round_trip(predictions_json: str, out: str) -> None:
    """Every prediction is a valid instance for the opposite signature, as it is."""
    _write_lines(out, json.load(open(predictions_json))["predictions"])


def _tensorboard_rate(job_dir: str) -> float | None:
    """Images/s over the whole run from the trainer's `images_per_second` summaries (one per summary interval)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    points = []
    for path in sorted(glob.glob(os.path.join(job_dir, "logs", "**", "events.out.tfevents.*"), recursive=True)):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.tag == "images_per_second":
                    rate = (float(tensor_util.make_ndarray(value.tensor)) if value.HasField("tensor")
                            else value.simple_value)
                    points.append((event.step, rate))
    if not points:
        return None
    points.sort()
    steps = [b - a for a, b in zip([1] + [s for s, _ in points[:-1]], [s for s, _ in points])]
    seconds = sum(n / rate for n, (_, rate) in zip(steps, points) if rate > 0)
    return sum(steps) / seconds if seconds else None


def training_speed(job_dir: str, train_log: str) -> None:
    try:
        rate = _tensorboard_rate(job_dir)
    except Exception:  # noqa: BLE001 - fall back to the other sources below
        rate = None
    if rate:
        print(f"{rate:.1f} images/s (TensorBoard images_per_second, first step excluded)")
        return
    text = open(train_log, errors="replace").read() if os.path.exists(train_log) else ""
    rates = re.findall(r"([0-9.]+) img/s", text)
    if rates:
        print(f"{float(rates[-1]):.1f} images/s (the trainer's last progress line)")
        return
    job, config = jobs.read(job_dir), storage.read_json(jobs.config_path(job_dir))
    seconds = (datetime.fromisoformat(job["ended"].replace("Z", "+00:00"))
               - datetime.fromisoformat(job["started"].replace("Z", "+00:00"))).total_seconds()
    print(f"~{job['step'] * config['batch_size'] / max(seconds, 1):.1f} images/s (job.json times, export included)")


def quality(job_dir: str) -> None:
    """"kid_digits 0.123 (val; train 0.101; lower is closer to the training images), 200 samples per split, step
    4000  PATH" from the job's last evaluation (eval/metrics-<step>.json)."""
    files = sorted(glob.glob(os.path.join(job_dir, jobs.EVAL, "metrics-*.json")))
    if not files:
        raise RuntimeError(f"no evaluation in {os.path.join(job_dir, jobs.EVAL)}")
    record = storage.read_json(files[-1])
    name, values = next(iter(record["metrics"].items()))
    reading = ("higher is better" if names.base_metric(name) in names.HIGHER_IS_BETTER
               else "lower is closer to the training images")
    print(f"{name} {report.shown(values['val'])} (val; train {report.shown(values['train'])}; {reading}), "
          f"{record['num_samples']} samples per split, step {record['step']}  {files[-1]}")


def label_maps(out: str, labels_dir: str, count: str) -> None:
    paths = sorted(glob.glob(os.path.join(labels_dir, "*.png")))[:int(count)]
    _write_lines(out, ({"label_map": {"b64": base64.b64encode(open(path, "rb").read()).decode()}, "key": str(i)}
                       for i, path in enumerate(paths)))
    print(f"instances: {out} ({len(paths)} label maps of {labels_dir})")


def free_ports(count: str) -> None:
    sockets = [socket.socket() for _ in range(int(count))]
    for one in sockets:
        one.bind(("127.0.0.1", 0))
    print(" ".join(str(one.getsockname()[1]) for one in sockets))
    for one in sockets:
        one.close()


COMMANDS = {"models-config": models_config, "wait-ready": wait_ready, "instances": instances,
            "round-trip": round_trip, "training-speed": training_speed, "quality": quality,
            "label-maps": label_maps, "free-ports": free_ports}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except (OSError, RuntimeError, TimeoutError, ValueError, model_tree.ModelTreeError) as err:
        sys.exit(f"demo_helpers {sys.argv[1]}: {err}")
