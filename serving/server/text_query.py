"""Seed 004's text -> image API on the page's path (INTERFACE.md section 12), a thin adapter over the REST core:

    GET /?input=TEXT[&model=NAME][&n=5][&seed=S]  ->  ["<standard base64 PNG>", ...]   (n images, 1 <= n <= 16)

The model is the one deployed model with a `text` signature, or `model`. Each image is one `text` instance with
its own key: fresh random keys per request, or keys `S-0`, `S-1`, ... derived from `seed` (the same seed gives
the same images, since an export's noise is a function of text and key). Without `input` the path serves the
web page; an empty `input`, a bad `n` or an ambiguous model is 400 `{"error"}`.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from artifacts.export import IMAGE_BYTES, KEY, TEXT
from serving.server.core import InvalidInput, NotFound, PredictionError

INPUT, MODEL, COUNT, SEED = "input", "model", "n", "seed"
DEFAULT_COUNT, MAX_COUNT = 5, 16


@dataclass
class TextQuery:
    text: str
    model: str | None
    keys: list[str]

    def body(self) -> bytes:
        """The REST predict body: one `text` instance per key."""
        instances = [{TEXT: self.text, KEY: key} for key in self.keys]
        return json.dumps({"signature_name": TEXT, "instances": instances}).encode("utf-8")


def parse_query(params) -> TextQuery:
    """The query's text, model and keys; InvalidInput for an empty input or an `n` outside 1..16."""
    text = params.get(INPUT, "")
    if not text.strip():
        raise InvalidInput(f"'{INPUT}' must be a non-empty text, e.g. /?{INPUT}=red+circle")
    raw_count = params.get(COUNT, str(DEFAULT_COUNT))
    try:
        count = int(raw_count)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"'{COUNT}' must be an integer from 1 to {MAX_COUNT}, got {raw_count!r}")
    seed = params.get(SEED)
    keys = [f"{seed}-{i}" if seed is not None else secrets.token_hex(8) for i in range(count)]
    return TextQuery(text, params.get(MODEL) or None, keys)


def text_models(manager) -> list[str]:
    """The deployed models whose served version has a `text` signature."""
    found = []
    for name in manager.model_names():
        try:
            with manager.use(name) as served:
                if TEXT in served.model.signatures:
                    found.append(name)
        except PredictionError:  # not loaded (yet)
            continue
    return found


def choose_model(manager, wanted: str | None) -> str:
    """`wanted` (which must serve `text`), else the only text model; NotFound / InvalidInput otherwise."""
    models = text_models(manager)
    if wanted is not None:
        if wanted not in manager.model_names():
            raise NotFound(f"Servable not found for request: Latest({wanted})")
        if wanted not in models:
            raise InvalidInput(f"model {wanted!r} has no '{TEXT}' signature (text models: "
                               f"{', '.join(models) or 'none'})")
        return wanted
    if not models:
        raise NotFound(f"no deployed model has a '{TEXT}' signature (a text2image export)")
    if len(models) > 1:
        raise InvalidInput(f"several text models are deployed ({', '.join(models)}): add &{MODEL}=NAME")
    return models[0]


def images_of(payload: bytes) -> list[str]:
    """The predict response's PNGs as standard base64 strings, in instance order."""
    return [row[IMAGE_BYTES]["b64"] for row in json.loads(payload)["predictions"]]
