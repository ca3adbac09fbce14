#!/usr/bin/env python3
"""Soak: the real server under many concurrent clients, valid and malformed requests mixed, and a hot version
swap in the middle (issue 12).

    .venv/bin/python bench/soak.py [--seconds 60] [--clients 32]

`--clients` threads (keep-alive REST and gRPC) call `python -m serving.server` (default limits) for `--seconds`,
each cycling through a fixed mix: valid embeddings and images over REST, valid embeddings over gRPC, and
malformed requests, each with the one status it must get (bad JSON, wrong length, bad base64, not an image, an
animated GIF over `--max-image-pixels`, 1,000 invalid instances, an unknown model or version, a gRPC tensor
declaring 800 MB). Halfway, version 2 (other weights) is copied next to version 1 (temp dir + rename), and the
server swaps to it while the load goes on. Prints: requests sent, failed valid requests (goal 0), wrong statuses
(goal 0), p50/p99 latency of valid and of malformed requests, the versions gRPC answered with, and the server's
RSS at start (ready, idle), after warm-up (the first sixth of the run), at its peak and at the end (goal: no
growth after warm-up). The model is the tiny untrained VAE-GAN of `trainer.sample_exports`.
"""
from __future__ import annotations

import argparse
import base64
import collections
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time

from serve_latency import REPO, Server, percentiles  # noqa: F401 - REPO puts the repository on sys.path

LATENT = 100


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def animated_gif(side: int = 1024, frames: int = 20) -> bytes:
    """20 frames of 1024 x 1024: 21 M pixels, over the default --max-image-pixels (16.7 M), in a few KB."""
    from PIL import Image

    pictures = [Image.new("P", (side, side), i) for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:])
    return out.getvalue()


def rest_mix() -> list[tuple[str, bool, str, bytes, int]]:
    """(name, valid, model path, body, the status it must get)."""
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 90)).save(png, "PNG")
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    embedding = [0.1] * LATENT
    row = lambda **fields: json.dumps({"instances": [fields]}).encode()  # noqa: E731
    return [
        ("rest-embeddings", True, "bench", row(embeddings=embedding, key="k"), 200),
        ("rest-image", True, "bench", row(image_bytes={"b64": b64(png.getvalue())}), 200),
        ("bad-json", False, "bench", b'{"instances": [', 400),
        ("wrong-length", False, "bench", row(embeddings=embedding[:-1]), 400),
        ("bad-base64", False, "bench", row(image_bytes={"b64": "***"}), 400),
        ("not-an-image", False, "bench", row(image_bytes={"b64": b64(b"plain text")}), 400),
        ("gif-over-limit", False, "bench", row(image_bytes={"b64": b64(animated_gif())}), 400),
        ("1000-bad-instances", False, "bench", json.dumps({"instances": [{}] * 1000}).encode(), 400),
        ("unknown-model", False, "nope", row(embeddings=embedding), 404),
        ("unknown-version", False, "bench/versions/99", row(embeddings=embedding), 404),
    ]


class Client(threading.Thread):
    def __init__(self, index: int, server: Server, mix: list, stop: threading.Event, record):
        super().__init__(daemon=True)
        self.index, self.server, self.rest_mix, self.stop, self.record = index, server, mix, stop, record

    def run(self) -> None:
        import grpc
        import httpx
        import numpy as np
        import tensorflow as tf
        from tensorflow.core.framework import tensor_pb2
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        http = httpx.Client(base_url=f"http://127.0.0.1:{self.server.rest}", timeout=60)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{self.server.grpc}"))
        valid_grpc, huge = predict_pb2.PredictRequest(), predict_pb2.PredictRequest()
        for request in (valid_grpc, huge):
            request.model_spec.name = "bench"
        valid_grpc.inputs["embeddings"].CopyFrom(tf.make_tensor_proto(np.full((1, LATENT), 0.1, np.float32)))
        huge.inputs["embeddings"].CopyFrom(tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum))
        for size in (2_000_000, LATENT):
            huge.inputs["embeddings"].tensor_shape.dim.add(size=size)
        mix = [(name, valid, lambda p=path, b=body: http.post(f"/v1/models/{p}:predict", content=b).status_code,
                expected) for name, valid, path, body, expected in self.rest_mix]
        mix += [("grpc-embeddings", True, lambda: _grpc(stub, valid_grpc), "OK"),
                ("grpc-huge-shape", False, lambda: _grpc(stub, huge), "INVALID_ARGUMENT")]
        turn = self.index
        while not self.stop.is_set():
            name, valid, call, expected = mix[turn % len(mix)]
            turn += 1
            started = time.perf_counter()
            try:
                got = call()
            except Exception as err:  # noqa: BLE001 - a transport failure is a wrong answer too
                got = f"{type(err).__name__}"
            self.record(name, valid, expected, got, time.perf_counter() - started)


