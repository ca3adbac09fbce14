"""Prometheus metrics of the server, in the text exposition format (no client library needed).

- `genart_requests_total{protocol,model,signature,code}` — counter of predict requests (HTTP status or gRPC code;
  model "-" for names the server does not know, so made-up names add no series);
- `genart_request_latency_seconds{protocol,model,signature}` — histogram of predict latency;
- `genart_batch_size{model,signature}` — histogram of instances per graph call (merged batches included);
- `genart_model_version_state{model,version,state}` — 1 for each loaded or known version's state;
- `genart_requests_in_flight{protocol}` — predict requests being served now (waiting for a slot included).

Both protocol adapters time and record their predict requests with one helper, `Metrics.timed_request`.
"""
from __future__ import annotations

import bisect
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# protocol -> (code of a success, attribute of an escaping exception that holds its code, code of a server fault);
# PredictionError carries both attributes, the REST adapter's HttpError its `http_status`
PROTOCOL_CODES = {"rest": (200, "http_status", 500), "grpc": ("OK", "grpc_code", "INTERNAL")}


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple, values: tuple, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple):
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[tuple, float] = {}
        self.lock = threading.Lock()

    def inc(self, *label_values, amount: float = 1.0) -> None:
        with self.lock:
            self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self.lock:
            items = sorted(self.values.items())
        for values, count in items:
            yield f"{self.name}{_labels(self.labels, values)} {_number(count)}"


class Histogram:
    def __init__(self, name: str, help_text: str, labels: tuple, buckets: tuple):
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, tuple(buckets)
        self.series: dict[tuple, list] = {}  # values -> [bucket counts..., sum, count]
        self.lock = threading.Lock()

    def observe(self, value: float, *label_values) -> None:
        with self.lock:
            series = self.series.setdefault(label_values, [0] * len(self.buckets) + [0.0, 0])
            index = bisect.bisect_left(self.buckets, value)
            if index < len(self.buckets):
                series[index] += 1
            series[-2] += value
            series[-1] += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self.lock:
            items = sorted((k, list(v)) for k, v in self.series.items())
        for values, series in items:
            cumulative = 0
            for bound, count in zip(self.buckets, series):
                cumulative += count
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.labels, values, le)} {cumulative}"
            le = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.labels, values, le)} {series[-1]}"
            yield f"{self.name}_sum{_labels(self.labels, values)} {_number(series[-2])}"
            yield f"{self.name}_count{_labels(self.labels, values)} {series[-1]}"


@dataclass
class RequestLabels:
    """What an adapter learns while serving a request: the signature it ran (set it once known)."""
    signature: str = "-"


class Metrics:
    """The server's metrics; `states` (optional) yields (model, version, state) for the state gauge, and
    `known_model` (optional) says which model names are real (others are recorded as "-")."""

    def __init__(self, states: Callable[[], Iterable[tuple]] | None = None,
                 known_model: Callable[[str], bool] | None = None):
        self.requests = Counter("genart_requests_total", "Requests by protocol, model, signature and status code.",
                                ("protocol", "model", "signature", "code"))
        self.latency = Histogram("genart_request_latency_seconds", "Request latency in seconds.",
                                 ("protocol", "model", "signature"), LATENCY_BUCKETS)
        self.batch_size = Histogram("genart_batch_size", "Instances per graph call (after batching).",
                                    ("model", "signature"), BATCH_BUCKETS)
        self.states, self.known_model = states, known_model
        self.in_flight = {protocol: 0 for protocol in PROTOCOL_CODES}
        self._in_flight_lock = threading.Lock()

    def _count_in_flight(self, protocol: str, step: int) -> None:
        with self._in_flight_lock:
            self.in_flight[protocol] += step

    def record_request(self, protocol: str, model: str, signature: str, code, seconds: float) -> None:
        if self.known_model is not None and not self.known_model(model):
            model = "-"  # made-up names add no series
        self.requests.inc(protocol, model, signature, str(code))
        self.latency.observe(seconds, protocol, model, signature)

    @contextlib.contextmanager
    def timed_request(self, protocol: str, model: str) -> Iterator[RequestLabels]:
        """Time one predict request of `protocol` ("rest" or "grpc") and record it when the block is left: its
        code is the success code, or the one the escaping exception carries (see PROTOCOL_CODES), else a fault."""
        ok, attribute, fault = PROTOCOL_CODES[protocol]
        labels, started, code = RequestLabels(), time.perf_counter(), fault
        self._count_in_flight(protocol, 1)
        try:
            yield labels
            code = ok
        except BaseException as err:
            code = getattr(err, attribute, fault)
            raise
        finally:
            self._count_in_flight(protocol, -1)
            self.record_request(protocol, model, labels.signature or "-", code, time.perf_counter() - started)

    def record_batch(self, model: str, signature: str, size: int) -> None:
        self.batch_size.observe(size, model, signature)

    def render(self) -> str:
        lines = [*self.requests.render(), *self.latency.render(), *self.batch_size.render(),
                 "# HELP genart_requests_in_flight Predict requests being served now.",
                 "# TYPE genart_requests_in_flight gauge"]
        with self._in_flight_lock:
            lines += [f'genart_requests_in_flight{{protocol="{p}"}} {n}' for p, n in sorted(self.in_flight.items())]
        if self.states is not None:
            lines += ["# HELP genart_model_version_state 1 for the state each model version is in.",
                      "# TYPE genart_model_version_state gauge"]
            lines += [f"genart_model_version_state{_labels(('model', 'version', 'state'), row)} 1"
                      for row in sorted(self.states())]
        return "\n".join(lines) + "\n"
