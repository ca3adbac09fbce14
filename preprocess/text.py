"""THE text normaliser of captions and prompts, in TensorFlow ops only, so preprocessing (the caption-disjoint
split), training (`tf.data`) and the exported serving graph (real TF Serving included) tokenise identically.

normalize: UTF-8 lower-case (`tf.strings.lower(encoding="utf-8")`), every run of characters that are not
letters or digits (punctuation, symbols, marks, whitespace, `_`) -> one space, stripped.
tokenize: the normalised text split at spaces (a ragged [N, None] of words; "" -> no words).
"""
from __future__ import annotations

import tensorflow as tf

NOT_A_WORD = r"[^\p{L}\p{N}]+"  # RE2: anything that is not a letter or a digit


def normalize(text: tf.Tensor) -> tf.Tensor:
    """string [...] -> string [...]: lower-cased, punctuation stripped, words separated by one space."""
    text = tf.strings.lower(tf.convert_to_tensor(text, tf.string), encoding="utf-8")
    return tf.strings.strip(tf.strings.regex_replace(text, NOT_A_WORD, " "))


def tokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """string [N] -> ragged string [N, None]: the words of each normalised text."""
    return tf.strings.split(normalize(text))  # (at whitespace: "" has no words)


def normalize_all(captions: list[str]) -> list[str]:
    """The normalised form of each caption (eagerly, for Python code such as the caption-disjoint split)."""
    if not captions:
        return []
    return [value.decode("utf-8") for value in normalize(tf.constant(captions)).numpy().tolist()]
