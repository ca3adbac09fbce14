#!/usr/bin/env python3
"""Serving latency and throughput: the direct signature call vs. the real server over REST and gRPC.

    .venv/bin/python bench/serve_latency.py [--model-dir EXPORT] [--requests 300] [--concurrency 16]
                                            [--seconds 8] [--max-batch-size 32] [--batch-timeout-micros 2000]

Prints, in one run:
- p50/p99 latency of one instance (batch 1, the `embeddings` signature: 100 floats -> a PNG) for (a) the
  SavedModel's signature called directly in process (tensors prepared beforehand: the graph alone), (b) REST
  (`python -m serving.server`, keep-alive HTTP/1.1, JSON in and out), (c) gRPC (`PredictionServiceStub`, tensors
  made with `tf.make_tensor_proto` beforehand), each with its ratio to (a) (goal: REST <= 1.3x);
- throughput (instances/s) of `--concurrency` client threads sending batch-1 REST requests for `--seconds`, to a
  server without and then with `--enable-batching` (goal: >= 3x with batching), and the same over gRPC.
The model is an untrained DCGAN-sized VAE-GAN exported by `trainer.sample_exports` (the real networks and
signatures at 64 px, 64 filters: the decoder is dense + 4 transposed convolutions to 64x64, PNG-encoded; `--tiny`:
16 px, 4 filters), unless `--model-dir`. Client threads run in this process, on the same CPUs as the server:
numbers are whatever the machine gives while other work runs on it.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)) * 1e3, float(np.percentile(samples, 99)) * 1e3


class Server:
    def __init__(self, base_path: str, log_path: str, *extra: str):
        self.rest, self.grpc = free_port(), free_port()
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "serving.server", "--model-name", "bench",
                                      "--model-base-path", base_path, "--rest-api-port", str(self.rest),
                                      "--port", str(self.grpc), "--file-system-poll-wait-seconds", "0", *extra],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.rest}/readyz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def rest_caller(port: int, body: bytes):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def call():
        connection.request("POST", "/v1/models/bench:predict", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload[:200])
        json.loads(payload)
    return call


def grpc_caller(port: int, embedding: np.ndarray):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "bench"
    request.inputs["embeddings"].CopyFrom(tf.make_tensor_proto(embedding))
    request.inputs["key"].CopyFrom(tf.make_tensor_proto(["0"]))
    return lambda: stub.Predict(request, timeout=60)


def interleaved_latencies(calls: dict, count: int, warmup: int = 20) -> dict[str, list[float]]:
    """Time each call `count` times, round-robin, so background load hits every row alike."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    out = {name: [] for name in calls}
    for _ in range(count):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            out[name].append(time.perf_counter() - start)
    return out


def throughput(make_call, threads: int, seconds: float) -> tuple[int, float]:
    """(requests done, seconds) of `threads` client threads calling as fast as they can for `seconds`."""
    callers = [make_call() for _ in range(threads)]
    for call in callers:
        call()
    stop, counts, errors = threading.Event(), [0] * threads, []

    def loop(i):
        while not stop.is_set():
            try:
                callers[i]()
            except Exception as err:  # noqa: BLE001
                errors.append(err)
                return
            counts[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[0]}")
    return sum(counts), time.perf_counter() - start


def alternating_throughput(makers: dict, threads: int, seconds: float, rounds: int = 4) -> dict[str, float]:
    """Instances/s of each maker, measured in `rounds` alternating windows of `seconds / rounds`."""
    done = {name: [0, 0.0] for name in makers}
    for _ in range(rounds):
        for name, make_call in makers.items():
            count, elapsed = throughput(make_call, threads, seconds / rounds)
            done[name][0] += count
            done[name][1] += elapsed
    return {name: count / elapsed for name, (count, elapsed) in done.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="a SavedModel with an `embeddings` signature (default: untrained)")
    parser.add_argument("--tiny", action="store_true",
                        help="use the tiny untrained model (16x16 images: per-request overhead dominates)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-micros", type=int, default=2000)
    args = parser.parse_args()

    import tensorflow as tf

    from artifacts.export import latest_export
    from serving.server import core

    work = tempfile.mkdtemp(prefix="genart-serve-bench-")
    try:
        base = os.path.join(work, "bench")
        if args.model_dir:
            shutil.copytree(latest_export(args.model_dir), os.path.join(base, "1"))
        else:
            from trainer.sample_exports import export_untrained

            export_untrained("vaegan", os.path.join(base, "1"), seed=1, dcgan_sized=not args.tiny)
        model = core.load_model(os.path.join(base, "1"), "bench", 1)
        signature = model.signature("embeddings")
        latent = signature.inputs["embeddings"].shape[1]
        embedding = np.random.default_rng(0).normal(size=(1, latent)).astype(np.float32)
        tensors = {"embeddings": tf.constant(embedding), "key": tf.constant(["0"])}
        body = json.dumps({"instances": [{"embeddings": [float(x) for x in embedding[0]], "key": "0"}]}).encode()
        untrained = "tiny" if args.tiny else "DCGAN-sized"
        print(f"model: {args.model_dir or f'untrained {untrained} VAE-GAN (trainer.sample_exports)'}; "
              f"{os.cpu_count()} CPUs; {args.requests} requests per latency row", flush=True)
        plain = Server(base, os.path.join(work, "plain.log"))
        batched = Server(base, os.path.join(work, "batched.log"), "--enable-batching", "--max-batch-size",
                         str(args.max_batch_size), "--batch-timeout-micros", str(args.batch_timeout_micros))
        try:
            samples = interleaved_latencies({
                "(a) direct signature call": lambda: signature.function(**tensors),
                "(b) REST": rest_caller(plain.rest, body),
                "(c) gRPC": grpc_caller(plain.grpc, embedding)}, args.requests)
            print("\nlatency at batch 1            p50 ms    p99 ms   p50 vs (a)  p99 vs (a)")
            base_p50, base_p99 = percentiles(samples["(a) direct signature call"])
            for name, values in samples.items():
                p50, p99 = percentiles(values)
                print(f"{name:<28}{p50:8.2f}  {p99:8.2f}   {p50 / base_p50:8.2f}x  {p99 / base_p99:8.2f}x", flush=True)
            del model, signature, tensors
            rates = alternating_throughput({
                "REST off": lambda: rest_caller(plain.rest, body), "REST on": lambda: rest_caller(batched.rest, body),
                "gRPC off": lambda: grpc_caller(plain.grpc, embedding),
                "gRPC on": lambda: grpc_caller(batched.grpc, embedding)}, args.concurrency, args.seconds)
        finally:
            plain.stop()
            batched.stop()
        print(f"\nthroughput, {args.concurrency} concurrent clients, batch-1 requests, {args.seconds:g}s each in "
              f"4 alternating windows (batching: max {args.max_batch_size}, timeout {args.batch_timeout_micros} us)")
        print("                 batching off    batching on     gain")
        for name in ("REST", "gRPC"):
            off, on = rates[f"{name} off"], rates[f"{name} on"]
            print(f"{name:<17}{off:8.1f} inst/s {on:8.1f} inst/s {on / off:7.2f}x")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
