"""Text -> image (INTERFACE.md section 12): captions in preprocessing, the one in-graph normaliser, the text code,
the export's graph against the training-time model, and a short training run on the procedural captioned set
(`examples/captioned`) that paints the colour its held-out prompts name."""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from artifacts import captions as caption_files
from artifacts.dataset import read_manifest, split_files
from preprocess import __main__ as preprocess_cli
from preprocess.captions import caption_disjoint_split
from preprocess.records import make_dataset
from preprocess.text import normalize_all, tokenize
from scripts.captioned import colour_word, hue_match
from trainer import networks, task
from trainer.export import encode_png, export_model
from trainer.models.text2image import Text2Image
from trainer.models.text2image_config import Text2ImageConfig

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "captioned")
TRICKY = {"Red Circle, on WHITE!": ["red", "circle", "on", "white"], "": [], "  ,;!? ": [],
          "Ünïcödé ÉTÉ — Café": ["ünïcödé", "été", "café"], "日本語 テキスト": ["日本語", "テキスト"],
          "tab\there\nnew-line": ["tab", "here", "new", "line"], "snake_case.dots": ["snake", "case", "dots"],
          "ÀB2 x9": ["àb2", "x9"]}
HUE_MATCH_WANTED = 0.7


def test_the_graph_tokeniser_equals_the_training_time_one():
    texts = list(TRICKY)
    eager = [[word.decode() for word in row] for row in tokenize(tf.constant(texts)).to_list()]
    in_graph = tf.function(lambda t: tokenize(t).to_tensor(default_value="#"))(tf.constant(texts)).numpy()
    graph = [[word.decode() for word in row if word != b"#"] for row in in_graph.tolist()]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts)).map(lambda t: tokenize(t).to_tensor("#"))
    in_data = [[word.decode() for word in row if word != b"#"] for row in next(iter(dataset)).numpy().tolist()]
    assert eager == graph == in_data == list(TRICKY.values())
    assert normalize_all(texts) == [" ".join(words) for words in TRICKY.values()]


def test_unseen_words_get_a_finite_code():
    encoder = networks.build("hashed_text_encoder", text_dim=8, word_buckets=32, ngram_buckets=32)
    codes = encoder(tf.constant(["qwxz flurbish", "red", ""])).numpy()
    assert np.isfinite(codes).all() and np.abs(codes[0]).sum() > 0 and not codes[2].any()


def test_the_export_computes_what_the_trained_model_computes(tmp_path):
    config = Text2ImageConfig(job_dir=str(tmp_path / "job"), image_size=16, base_filters=4, latent_dim=8, text_dim=8,
                              word_buckets=64, ngram_buckets=64, condition_dim=4,
                              caption_classes=["red circle"]).validate()
    model = Text2Image(config)
    model.build_for_training()
    signature = tf.saved_model.load(export_model(model, config.job_dir)).signatures["text"]
    texts, keys = tf.constant(list(TRICKY)), tf.constant([f"k{i}" for i in range(len(TRICKY))])
    served = signature(text=texts, key=keys)["image_bytes"].numpy().tolist()
    assert served == encode_png(model.generate_for(texts, keys)).numpy().tolist()
    assert served != signature(text=texts, key=tf.constant(["other"] * len(TRICKY)))["image_bytes"].numpy().tolist()


def test_captions_from_files_or_paths_and_a_caption_disjoint_split(tmp_path):
    assert caption_files.caption_from_path("red_circles/03.png") == "red circles"
    (tmp_path / "captions.jsonl").write_text('{"file": "a.png", "caption": "Red circle."}\n\n'
                                             '{"file": "./b.png", "caption": "blue square"}\n')
    assert caption_files.read_captions(str(tmp_path / "captions.jsonl")) == {"a.png": "Red circle.",
                                                                             "b.png": "blue square"}
    (tmp_path / "captions.csv").write_text("name,text\nx.png,red\n")
    with pytest.raises(caption_files.CaptionsError, match="file,caption"):
        caption_files.read_captions(str(tmp_path / "captions.csv"))
    captions = {f"{c}_{s}_{i}.png": f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "square", "star")
                for i in range(4)}
    captions["x.png"] = "RED, circle!"  # the same caption as "red circle" once normalised
    train, val = caption_disjoint_split(captions, 0.2, seed=0)
    train_captions, val_captions = (set(normalize_all([captions[f] for f in files])) for files in (train, val))
    assert not train_captions & val_captions and sorted(train + val) == sorted(captions)
    assert {word for c in val_captions for word in c.split()} <= {word for c in train_captions for word in c.split()}


@pytest.fixture(scope="module")
def captioned_data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("captioned") / "data")
    assert preprocess_cli.main(["--input-dir", EXAMPLES, "--output-dir", out, "--image-size", "16",
                                "--center-crop", "--workers", "1"]) == 0
    return out


def test_preprocessing_stores_captions_with_an_80_20_split(captioned_data):
    manifest = read_manifest(captioned_data)
    assert manifest["counts"] == {"train": 258, "val": 66}  # 20% of 324, whole captions
    assert manifest["captions"]["train"] + manifest["captions"]["val"] == 54
    assert len(manifest["captions"]["closed_set"]) == manifest["captions"]["train"]
    _, captions = next(iter(make_dataset(split_files(captioned_data, "val"), 16, True, 8, training=False,
                                         captions=True)))
    assert all(colour_word(caption.decode()) for caption in captions.numpy())


def test_a_short_training_paints_the_colour_of_held_out_prompts(captioned_data, tmp_path):
    job_dir = str(tmp_path / "paint")
    assert task.main(["--data-dir", captioned_data, "--job-dir", job_dir, "--model", "text2image", "--max-steps",
                      "1500", "--batch-size", "32", "--base-filters", "16", "--eval-every-steps", "0",
                      "--sample-every-steps", "5000", "--checkpoint-every-steps", "5000"]) == 0
    held_out = sorted({c.decode() for _, batch in make_dataset(split_files(captioned_data, "val"), 16, True, 64,
                                                              training=False, drop_remainder=False, captions=True)
                 for c in batch.numpy()})
    match = hue_match(os.path.join(job_dir, "export"), held_out)
    print(f"hue match on {len(held_out)} held-out prompts: {match:.1%}")
    assert match >= HUE_MATCH_WANTED


def test_word_vectors_start_a_static_table_that_is_exported(captioned_data, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("5 2\nthe 0.1 0.2\nof 0.3 0.4\nRed 1 2\nunrelated 5 5\ncircle 3 4\n")
    config = Text2ImageConfig(data_dir=captioned_data, job_dir=str(tmp_path / "job"), image_size=16, base_filters=4,
                              latent_dim=8, text_dim=8, word_buckets=64, ngram_buckets=64, condition_dim=4,
                              word_vectors=str(vectors), word_vectors_limit=1).validate()
    model = Text2Image(config)
    model.build_for_training()
    assert (config.vocabulary_size, config.vector_dim) == (3, 2)  # "the" (the first 1) + caption words red, circle
    table = dict(zip(model.generator_encoder.vocabulary.numpy().tolist(),
                     model.generator_encoder.vectors.numpy().tolist()))
    assert table[networks.text.fingerprints(tf.constant("red")).numpy()] == [1.0, 2.0]
    signature = tf.saved_model.load(export_model(model, config.job_dir)).signatures["text"]
    assert len(signature(text=tf.constant(["red circle"]), key=tf.constant(["0"]))["image_bytes"].numpy()) == 1