def _grpc(stub, request) -> str:
    import grpc

    try:
        response = stub.Predict(request, timeout=60)
    except grpc.RpcError as err:
        return err.code().name
    return f"OK:v{response.model_spec.version.value}" if response.model_spec.version.value else "OK"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    import grpc  # noqa: F401 - imported before the clock starts, not by 32 client threads at once
    import httpx  # noqa: F401
    import tensorflow  # noqa: F401
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: F401

    from trainer.sample_exports import export_untrained

    work = tempfile.mkdtemp(prefix="genart-soak-")
    try:
        base = os.path.join(work, "bench")
        export_untrained("vaegan", os.path.join(base, "1"), seed=1)
        staged = export_untrained("vaegan", os.path.join(work, "staged-2"), seed=2)
        server = Server(base, os.path.join(work, "server.log"), "--file-system-poll-wait-seconds", "1")
        lock, stats = threading.Lock(), collections.Counter()
        latencies = {True: [], False: []}
        wrong: collections.Counter = collections.Counter()
        versions: collections.Counter = collections.Counter()

        def record(name, valid, expected, got, seconds):
            ok = got == expected or (isinstance(got, str) and got.startswith(f"{expected}:v"))
            with lock:
                stats["sent"] += 1
                latencies[valid].append(seconds)
                if isinstance(got, str) and got.startswith("OK:v"):
                    versions[got[3:]] += 1
                if not ok:
                    stats["failed valid" if valid else "wrong status"] += 1
                    wrong[(name, expected, got)] += 1

        rss = {"start": rss_mb(server.proc.pid)}
        samples: list[float] = []
        stop = threading.Event()
        mix = rest_mix()
        clients = [Client(i, server, mix, stop, record) for i in range(args.clients)]
        started = time.monotonic()
        for client in clients:
            client.start()
        swapped = False
        try:
            while (elapsed := time.monotonic() - started) < args.seconds:
                samples.append(rss_mb(server.proc.pid))
                if "after warm-up" not in rss and elapsed >= args.seconds / 6:
                    rss["after warm-up"] = samples[-1]
                if not swapped and elapsed >= args.seconds / 2:
                    shutil.copytree(staged, os.path.join(base, ".tmp-2"))
                    os.rename(os.path.join(base, ".tmp-2"), os.path.join(base, "2"))  # the hot swap
                    swapped = True
                    print(f"[{elapsed:5.1f}s] version 2 deployed", flush=True)
                time.sleep(0.5)
        finally:
            stop.set()
            for client in clients:
                client.join(120)
            rss["peak"], rss["end"] = max(samples), rss_mb(server.proc.pid)
            server.stop()
        print(f"\n{args.clients} clients, {args.seconds:g}s, {os.cpu_count()} CPUs (shared with the clients)")
        print(f"requests sent: {stats['sent']}   failed valid requests: {stats['failed valid']}   "
              f"wrong statuses: {stats['wrong status']}")
        for (name, expected, got), count in wrong.most_common(8):
            print(f"  {count:6d} x {name}: expected {expected}, got {got}")
        for valid, label in ((True, "valid"), (False, "malformed")):
            if latencies[valid]:
                p50, p99 = percentiles(latencies[valid])
                print(f"latency of {label:<9} requests: p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
                      f"({len(latencies[valid])} requests)")
        print("gRPC answers by version: " + ", ".join(f"{v}: {n}" for v, n in sorted(versions.items())))
        print("server RSS (MB): " + "   ".join(f"{k} {v:.0f}" for k, v in rss.items()))
        return 0 if stats["failed valid"] == 0 and stats["wrong status"] == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
