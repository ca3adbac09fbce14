"""The project's Beam `ModelHandler` and pipeline graph (`serving.batch.beam_inference`) on their own: a failure that
escapes a whole batch still reports each of its instances; the handler validates each instance by itself and
mixes signatures within one batch. The model is a real export of an untrained tiny VAE-GAN."""
from __future__ import annotations

import json

import numpy as np
from serving_helpers import LATENT_DIM, b64, export_path, jpeg_bytes, random_embedding, read_batch_outputs

from serving.batch import beam_inference


# ---------------------------------------------------------------- failures that escape a batch


class ExplodingHandler(beam_inference.SavedModelHandler):
    """Fails every batch that holds the instance keyed "boom", as a crashing graph or worker would."""

    def run_inference(self, batch, model, inference_args=None):
        if any(isinstance(instance, dict) and instance.get("key") == "boom" for _, instance in batch):
            raise RuntimeError("simulated failure of the whole batch")
        return super().run_inference(batch, model, inference_args)


def test_a_batch_that_fails_whole_reports_each_of_its_instances(tmp_path, monkeypatch, capsys):
    import apache_beam as beam

    monkeypatch.setattr(beam_inference, "PROGRESS_EVERY_S", 0.0)  # a progress line for every instance

    lines = [json.dumps({"embeddings": random_embedding(np.random.default_rng(i)), "key": f"k{i}"}) for i in range(7)]
    lines[4] = json.dumps({"embeddings": random_embedding(np.random.default_rng(4)), "key": "boom"})
    (tmp_path / "in.json").write_text("\n".join(lines) + "\n")
    handler = ExplodingHandler(export_path("vaegan", 1), batch_size=2)
    with beam.Pipeline() as pipeline:
        beam_inference.build_pipeline(pipeline, [str(tmp_path / "in.json")], str(tmp_path / "out"), handler)
    outputs = read_batch_outputs(str(tmp_path / "out"))
    failed = {row["key"]: row for row in outputs["errors"]}
    assert "boom" in failed and 1 <= len(failed) <= 2  # the batch of 2 (or the last, lone one) holding it
    assert all("simulated failure of the whole batch" in row["error"] for row in failed.values())
    assert failed["boom"]["line"] == 5
    assert sorted([row["key"] for row in outputs["results"]] + list(failed)) == sorted(
        [f"k{i}" for i in range(7) if i != 4] + ["boom"])
    assert "7 instances done (" in capsys.readouterr().err


# ---------------------------------------------------------------- the handler on its own


def test_handler_validates_each_instance_and_mixes_signatures():
    from serving.batch.beam_io import Source

    handler = beam_inference.SavedModelHandler(export_path("vaegan", 1), batch_size=8)
    model = handler.load_model()
    rng = np.random.default_rng(0)
    batch = [(Source("f.json", 1), {"embeddings": random_embedding(rng)}),
             (Source("f.json", 2), {"image_bytes": {"b64": b64(jpeg_bytes(0))}, "key": "img"}),
             (Source("f.json", 3), random_embedding(rng)),  # a bare value for the one-input default signature
             (Source("f.json", 4), {"embeddings": [1.0], "key": 4.0}),
             (Source("f.json", 5), {"embedding": random_embedding(rng)})]  # misspelt input
    out = handler.run_inference(batch, model)
    assert [source for source, _ in out] == [source for source, _ in batch]
    keys = [result.example for _, result in out]
    assert keys == ["f.json:1", "img", "f.json:3", "4", "f.json:5"]
    inference = [result.inference for _, result in out]
    assert inference[0]["key"] == "f.json:1" and "image_bytes" in inference[0]
    assert inference[1]["key"] == "img" and len(inference[1]["embeddings"]) == LATENT_DIM
    assert inference[2]["key"] == "f.json:3"
    assert "instance 4, input 'embeddings': expected 100 values, got 1" == inference[3].message
    assert "unknown input" in inference[4].message and "embedding" in inference[4].message


def test_handler_signature_name_applies_to_every_instance():
    from serving.batch.beam_io import Source

    handler = beam_inference.SavedModelHandler(export_path("vaegan", 1), "image_bytes")
    model = handler.load_model()
    out = handler.run_inference([(Source("f", 1), {"embeddings": [0.0] * LATENT_DIM})], model)
    assert "unknown input" in out[0][1].inference.message
