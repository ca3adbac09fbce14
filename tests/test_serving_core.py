"""serving.server.core on real exports of untrained networks: loading, signature choice, instance validation, key
filling, outputs, per-instance API."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from serving_helpers import LATENT_DIM, embedding_lines, export_path, image_lines, jpeg_bytes, which_version

from serving.server import core, protos, tensors, values


@pytest.fixture(scope="module")
def faces():
    return core.load_model(export_path("vaegan", 1), "faces", 1)


@pytest.fixture(scope="module")
def cyc():
    return core.load_model(export_path("cyclegan", 1), "cyc", 1)


def _emb(i=0):
    return json.loads(embedding_lines(i + 1)[i])


def _img(i=0):
    return json.loads(image_lines(i + 1)[i])


def test_loaded_model_describes_its_signatures(faces, cyc):
    assert set(faces.signatures) == {"serving_default", "embeddings", "image_bytes"}
    assert faces.default_signature_name == "serving_default"
    emb = faces.signatures["embeddings"]
    assert list(emb.inputs) == ["embeddings", "key"] and list(emb.outputs) == ["image_bytes", "key"]
    assert emb.inputs["embeddings"].shape == (None, LATENT_DIM)
    assert emb.fills_key and emb.required == ["embeddings"] and not emb.image_inputs
    assert faces.signatures["image_bytes"].image_inputs == {"image_bytes"}
    assert set(cyc.signatures) == {"serving_default", "a_to_b", "b_to_a"}


@pytest.mark.parametrize("names, expected", [
    ({"embeddings", "key"}, "embeddings"), ({"embeddings"}, "embeddings"),
    ({"image_bytes", "key"}, "image_bytes"), ({"image_bytes"}, "image_bytes"),
    ({"something", "else"}, "serving_default"), (None, "serving_default"),
])
def test_signature_chosen_by_input_names(faces, names, expected):
    assert core.choose_signature(faces, names).name == expected


def test_signature_choice_cyclegan_and_explicit(faces, cyc):
    assert core.choose_signature(cyc, {"image_bytes", "key"}).name == "serving_default"
    assert core.choose_signature(cyc, {"image_bytes"}, "b_to_a").name == "b_to_a"
    assert core.choose_signature(faces, {"embeddings"}, "image_bytes").name == "image_bytes"
    with pytest.raises(core.InvalidInput, match='"nope" not found'):
        core.choose_signature(faces, None, "nope")


def test_seed_instances_row_round_trip(faces):
    instances = [_emb(0), _emb(1)]
    out = core.predict_json(faces, {"instances": instances})["predictions"]
    assert [row["key"] for row in out] == ["0", "1"]
    png = base64.b64decode(out[0]["image_bytes"]["b64"])
    assert png.startswith(b"\x89PNG")
    # every prediction is a valid instance for the opposite signature, byte for byte in JSON
    back = core.predict_json(faces, json.loads(json.dumps({"instances": out})))["predictions"]
    assert [row["key"] for row in back] == ["0", "1"]
    assert len(back[0]["embeddings"]) == LATENT_DIM
    assert which_version(back[0]["embeddings"], png) == 1  # what the export of version 1 gives, called directly
    again = core.predict_json(faces, {"instances": [{"embeddings": back[0]["embeddings"], "key": "x"}]})
    assert again["predictions"][0]["key"] == "x"


def test_columnar_and_single_output_formats(faces):
    rows = [_emb(0), _emb(1)]
    columnar = core.predict_json(faces, {"inputs": {"embeddings": [r["embeddings"] for r in rows],
                                                    "key": ["a", "b"]}})
    assert set(columnar) == {"outputs"} and columnar["outputs"]["key"] == ["a", "b"]
    row = core.predict_json(faces, {"instances": [{"embeddings": rows[0]["embeddings"], "key": "a"}]})
    assert row["predictions"][0]["image_bytes"] == columnar["outputs"]["image_bytes"][0]
    plain = core.predict_json(faces, {"inputs": [r["embeddings"] for r in rows]})  # the single non-key input
    assert plain["outputs"]["key"] == ["0", "1"]
    plain_rows = core.predict_json(faces, {"instances": [rows[0]["embeddings"]]})
    assert plain_rows["predictions"][0]["key"] == "0"


def test_key_filling_and_numeric_keys(faces):
    base = _emb()["embeddings"]
    out = core.predict_json(faces, {"instances": [{"embeddings": base}, {"embeddings": base, "key": 7},
                                                  {"embeddings": base, "key": 2.0},
                                                  {"embeddings": base, "key": 0.5}]})
    assert [row["key"] for row in out["predictions"]] == ["0", "7", "2", "0.5"]


def test_embeddings_are_shortest_float32_json(faces):
    out = core.predict_json(faces, {"instances": [_img()]})["predictions"][0]["embeddings"]
    text = json.dumps(out)
    assert all(x == float(str(np.float32(x))) for x in out), text[:200]  # 0.2, not 0.20000000298...
    assert np.array_equal(np.asarray(out, np.float32), np.asarray(json.loads(text), np.float32))


@pytest.mark.parametrize("instance, fragment", [
    ({"embeddings": [0.1] * 99}, "instance 0, input 'embeddings': expected 100 values, got 99"),
    ({"embeddings": [[0.1] * 100]}, "expected a list of shape [100], got a list of shape [1, 100]"),
    ({"embeddings": [float("nan")] * 100}, "non-finite value NaN"),
    ({"embeddings": [float("inf")] + [0.0] * 99}, "non-finite value Infinity"),
    ({"embeddings": [1e39] + [0.0] * 99}, "out of range for float32"),
    ({"embeddings": [True] + [0.0] * 99}, "True (boolean) is not a number"),
    ({"embeddings": ["0.5"] + [0.0] * 99}, "'0.5' (string) is not a number"),
    ({"embeddings": [[0.1], 0.2]}, "ragged"),
    ({"embeddings": [0.1] * 100, "extra": 1}, "input 'extra': unknown input"),
    ({"key": "a"}, "input 'embeddings': missing"),
    ({"embeddings": [0.1] * 100, "key": True}, "input 'key': True (boolean) is not a string"),
    ({"embeddings": [0.1] * 100, "key": {"b64": "@@"}}, "not valid base64"),
])
def test_bad_instances_name_instance_and_input(faces, instance, fragment):
    with pytest.raises(core.InvalidInput) as info:
        core.predict_json(faces, {"signature_name": "embeddings", "instances": [instance]})
    assert fragment in str(info.value)


@pytest.mark.parametrize("payload, fragment", [
    ("not base64!", "not valid base64"),
    (base64.b64encode(b"hello world").decode(), "not an encoded image"),
    (base64.b64encode(jpeg_bytes()[:200]).decode(), "undecodable JPEG image"),
    (base64.urlsafe_b64encode(b"\xfb\xff" * 30).decode(), "URL-safe"),
    (base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 30).decode(), "undecodable PNG image"),
])
def test_bad_images_fail_before_the_graph(faces, payload, fragment):
    with pytest.raises(core.InvalidInput) as info:
        core.predict_json(faces, {"instances": [{"image_bytes": {"b64": payload}}]})
    assert fragment in str(info.value) and "instance 0, input 'image_bytes'" in str(info.value)


def test_b64_padding_optional_and_whitespace_ignored():
    data = jpeg_bytes()
    text = base64.b64encode(data).decode()
    assert values.decode_b64(text.rstrip("=")) == data
    assert values.decode_b64("\n".join(text[i:i + 76] for i in range(0, len(text), 76))) == data


def test_per_instance_api_isolates_bad_instances(faces):
    good, bad = _img(0), {"image_bytes": {"b64": base64.b64encode(b"nope").decode()}, "key": "bad"}
    signature, prepared = core.prepare_instances(faces, [good, bad, _img(2)], first_index=10)
    assert signature.name == "image_bytes"
    assert isinstance(prepared[1], core.InstanceError) and prepared[1].index == 11
    assert "instance 11, input 'image_bytes'" in prepared[1].message
    rows = core.run(signature, [p for p in prepared if isinstance(p, core.Instance)])
    assert [row["key"] for row in rows] == ["0", "2"]
    isolated = core.run_isolated(signature, [p for p in prepared if isinstance(p, core.Instance)])
    assert [row["key"] for row in isolated] == ["0", "2"]


def test_mixed_shapes_and_request_level_errors(faces):
    with pytest.raises(core.InvalidInput, match="empty instances"):
        core.prepare_instances(faces, [])
    with pytest.raises(core.InvalidInput, match="must be a list"):
        core.prepare_instances(faces, {"embeddings": []})
    with pytest.raises(core.InvalidInput, match="instance 1, input 'image_bytes': unknown input"):
        core.predict_json(faces, {"instances": [_emb(), _img()]})
    with pytest.raises(core.InvalidInput, match="Missing 'inputs' or 'instances'"):
        core.predict_json(faces, {"signature_name": "embeddings"})
    with pytest.raises(core.InvalidInput, match="different numbers of instances"):
        core.predict_json(faces, {"inputs": {"embeddings": [[0.0] * 100], "key": ["a", "b"]}})
    with pytest.raises(core.InvalidInput, match="JSON Parse error"):
        core.parse_json_body(b"{")
    with pytest.raises(core.InvalidInput, match="JSON Parse error"):
        core.parse_json_body(b"[" * 100000)


def test_tensor_requests_like_grpc(faces):
    z = np.random.default_rng(0).normal(size=(2, LATENT_DIM))  # float64: cast to the signature's float32
    request = tensors.parse_tensor_request(faces, {"embeddings": z})
    assert request.signature.name == "embeddings" and list(request.batch["key"]) == [b"0", b"1"]
    outputs = core.run_batch(request.signature, request.batch)
    assert outputs["image_bytes"].shape == (2,)
    with pytest.raises(core.InvalidInput, match="instance 1, input 'embeddings': non-finite"):
        tensors.parse_tensor_request(faces, {"embeddings": np.array([[0.0] * 100, [np.nan] * 100], np.float32)})
    with pytest.raises(core.InvalidInput, match=r"expected shape \[\?, 100\], got \[1, 3\]"):
        tensors.parse_tensor_request(faces, {"embeddings": np.zeros((1, 3), np.float32)})
    with pytest.raises(core.InvalidInput, match="different batch sizes"):
        tensors.parse_tensor_request(faces, {"embeddings": np.zeros((1, 100), np.float32),
                                          "key": np.array([b"a", b"b"], dtype=object)})
    images = np.array([jpeg_bytes(), b"junk"], dtype=object)
    with pytest.raises(core.InvalidInput, match="instance 1, input 'image_bytes'"):
        tensors.parse_tensor_request(faces, {"image_bytes": images})


def test_metadata_proto_lists_every_signature(faces):
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = protos.metadata_proto(faces)
    assert response.model_spec.name == "faces" and response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    assert {"serving_default", "embeddings", "image_bytes"} <= set(signature_map.signature_def)
    assert signature_map.signature_def["embeddings"].inputs["embeddings"].tensor_shape.dim[1].size == 100
