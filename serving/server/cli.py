"""`python -m serving.server`: TF Serving's REST and gRPC APIs over genart's model registry (INTERFACE.md §5).

    python -m serving.server [--model-config-file F | --model-name NAME --model-base-path DIR]
                             [--rest-api-port 8501] [--port 8500] [--host 127.0.0.1]
                             [--enable-batching --max-batch-size 32 --batch-timeout-micros 2000]
                             [--file-system-poll-wait-seconds 1] [--max-request-bytes 16777216]
                             [--enable-cors] [--auth-token-file F]
                             [--rest-api-timeout-in-ms 30000] [--max-concurrent-requests 64]
                             [--max-enqueued-batches 100] [--max-image-pixels 16777216] [--max-request-pixels N]
                             [--max-num-load-retries 5] [--load-retry-interval-micros 60000000]

Defaults serve `$GENART_HOME/models/models.config` (if it does not exist yet, the server starts empty and picks
it up once `create_model.sh` writes it). TF Serving's underscore spellings are accepted (`--rest_api_port`,
`--model_config_file`, `--enable_batching=true`...). A port of 0 disables that API. Binds 127.0.0.1 unless
`--host` says otherwise. The limits (INTERFACE.md section 13) bound every request's memory and time; each answers
a clear 4xx/503/504. SIGINT/SIGTERM: both APIs stop accepting at once, then both finish their in-flight requests;
unload, exit 0.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from artifacts import console, model_tree, storage
from artifacts.naming import validate_served_name
from serving.server.limits import REQUEST_PIXELS_FACTOR, Limits

if TYPE_CHECKING:  # the manager imports TensorFlow: `--help` and flag errors must not wait for it
    from serving.server.manager import ModelManager

log = logging.getLogger("serving.server")
EXAMPLES = """Examples:
  python -m serving.server --model-config-file workspace/models/models.config --rest-api-port 8501 --port 8500
  python -m serving.server --model-name faces --model-base-path workspace/models/faces --enable-batching"""


def _bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)

    def add(name: str, **kwargs):
        spellings = [name] + (["--" + name[2:].replace("-", "_")] if "-" in name[2:] else [])
        parser.add_argument(*spellings, dest=name[2:].replace("-", "_"), **kwargs)

    def switch(name: str, help_text: str):
        add(name, nargs="?", const=True, default=False, type=_bool, metavar="BOOL", help=help_text)

    add("--model-config-file", help="TF Serving models.config (default: $GENART_HOME/models/models.config)")
    add("--model-name", help="serve one model under this name (with --model-base-path)")
    add("--model-base-path", help="dir of numbered SavedModel versions of --model-name")
    add("--rest-api-port", type=int, default=8501, help="REST port (0: no REST API; default 8501)")
    add("--port", type=int, default=8500, help="gRPC port (0: no gRPC API; default 8500)")
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    switch("--enable-batching", "merge concurrent requests into one graph call")
    add("--max-batch-size", type=int, default=32, help="instances per merged batch (default 32)")
    add("--batch-timeout-micros", type=int, default=2000, help="longest wait for a batch to fill (default 2000)")
    add("--num-batch-threads", type=int, default=None, help="batch worker threads per signature")
    add("--file-system-poll-wait-seconds", type=float, default=1.0,
        help="seconds between polls for new versions (0: once; negative: never; default 1)")
    add("--max-request-bytes", type=int, default=16 * 1024 * 1024, help="largest REST body (default 16 MiB)")
    switch("--enable-cors", "allow cross-origin REST calls (Access-Control-Allow-Origin: *)")
    add("--auth-token-file", help="require 'Authorization: Bearer <token in this file>' (REST and gRPC)")
    defaults = Limits()
    add("--rest-api-timeout-in-ms", type=int, default=30000,
        help="deadline of a REST call, reading included (0: none), and the longest a gRPC call waits; 504 / "
             "DEADLINE_EXCEEDED (default 30000)")
    add("--max-concurrent-requests", type=int, default=defaults.max_concurrent_requests,
        help="predict calls served at once, REST and gRPC together; as many more wait, then 503 / UNAVAILABLE "
             "(default 64)")
    add("--max-enqueued-batches", type=int, default=defaults.max_enqueued_batches,
        help="batches queued per signature before 503 / UNAVAILABLE (default 100)")
    add("--max-image-pixels", type=int, default=defaults.max_image_pixels,
        help="largest decoded image, all frames of an animation counted (default 16777216)")
    add("--max-request-pixels", type=int, default=None,
        help=f"decoded pixels of all of a request's images (default {REQUEST_PIXELS_FACTOR}x --max-image-pixels)")
    add("--max-num-load-retries", type=int, default=defaults.max_num_load_retries,
        help="retries of a failed version load (default 5)")
    add("--load-retry-interval-micros", type=int, default=60_000_000,
        help="wait between load retries (default 60000000)")
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    args = parser.parse_args(argv)
    if bool(args.model_name) != bool(args.model_base_path):
        parser.error("--model-name and --model-base-path go together")
    if args.model_name and args.model_config_file:
        parser.error("give either --model-config-file or --model-name/--model-base-path, not both")
    if args.model_name:
        try:
            validate_served_name(args.model_name, "model name")
        except ValueError as err:
            parser.error(str(err))
    for port in ("rest_api_port", "port"):
        if not 0 <= getattr(args, port) <= 65535:
            parser.error(f"--{port.replace('_', '-')} must be between 0 and 65535")
    if args.max_batch_size < 1 or args.batch_timeout_micros < 0 or args.max_request_bytes < 1:
        parser.error("--max-batch-size and --max-request-bytes must be >= 1, --batch-timeout-micros >= 0")
    try:
        args.limits = limits_from(args)
    except ValueError as err:
        parser.error(str(err))
    for flag, path in (("--model-config-file", args.model_config_file), ("--model-base-path", args.model_base_path),
                       ("--auth-token-file", args.auth_token_file)):
        if path and not storage.exists(path):
            parser.error(f"{flag} {path} not found")
    return args


def limits_from(args: argparse.Namespace) -> Limits:
    """The server's `Limits` from its flags."""
    if args.rest_api_timeout_in_ms < 0 or args.load_retry_interval_micros < 0:
        raise ValueError("--rest-api-timeout-in-ms and --load-retry-interval-micros must be >= 0")
    pixels = args.max_image_pixels
    return Limits(max_image_pixels=pixels,
                  max_request_pixels=args.max_request_pixels or REQUEST_PIXELS_FACTOR * max(1, pixels),
                  max_concurrent_requests=args.max_concurrent_requests, max_enqueued_batches=args.max_enqueued_batches,
                  request_timeout_s=args.rest_api_timeout_in_ms / 1000 or None,
                  max_num_load_retries=args.max_num_load_retries,
                  load_retry_interval_s=args.load_retry_interval_micros / 1e6)


