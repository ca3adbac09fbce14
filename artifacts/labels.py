"""Label maps of SPADE data (INTERFACE.md section 11): the pair layout, `labels.json`, the class list and palette.

    INPUT/images/<stem>.<ext>   INPUT/labels/<stem>.png   INPUT/labels.json {"classes": [{"name", "color"}]}
A record stores the label map as an index PNG (`LABEL_MAP_FEATURE`); the manifest and the export's
`classes.json` carry the same class list. TensorFlow-free.
"""
from __future__ import annotations

import colorsys

from artifacts import storage

IMAGES_DIR, LABELS_DIR = "images", "labels"
LABELS_JSON = "labels.json"
LABEL_MAP_FEATURE = "image/label_map"  # bytes: an index PNG (mode L), pixel = class id, cropped as image/encoded
MAX_CLASSES = 256  # an index PNG holds one byte per pixel


def palette_color(index: int) -> list[int]:
    """The fixed palette of index label maps without labels.json: well-separated hues, then lighter / darker."""
    hue = (index * 0.618033988749895) % 1.0
    lightness = (0.5, 0.35, 0.7)[(index // 8) % 3]
    return [round(channel * 255) for channel in colorsys.hls_to_rgb(hue, lightness, 0.85)]


def default_classes(count: int) -> list[dict]:
    """Classes 0..count-1 named `class_<i>`, coloured from the fixed palette."""
    return [{"name": f"class_{i}", "color": palette_color(i)} for i in range(count)]


def check_classes(classes, where: str) -> list[dict]:
    """A validated class list [{"name": str, "color": [r, g, b]}], colours distinct; ValueError otherwise."""
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        raise ValueError(f"{where}: \"classes\" must be a list of 1 to {MAX_CLASSES} classes")
    out, seen = [], set()
    for i, item in enumerate(classes):
        color = item.get("color") if isinstance(item, dict) else None
        if (not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(color, list)
                or len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color)):
            raise ValueError(f"{where}: class {i} must be {{\"name\": text, \"color\": [r, g, b] in 0..255}}")
        if tuple(color) in seen:
            raise ValueError(f"{where}: class {i} ({item['name']}) repeats the colour {color}")
        seen.add(tuple(color))
        out.append({"name": item["name"], "color": list(color)})
    return out


def read_labels_json(input_dir: str) -> list[dict] | None:
    """The classes of `INPUT/labels.json`, or None when there is none; ValueError when it is malformed."""
    path = storage.join(input_dir, LABELS_JSON)
    if not storage.exists(path):
        return None
    try:
        document = storage.read_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return check_classes(document.get("classes") if isinstance(document, dict) else None, path)


def is_pair_layout(input_dir: str) -> bool:
    """True when `input_dir` holds `images/` and `labels/` (SPADE's image + label map pairs)."""
    return all(storage.isdir(storage.join(input_dir, name)) for name in (IMAGES_DIR, LABELS_DIR))


def class_colors(classes: list[dict]) -> list[list[int]]:
    return [list(item["color"]) for item in classes]
