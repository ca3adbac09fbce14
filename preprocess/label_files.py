"""Label map files (INTERFACE.md section 11), with PIL and NumPy: pairing `images/` with `labels/`, reading index or
colour label PNGs, and `--auto-labels K` (K-colour quantisation, deterministic for a seed).

`Labeler` turns one pair (or, for auto labels, one image) into a class-id array of the image's size; it is a
plain picklable object, so preprocessing workers get a copy. Every problem of one pair raises `UnusableImage`,
whose message is the reason the pair is listed in the manifest's `skipped`.
"""
from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image

from artifacts import labels as layout
from artifacts import storage
from preprocess.images import UnusableImage, check_pixel_count, discover_images, load_rgb

INDEX_MODES = ("L", "P")
AUTO_SAMPLE_SIDE = 32      # each image contributes its pixels at about this size to the colour clustering
AUTO_ITERATIONS = 25
AUTO_RESTARTS = 4          # k-means++ starts; the tightest clustering wins


@dataclasses.dataclass(frozen=True)
class Labeler:
    """How label maps are read: `colors` [[r, g, b], ...] per class; `auto`: made from the image itself."""
    colors: tuple[tuple[int, int, int], ...]
    auto: bool = False
    index_only: bool = False  # no labels.json: only index PNGs can be read

    def ids_for(self, rgb: np.ndarray, label_path: str | None) -> np.ndarray:
        """uint8 [H, W] class ids for the image `rgb` (uint8 [H, W, 3]) and its label file."""
        if self.auto:
            return quantise(rgb, np.asarray(self.colors, np.float32))
        ids = self._read(label_path)
        height, width = rgb.shape[:2]
        if ids.shape != (height, width):
            if abs(ids.shape[0] * width - height * ids.shape[1]) > max(height, width, *ids.shape):
                raise UnusableImage(f"label map {ids.shape[1]}x{ids.shape[0]} has another aspect ratio than its "
                                    f"image {width}x{height}")
            ids = np.asarray(Image.fromarray(ids).resize((width, height), Image.NEAREST))
        return ids

    def _read(self, label_path: str) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(storage.read_bytes(label_path))) as image:
                check_pixel_count(*image.size)
                image.load()
                if image.mode in INDEX_MODES:
                    return self._check_ids(np.asarray(image, np.uint8))  # P: the palette index is the id
                if self.index_only:
                    raise UnusableImage(f"a colour label map ({image.mode}) needs {layout.LABELS_JSON} beside "
                                        f"{layout.IMAGES_DIR}/ and {layout.LABELS_DIR}/")
                return self._colour_ids(np.asarray(image.convert("RGB"), np.uint8))
        except UnusableImage:
            raise
        except Exception as exc:
            raise UnusableImage(f"cannot read label map: {type(exc).__name__}: {exc}") from None

    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        if ids.size and int(ids.max()) >= len(self.colors):
            raise UnusableImage(f"label map has class id {int(ids.max())}, but there are {len(self.colors)} classes")
        return ids

    def _colour_ids(self, rgb: np.ndarray) -> np.ndarray:
        codes = _codes(rgb.reshape(-1, 3))
        table = _codes(np.asarray(self.colors, np.int64))
        order = np.argsort(table)
        found = np.searchsorted(table[order], codes).clip(0, len(table) - 1)
        known = table[order][found] == codes
        if not known.all():
            unknown = rgb.reshape(-1, 3)[~known]
            raise UnusableImage(f"label map has {len(unknown)} pixel(s) of a colour not in {layout.LABELS_JSON}, "
                                f"e.g. {unknown[0].tolist()}")
        return order[found].astype(np.uint8).reshape(rgb.shape[:2])


