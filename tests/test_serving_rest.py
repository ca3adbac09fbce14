"""The REST API in process (FastAPI TestClient) on real exports of untrained networks (version N = seed N): error
contract table, fuzzing, status/metadata JSON, labels, auth, CORS, 413, readyz, metrics, batching."""
from __future__ import annotations

import base64
import json
import threading

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import build_registry, embedding_lines, image_lines, jpeg_bytes, loaded_manager, which_version

from serving.server.batching import BatchingOptions
from serving.server.manager import ModelManager
from serving.server.model_config import ModelSpec
from serving.server.rest import create_app

TOKEN = "s3cret-token"
MAX_BYTES = 256 * 1024
FACES_EXTRA = ('    model_version_policy { all {} }\n'
               '    version_labels { key: "stable" value: 1 }\n    version_labels { key: "canary" value: 2 }\n')


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    home = tmp_path_factory.mktemp("rest-home")
    config = build_registry(str(home), {"faces": ("vaegan", [1, 2]), "cyc": ("cyclegan", [1])},
                               extra={"faces": FACES_EXTRA})
    with loaded_manager(config) as manager:
        yield manager


@pytest.fixture(scope="module")
def client(manager):
    with TestClient(create_app(manager, max_request_bytes=MAX_BYTES), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def secured(manager):
    app = create_app(manager, max_request_bytes=MAX_BYTES, auth_token=TOKEN, enable_cors=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _emb(i=0):
    return json.loads(embedding_lines(i + 1)[i])


def _img(i=0):
    return json.loads(image_lines(i + 1)[i])


FLOATS = [0.25] * 100
B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
PREDICT = "/v1/models/faces:predict"

# (id, method, path, body (dict -> JSON, bytes/str -> raw), headers, status, fragments the error must contain)
ERROR_TABLE = [
    ("bad-json", "POST", PREDICT, b"{not json", {}, 400, ["JSON Parse error"]),
    ("empty-body", "POST", PREDICT, b"", {}, 400, ["JSON Parse error"]),
    ("body-not-object", "POST", PREDICT, [1, 2], {}, 400, ["must be a JSON object"]),
    ("neither-key", "POST", PREDICT, {"signature_name": "embeddings"}, {}, 400, ["Missing 'inputs' or 'instances'"]),
    ("both-keys", "POST", PREDICT, {"instances": [], "inputs": {}}, {}, 400, ["exactly one of 'inputs' or 'instances'"]),
    ("instances-not-list", "POST", PREDICT, {"instances": {"embeddings": FLOATS}}, {}, 400, ["must be a list"]),
    ("empty-instances", "POST", PREDICT, {"instances": []}, {}, 400, ["empty instances"]),
    ("wrong-dims", "POST", PREDICT, {"instances": [{"embeddings": [0.1] * 99}]}, {}, 400,
     ["instance 0", "'embeddings'", "expected 100 values, got 99"]),
    ("wrong-rank", "POST", PREDICT, {"instances": [{"embeddings": [FLOATS]}]}, {}, 400, ["shape [1, 100]"]),
    ("string-in-floats", "POST", PREDICT, {"instances": [{"embeddings": ["x"] * 100}]}, {}, 400,
     ["'embeddings'", "is not a number"]),
    ("bool-in-floats", "POST", PREDICT, {"instances": [{"embeddings": [False] * 100}]}, {}, 400, ["not a number"]),
    ("nan-token", "POST", PREDICT, b'{"instances": [{"embeddings": [NaN' + b", 0.1" * 99 + b"]}]}", {}, 400,
     ["'embeddings'", "non-finite value NaN"]),
    ("infinity-token", "POST", PREDICT, b'{"instances": [{"embeddings": [-Infinity' + b", 0.1" * 99 + b"]}]}",
     {}, 400, ["non-finite value -Infinity"]),
    ("float-overflow", "POST", PREDICT, {"instances": [{"embeddings": [1e300] * 100}]}, {}, 400, ["out of range"]),
    ("ragged", "POST", PREDICT, {"instances": [{"embeddings": [[0.1], 0.2]}]}, {}, 400, ["ragged"]),
    ("bad-b64", "POST", PREDICT, {"instances": [{"image_bytes": {"b64": "***"}}]}, {}, 400,
     ["'image_bytes'", "not valid base64"]),
    ("b64-not-image", "POST", PREDICT, {"instances": [{"image_bytes": {"b64": B64(b"plain text")}}]}, {}, 400,
     ["instance 0", "not an encoded image"]),
    ("truncated-jpeg", "POST", PREDICT, {"instances": [_img(0), {"image_bytes": {"b64": B64(jpeg_bytes()[:300])}}]},
     {}, 400, ["instance 1", "'image_bytes'", "undecodable JPEG"]),
    ("b64-extra-key", "POST", PREDICT, {"instances": [{"image_bytes": {"b64": B64(b"x"), "x": 1}}]}, {}, 400,
     ['exactly one key "b64"']),
    ("unknown-input", "POST", PREDICT, {"instances": [{"embeddings": FLOATS, "colour": "red"}]}, {}, 400,
     ["input 'colour'", "unknown input"]),
    ("mixed-instances", "POST", PREDICT, {"instances": [{"embeddings": FLOATS}, _img(0)]}, {}, 400,
     ["instance 1", "input 'image_bytes'", "unknown input"]),
    ("bad-key-type", "POST", PREDICT, {"instances": [{"embeddings": FLOATS, "key": [1, 2]}]}, {}, 400,
     ["input 'key'", "expected a single value"]),
    ("unknown-signature", "POST", PREDICT, {"signature_name": "nope", "instances": [{"embeddings": FLOATS}]},
     {}, 400, ['"nope" not found in signature def']),
    ("signature-not-string", "POST", PREDICT, {"signature_name": 3, "instances": [{"embeddings": FLOATS}]}, {},
     400, ["'signature_name' must be a string"]),
    ("columnar-sizes", "POST", PREDICT, {"inputs": {"embeddings": [FLOATS, FLOATS], "key": ["a"]}}, {}, 400,
     ["different numbers of instances"]),
    ("columnar-missing", "POST", PREDICT, {"inputs": {"key": ["a"]}}, {}, 400, ["Missing named input: embeddings"]),
    ("columnar-not-list", "POST", PREDICT, {"inputs": {"embeddings": 3}}, {}, 400,
     ["input 'embeddings'", "expected a list"]),
    ("unknown-model", "POST", "/v1/models/nope:predict", {"instances": [{"embeddings": FLOATS}]}, {}, 404,
     ["Servable not found", "nope"]),
    ("unknown-version", "POST", "/v1/models/faces/versions/9:predict", {"instances": [{"embeddings": FLOATS}]},
     {}, 404, ["Specific(faces, 9)"]),
    ("unknown-label", "POST", "/v1/models/faces/labels/beta:predict", {"instances": [{"embeddings": FLOATS}]},
     {}, 404, ["Unrecognized servable version label: beta"]),
    ("version-zero", "POST", "/v1/models/faces/versions/0:predict", {"instances": []}, {}, 400, ["invalid version"]),
    ("version-text", "GET", "/v1/models/faces/versions/latest", None, {}, 400, ["invalid version"]),
    ("tf-serving-name", "POST", "/v1/models/9-lives:predict", {"instances": []}, {}, 404, ["Servable not found"]),
    ("traversal", "POST", "/v1/models/..%2F..%2Fetc:predict", {"instances": []}, {}, 400, ["Malformed request"]),
    ("traversal-status", "GET", "/v1/models/faces/versions/%2E%2E", None, {}, 400, ["invalid version"]),
    ("get-predict", "GET", PREDICT, None, {}, 400, ["Malformed request: GET"]),
    ("classify", "POST", "/v1/models/faces:classify", {"examples": []}, {}, 501, ["classify is not supported"]),
    ("unknown-path", "GET", "/v2/whatever", None, {}, 404, ["Not found"]),
    ("wrong-method", "DELETE", "/healthz", None, {}, 404, ["Not found"]),
    ("options-no-cors", "OPTIONS", PREDICT, None, {}, 405, ["Method not allowed"]),
    ("status-unknown-model", "GET", "/v1/models/nope", None, {}, 404, ["Could not find any versions of model nope"]),
    ("status-unknown-version", "GET", "/v1/models/faces/versions/7", None, {}, 404, ["version 7 of model faces"]),
    ("metadata-unknown-label", "GET", "/v1/models/faces/labels/x/metadata", None, {}, 404, ["label: x"]),
    ("oversize", "POST", PREDICT, b'{"instances": ["' + b"a" * (MAX_BYTES + 10) + b'"]}', {}, 413,
     ["larger than", str(MAX_BYTES)]),
    ("bad-content-length", "POST", PREDICT, b"{}", {"content-length": "x"}, 400, ["Content-Length"]),
]


def _send(client, method, path, body, headers):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    return client.request(method, path, content=body, headers=headers)


@pytest.mark.parametrize("case", ERROR_TABLE, ids=[c[0] for c in ERROR_TABLE])
def test_error_contract(client, case):
    _, method, path, body, headers, status, fragments = case
    response = _send(client, method, path, body, headers)
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error"}, payload
    for fragment in fragments:
        assert fragment in payload["error"], payload["error"]


AUTH_TABLE = [
    ("missing-token", {}, "missing bearer token"),
    ("wrong-token", {"Authorization": "Bearer nope"}, "invalid bearer token"),
    ("wrong-scheme", {"Authorization": f"Basic {TOKEN}"}, "invalid bearer token"),
]


@pytest.mark.parametrize("case", AUTH_TABLE, ids=[c[0] for c in AUTH_TABLE])
def test_auth_required(secured, case):
    _, headers, fragment = case
    for method, path in (("POST", PREDICT), ("GET", "/v1/models/faces"), ("GET", "/v1/models"),
                         ("GET", "/monitoring/prometheus/metrics")):
        response = secured.request(method, path, content=b'{"instances": [[0]]}', headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"error": response.json()["error"]} and fragment in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_auth_token_and_cors(secured):
    ok = secured.post(PREDICT, json={"instances": [_emb()]}, headers={"Authorization": f"Bearer {TOKEN}",
                                                                       "Origin": "http://example.org"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "*"
    assert secured.get("/healthz").status_code == 200  # probes need no token
    preflight = secured.options(PREDICT, headers={"Origin": "http://example.org",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    denied = secured.post(PREDICT, json={}, headers={"Origin": "http://example.org"})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "*"


def test_predict_row_columnar_with_and_without_signature(client):
    rows = [_emb(0), _emb(1)]
    for body in ({"instances": rows}, {"signature_name": "embeddings", "instances": rows},
                 {"inputs": {"embeddings": [r["embeddings"] for r in rows], "key": ["0", "1"]}},
                 {"signature_name": "serving_default", "inputs": {"embeddings": [r["embeddings"] for r in rows]}}):
        response = client.post("/v1/models/faces/versions/1:predict", json=body)
        assert response.status_code == 200, response.text
        out = response.json()
        keys = out["outputs"]["key"] if "inputs" in body else [p["key"] for p in out["predictions"]]
        assert keys == ["0", "1"]
    images = [_img(0), _img(1)]
    by_name = client.post(PREDICT, json={"instances": images}).json()["predictions"]
    named = client.post(PREDICT, json={"signature_name": "image_bytes", "instances": images}).json()["predictions"]
    assert by_name == named and which_version(by_name[0]["embeddings"], jpeg_bytes(0)) == 2  # faces' latest: 2
    translated = client.post("/v1/models/cyc:predict", json={"instances": images}).json()["predictions"]
    assert base64.b64decode(translated[0]["image_bytes"]["b64"]).startswith(b"\x89PNG")


def test_labels_and_versions_pick_the_right_model(client):
    image = [_img()]
    for path, version in (("/v1/models/faces/labels/stable:predict", 1), ("/v1/models/faces/labels/canary:predict", 2),
                          ("/v1/models/faces/versions/1:predict", 1), ("/v1/models/FACES:predict", None)):
        response = client.post(path, json={"instances": image})
        if version is None:  # names are case-sensitive, the /v1 prefix is not
            assert response.status_code == 404
            continue
        assert which_version(response.json()["predictions"][0]["embeddings"], jpeg_bytes(0)) == version


def test_status_metadata_and_models_json(client):
    status = client.get("/v1/models/faces").json()
    assert status == {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in (1, 2)]}
    assert client.get("/v1/models/faces/versions/2").json()["model_version_status"][0]["version"] == "2"
    assert client.get("/v1/models/faces/labels/stable").json()["model_version_status"][0]["version"] == "1"
    metadata = client.get("/v1/models/faces/metadata").json()
    assert metadata["model_spec"] == {"name": "faces", "signature_name": "", "version": "2"}
    sig_map = metadata["metadata"]["signature_def"]
    assert sig_map["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    emb = sig_map["signature_def"]["embeddings"]
    assert emb["method_name"] == "tensorflow/serving/predict"
    assert emb["inputs"]["embeddings"]["dtype"] == "DT_FLOAT"
    assert emb["inputs"]["embeddings"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}, {"size": "100", "name": ""}]
    assert emb["outputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert {"serving_default", "embeddings", "image_bytes"} <= set(sig_map["signature_def"])
    assert client.get("/v1/models/faces/versions/1/metadata").json()["model_spec"]["version"] == "1"
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["cyc", "faces"]
    assert models[1]["labels"] == {"canary": "2", "stable": "1"}


def test_health_ready_and_metrics(client, tmp_path):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post(PREDICT, json={"instances": [_emb()]})
    text = client.get("/monitoring/prometheus/metrics").text
    assert 'genart_requests_total{protocol="rest",model="faces",signature="embeddings",code="200"}' in text
    assert 'genart_request_latency_seconds_bucket{protocol="rest",model="faces",signature="embeddings",le="+Inf"}' \
        in text
    assert 'genart_batch_size_count{model="faces",signature="embeddings"}' in text
    assert 'genart_model_version_state{model="faces",version="2",state="AVAILABLE"} 1' in text
    # a configured model without a loadable version: not ready, and its predictions are 503
    pending = ModelManager([ModelSpec("pending", str(tmp_path))], poll_seconds=-1)
    pending.poll_once()
    with TestClient(create_app(pending)) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "pending" in ready.json()["error"]
        response = c.post("/v1/models/pending:predict", json={"instances": [_emb()]})
        assert response.status_code == 503 and "no available version" in response.json()["error"]
    pending.stop()


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=True),
                        st.text(max_size=12), st.sampled_from(["", "0", "embeddings", "b64"]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(["b64", "embeddings", "image_bytes", "key", "x"]),
                                                 inner, max_size=3)), max_leaves=20)
INSTANCE = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({}, optional={"embeddings": st.one_of(st.lists(st.floats(), min_size=99, max_size=101),
                                                                JSON_VALUES),
                                        "image_bytes": st.one_of(st.fixed_dictionaries({"b64": st.text(max_size=20)}),
                                                                 JSON_VALUES),
                                        "key": JSON_VALUES}))
BODIES = st.one_of(
    st.binary(max_size=60),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={"instances": st.one_of(st.lists(INSTANCE, max_size=3), JSON_VALUES),
                                        "inputs": st.one_of(st.dictionaries(st.sampled_from(
                                            ["embeddings", "image_bytes", "key"]), JSON_VALUES), JSON_VALUES),
                                        "signature_name": st.one_of(st.sampled_from(
                                            ["embeddings", "image_bytes", "serving_default", ""]), JSON_VALUES)}
                          ).map(lambda v: json.dumps(v).encode()),
)
PATHS = st.sampled_from([PREDICT, "/v1/models/cyc:predict", "/v1/models/faces/versions/1:predict",
                         "/v1/models/faces/labels/canary:predict"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=PATHS, body=BODIES)
def test_fuzz_never_a_server_error(client, path, body):
    response = client.post(path, content=body)
    assert response.status_code < 500, (body[:300], response.text)
    payload = response.json()
    assert (set(payload) == {"error"}) if response.status_code != 200 else ({"predictions", "outputs"} & set(payload))


def test_fuzz_left_the_server_healthy(client):
    assert client.get("/healthz").status_code == 200
    assert client.post(PREDICT, json={"instances": [_emb()]}).status_code == 200


def test_batching_merges_concurrent_requests(tmp_path):
    """Five concurrent one-instance requests fill a batch of exactly five: one graph call, counted by the
    genart_batch_size histogram. The long batch timeout only bounds a hung test; it is never what is measured."""
    config = build_registry(str(tmp_path), {"faces": ("vaegan", [1])})
    manager = ModelManager(config_path=config, poll_seconds=-1,
                           batching=BatchingOptions(max_batch_size=5, batch_timeout_micros=60_000_000))
    manager.poll_once()
    results, errors = [None] * 6, []
    with TestClient(create_app(manager)) as c:
        def call(i):
            body = {"instances": [{"embeddings": _emb(i)["embeddings"], "key": f"k{i}"}]} if i != 3 else \
                {"instances": [{"image_bytes": {"b64": B64(b"junk")}}]}  # one bad request among them
            response = c.post(PREDICT, json=body)
            (results.__setitem__(i, response.json()) if response.status_code == 200 else errors.append(response))
        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 1 and errors[0].status_code == 400
        for i in (0, 1, 2, 4, 5):
            assert results[i]["predictions"][0]["key"] == f"k{i}"
        text = c.get("/monitoring/prometheus/metrics").text
    labels = '{model="faces",signature="embeddings"}'
    assert f"genart_batch_size_count{labels} 1\n" in text, "the concurrent requests were not merged into one call"
    assert f"genart_batch_size_sum{labels} 5\n" in text
    manager.stop()
