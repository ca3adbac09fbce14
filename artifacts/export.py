"""The SavedModel export (INTERFACE.md section 3): the names a trainer writes and every server and client reads.

    <dir>/saved_model.pb  variables/  assets/  fingerprint.pb
`saved_model.pb` is written last where there is no rename (gs://), so its presence marks a complete export. Each
signature maps named inputs plus a string `key` to named outputs plus the same `key`; input and output names
say what they hold (`embeddings` float32 [-1, latent_dim], `image_bytes` encoded image / PNG).
"""
from __future__ import annotations

from artifacts import storage

SAVED_MODEL_PB = "saved_model.pb"
DEFAULT_SIGNATURE = "serving_default"  # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
KEY = "key"
EMBEDDINGS = "embeddings"    # float32 [-1, latent_dim]
IMAGE_BYTES = "image_bytes"  # string [-1]: an encoded image in, a PNG out
LABEL = "label"              # int64 [-1]: a class id (a class-conditional model's extra input)
TEXT = "text"                # string [-1]: a caption / prompt (text -> image)
LABEL_MAP = "label_map"      # string [-1]: a label map PNG, colour per classes.json or grey = class id (SPADE)
ASSETS = "assets"
CLASSES_ASSET = "classes.json"  # assets/classes.json {"classes": [{"name", "color"?}]}: a model's class list
BYTES_SUFFIX = "_bytes"      # string outputs whose alias ends so are binary ({"b64": ...} in JSON)


def is_complete(path: str) -> bool:
    """True when `path` (local or gs://) holds a complete SavedModel."""
    return storage.exists(storage.join(path, SAVED_MODEL_PB))


def classes_path(path: str) -> str:
    return storage.join(path, ASSETS, CLASSES_ASSET)


def read_classes(path: str) -> list[dict] | None:
    """The class list of the export in `path` (`assets/classes.json`), or None when it has none."""
    file = classes_path(path)
    return storage.read_json(file)["classes"] if storage.exists(file) else None


def marker(path: str) -> str:
    return storage.join(path, SAVED_MODEL_PB)


def latest_export(path: str) -> str:
    """`path` itself if it holds a complete SavedModel, else its highest numbered sub-dir that does (a model
    base path of versions); FileNotFoundError when neither."""
    if is_complete(path):
        return path
    names = storage.listdir(path) if storage.isdir(path) else []
    numbered = sorted((int(name), name) for name in names
                      if name.isdigit() and is_complete(storage.join(path, name)))
    if not numbered:
        raise FileNotFoundError(f"no SavedModel ({SAVED_MODEL_PB}) in {path} or its numbered sub-dirs")
    return storage.join(path, numbered[-1][1])


def read_saved_model_bytes(path: str) -> bytes:
    """The serialized SavedModel proto of the export in `path`."""
    return storage.read_bytes(marker(path))