def _codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def quantise(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W]: the index of the nearest palette colour of every pixel."""
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    ids = np.empty(len(pixels), np.uint8)
    for start in range(0, len(pixels), 65536):  # bounded memory for large images
        chunk = pixels[start:start + 65536]
        ids[start:start + 65536] = ((chunk[:, None, :] - palette[None]) ** 2).sum(-1).argmin(-1)
    return ids.reshape(rgb.shape[:2])


def auto_palette(paths: list[str], k: int, seed: int) -> list[list[int]]:
    """K colours (k-means on pixels sampled from every image, k-means++ start): the same for the same images and
    seed. Sorted by brightness, so class ids do not depend on the clustering's order."""
    samples = []
    for path in sorted(paths):
        try:
            image = Image.fromarray(load_rgb(path))
        except UnusableImage:
            continue  # skipped later, with its reason
        image.thumbnail((AUTO_SAMPLE_SIDE, AUTO_SAMPLE_SIDE), Image.NEAREST)  # real colours, never blends
        samples.append(np.asarray(image, np.float32).reshape(-1, 3))
    if not samples:
        return []
    pixels = np.concatenate(samples)
    rng = np.random.default_rng(seed)
    best = min((_kmeans(pixels, k, rng) for _ in range(AUTO_RESTARTS)), key=lambda fit: fit[0])
    centres = best[1]
    colors = sorted({tuple(int(c) for c in np.round(centre)) for centre in centres}, key=lambda c: (sum(c), c))
    return [list(color) for color in colors]


def _kmeans(pixels: np.ndarray, k: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """(inertia, centres) of one k-means run from a k-means++ start drawn with `rng`."""
    centres = [pixels[rng.integers(len(pixels))]]
    for _ in range(1, k):
        distance = ((pixels[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1).min(-1)
        if not distance.sum():
            break  # fewer distinct colours than k
        centres.append(pixels[rng.choice(len(pixels), p=distance / distance.sum())])
    centres = np.asarray(centres)
    for _ in range(AUTO_ITERATIONS):
        nearest = ((pixels[:, None, :] - centres[None]) ** 2).sum(-1).argmin(-1)
        centres = np.asarray([pixels[nearest == i].mean(0) if (nearest == i).any() else centres[i]
                              for i in range(len(centres))])
    return float(((pixels[:, None, :] - centres[None]) ** 2).sum(-1).min(-1).sum()), centres


def auto_classes(root: str, image_rels: list[str], k: int, seed: int) -> tuple[list[dict], Labeler]:
    colors = auto_palette([os.path.join(root, rel) for rel in image_rels], k, seed)
    classes = [{"name": f"color_{i}", "color": color} for i, color in enumerate(colors)]
    return classes, Labeler(tuple(tuple(c) for c in colors), auto=True)


def pair_files(root: str) -> tuple[list[str], dict[str, str], list[dict]]:
    """(image paths relative to `root`, {image rel: label rel}, skipped) of an `images/` + `labels/` input: files
    pair by their path below those folders without the extension; a file without its partner is skipped."""
    def by_stem(folder: str) -> dict[str, str]:
        found = {}
        for rel in discover_images(os.path.join(root, folder)):
            found.setdefault(os.path.splitext(rel)[0], f"{folder}/{rel}")
        return found

    images, label_maps = by_stem(layout.IMAGES_DIR), by_stem(layout.LABELS_DIR)
    skipped = [{"path": rel, "reason": f"no label map {layout.LABELS_DIR}/{stem}.* for this image"}
               for stem, rel in images.items() if stem not in label_maps]
    skipped += [{"path": rel, "reason": f"no image {layout.IMAGES_DIR}/{stem}.* for this label map"}
                for stem, rel in label_maps.items() if stem not in images]
    pairs = {rel: label_maps[stem] for stem, rel in images.items() if stem in label_maps}
    return sorted(pairs), pairs, skipped


def pair_classes(root: str, label_rels: list[str]) -> tuple[list[dict], Labeler]:
    """The classes of a pair input: `labels.json`'s, else 0..the largest id of its index label maps."""
    classes = layout.read_labels_json(root)
    if classes is not None:
        return classes, Labeler(tuple(tuple(c) for c in layout.class_colors(classes)))
    largest = 0
    for rel in label_rels:
        try:
            with Image.open(os.path.join(root, rel)) as image:
                if image.mode in INDEX_MODES:
                    largest = max(largest, int(np.asarray(image, np.uint8).max()))
        except Exception:
            continue  # unreadable: skipped later, with its reason
    classes = layout.default_classes(min(largest + 1, layout.MAX_CLASSES))
    return classes, Labeler(tuple(tuple(c) for c in layout.class_colors(classes)), index_only=True)
