"""serving.server.metrics: the one request timer both protocol adapters use, and the text exposition."""
from __future__ import annotations

import pytest

from serving.server.metrics import Metrics


class Refused(Exception):
    http_status, grpc_code = 404, "NOT_FOUND"


def _served(metrics: Metrics, protocol: str, model: str, error: Exception | None = None, signature: str = "") -> None:
    with metrics.timed_request(protocol, model) as labels:
        labels.signature = signature
        if error is not None:
            raise error


@pytest.mark.parametrize("protocol, ok, refused, fault", [("rest", "200", "404", "500"),
                                                          ("grpc", "OK", "NOT_FOUND", "INTERNAL")])
def test_timed_request_records_each_outcome_with_the_protocols_code(protocol, ok, refused, fault):
    metrics = Metrics(known_model=lambda name: name == "faces")
    _served(metrics, protocol, "faces", signature="embeddings")
    with pytest.raises(Refused):
        _served(metrics, protocol, "made_up", Refused())
    with pytest.raises(ZeroDivisionError):
        _served(metrics, protocol, "faces", ZeroDivisionError())
    assert metrics.requests.values == {(protocol, "faces", "embeddings", ok): 1,
                                       (protocol, "-", "-", refused): 1,
                                       (protocol, "faces", "-", fault): 1}
    assert sum(series[-1] for series in metrics.latency.series.values()) == 3
    text = metrics.render()
    assert f'genart_requests_total{{protocol="{protocol}",model="faces",signature="embeddings",code="{ok}"}} 1' in text