def _read_token(path: str | None) -> str | None:
    if not path:
        return None
    token = storage.read_text(path).strip()
    if not token:
        raise ValueError(f"auth token file {path} is empty")
    return token


def build_manager(args: argparse.Namespace, on_change=None) -> ModelManager:
    from serving.server.batching import BatchingOptions
    from serving.server.manager import ModelManager
    from serving.server.model_config import ModelSpec

    limits = getattr(args, "limits", None) or limits_from(args)
    extra = {"num_batch_threads": args.num_batch_threads} if args.num_batch_threads else {}
    batching = BatchingOptions(args.max_batch_size, args.batch_timeout_micros, merge=bool(args.enable_batching),
                               max_enqueued_batches=limits.max_enqueued_batches, **extra)
    common = dict(poll_seconds=args.file_system_poll_wait_seconds, batching=batching, limits=limits,
                  on_change=on_change)
    if args.model_name:
        base = args.model_base_path if storage.is_gcs(args.model_base_path) else os.path.abspath(args.model_base_path)
        return ModelManager([ModelSpec(args.model_name, base)], **common)
    path = args.model_config_file or model_tree.models_config_path()
    if not storage.exists(path):
        if args.model_config_file:
            raise FileNotFoundError(f"model config file {path} not found")
        log.warning("%s does not exist yet: serving no model until create_model.sh writes it", path)
    return ModelManager(config_path=path, **common)


DRAIN_SECONDS = 10.0  # how long in-flight requests get to finish after SIGTERM (each protocol)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.import_tensorflow(console.set_verbose(argv))
    from serving.server.grpc_api import GrpcServer
    from serving.server.http_server import build_server, listen
    from serving.server.limits import Slots
    from serving.server.rest import create_app

    try:
        token = _read_token(args.auth_token_file)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    grpc_server: GrpcServer | None = None
    slots = Slots(args.limits.max_concurrent_requests)  # one pool for both protocols
    try:
        manager = build_manager(args, on_change=lambda: grpc_server and grpc_server.update_health())
        rest_socket = listen(args.host, args.rest_api_port) if args.rest_api_port else None
        if args.port:
            grpc_server = GrpcServer(manager, args.host, args.port, auth_token=token, slots=slots)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rest = None
    if rest_socket is not None:
        app = create_app(manager, max_request_bytes=args.max_request_bytes, enable_cors=args.enable_cors,
                         auth_token=token, slots=slots)
        rest = build_server(app, args.limits.request_timeout_s)
    stopping, grpc_drained = threading.Event(), []

    def _stop(signum, frame):
        if stopping.is_set():  # a second signal: stop waiting for open connections
            log.warning("received %s again: forcing shutdown", signal.Signals(signum).name)
            if rest is not None:
                rest.force_exit = True
            return
        log.info("received %s: no new requests; finishing in-flight ones", signal.Signals(signum).name)
        stopping.set()
        if rest is not None:  # both protocols stop accepting now; each drains its own in-flight requests
            rest.should_exit = True
        if grpc_server is not None:
            grpc_drained.append(grpc_server.stop_accepting(DRAIN_SECONDS))

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    manager.start()
    if grpc_server is not None:
        grpc_server.start()
        log.info("gRPC API listening on %s:%d", args.host, grpc_server.port)
    if rest is not None:
        log.info("REST API listening on http://%s:%d", args.host, rest_socket.getsockname()[1])
        asyncio.run(rest.serve(sockets=[rest_socket]))
    else:
        while not stopping.wait(0.5):
            pass
    if grpc_server is not None and not grpc_drained:  # REST stopped on its own
        grpc_drained.append(grpc_server.stop_accepting(DRAIN_SECONDS))
    for drained in grpc_drained:
        drained.wait(DRAIN_SECONDS + 1)
    manager.stop()
    log.info("stopped")
    return 0
