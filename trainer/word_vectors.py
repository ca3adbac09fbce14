"""`--word-vectors FILE` of text -> image: static English word vectors the user supplies (word2vec / GloVe text
format: one word and its numbers per line, an optional "count dim" header), limited to the words of the data's
captions plus the file's first `word_vectors_limit` words (such files list the most frequent words first).
The kept vectors become the text encoders' static word table (`trainer.networks.text`), saved in checkpoints and
the SavedModel; the file is read once, when the job's model is first built.
"""
from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from artifacts import storage
from artifacts.captions import CAPTION
from artifacts.dataset import SPLITS, split_files
from preprocess.text import tokenize


def caption_words(data_dir: str) -> set[str]:
    """Every word of every caption of the dataset (both splits), as the in-graph tokeniser splits them."""
    files = [file for split in SPLITS for file in split_files(data_dir, split)]
    if not files:
        return set()
    spec = {CAPTION: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
    captions = tf.data.TFRecordDataset(files).map(lambda record: tf.io.parse_single_example(record, spec)[CAPTION])
    words = set()
    for batch in captions.batch(1024):
        words.update(word.decode("utf-8") for word in tokenize(batch).flat_values.numpy().tolist())
    return words


def read_vectors(path: str, wanted: set[str], limit: int) -> tuple[list[str], np.ndarray]:
    """(words, float32 [len(words), dim]): the file's vectors of `wanted` words and of its first `limit` words."""
    words, rows, dim = [], [], None
    seen = set()
    with (io.BytesIO(storage.read_bytes(path)) if storage.is_gcs(path) else open(path, "rb")) as f:
        for number, raw in enumerate(f, 1):
            parts = raw.decode("utf-8", errors="replace").rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                continue  # word2vec's header
            if len(parts) < 2:
                continue
            word = parts[0].lower()
            if word in seen or not (len(words) < limit or word in wanted):
                continue
            try:
                vector = [float(value) for value in parts[1:]]
            except ValueError:
                raise ValueError(f"--word-vectors {path} line {number}: expected a word then numbers") from None
            if dim is None:
                dim = len(vector)
            if len(vector) != dim:
                raise ValueError(f"--word-vectors {path} line {number}: {len(vector)} numbers, expected {dim}")
            seen.add(word)
            words.append(word)
            rows.append(vector)
    if not words:
        raise ValueError(f"--word-vectors {path}: no word vectors found")
    return words, np.asarray(rows, np.float32)


def load_word_vectors(config) -> tuple[list[str], np.ndarray]:
    """The static word table of a text -> image config (`word_vectors`, `word_vectors_limit`, `data_dir`)."""
    return read_vectors(config.word_vectors, caption_words(config.data_dir), config.word_vectors_limit)
