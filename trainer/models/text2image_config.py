"""The text -> image model's options (beside `text2image.py`, TensorFlow-free), added to the common ones."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainer.config import TrainConfig, flag_name, model_default, option

WORD_VECTORS_LIMIT = 20000  # --word-vectors: caption words plus at most this many of the file's first (most
#                             frequent) words are kept


@dataclass
class Text2ImageConfig(TrainConfig):
    CAPTIONED: ClassVar[bool] = True  # trains on captioned images: preprocessing stores `image/caption`
    AUTO_SIZED: ClassVar[tuple[str, ...]] = ("image_size", "base_filters", "batch_size")  # trainer/sizing.py
    model: str = model_default("model", "text2image")
    latent_dim: int = model_default("latent_dim", 64)
    jit_compile: bool | None = option(False, "XLA-compile the train step: never, its text ops are string ops")
    text_dim: int = option(64, "size of the text code (word, character trigram and word vector embeddings)",
                           minimum=1)
    word_buckets: int = option(2048, "hash buckets of the word embedding table", minimum=1)
    ngram_buckets: int = option(2048, "hash buckets of the character trigram table (codes for unseen words)",
                                minimum=1)
    condition_dim: int = option(32, "size of the conditioning-augmented condition (StackGAN's c)", minimum=1)
    kl_weight: float = option(0.02, "weight of the conditioning augmentation's KL term (low: the text encoder is "
                              "learned from scratch, and a strong KL erases its code early on)", minimum=0)
    mismatch_weight: float = option(0.5, "weight of real images with mismatched captions counted as fake "
                                    "(GAN-INT-CLS); fake images get 1 - this", minimum=0)
    class_weight: float = option(1.0, "weight of TAC-GAN's auxiliary caption-class term when the train captions "
                                 "are a closed set (at most 64 distinct); 0 = off", minimum=0)
    word_vectors: str | None = option(None, "start a static word table from this word2vec/GloVe text file (word "
                                      "then numbers per line): caption words plus the file's first "
                                      f"{WORD_VECTORS_LIMIT} words are kept, in the SavedModel",
                                      default_text="none: the learned hashed encoder only")
    word_vectors_limit: int = option(WORD_VECTORS_LIMIT, "--word-vectors: how many of the file's first (most "
                                     "frequent) words to keep beside the caption words", minimum=0)
    vocabulary_size: int = option(0, "the static word table's size: set from --word-vectors", flag=False)
    vector_dim: int = option(0, "the static word vectors' size: set from --word-vectors", flag=False)
    caption_classes: list[str] = option([], "the closed set of train captions (TAC-GAN's classes): from the "
                                        "data's manifest.json", flag=False)

    def validate(self) -> Text2ImageConfig:
        if self.jit_compile:
            raise ValueError(f"{flag_name('jit_compile')} cannot be on for text2image: its text ops are string ops")
        if not 0 <= self.mismatch_weight <= 1:
            raise ValueError(f"{flag_name('mismatch_weight')} must be in [0, 1], got {self.mismatch_weight}")
        return super().validate()
