#!/usr/bin/env python3
"""Generate genart's bundled sample data in `examples/` — procedural generative art, seeded and offline.

    python scripts/make_examples.py [--out examples]

- `examples/images/<motif>/NNN.{jpg,png}`: 300 small (64-96 px, mixed aspect) images in five motifs — soft radial
  blobs, concentric rings, warped stripes, rosettes and two-centre moiré — each drawn through one of a dozen
  palettes, the way an artist's series shares a handful of motifs and colour schemes.
- `examples/unpaired/{trainA,trainB,testA,testB}`: a CycleGAN set (48 px). Domain A is rosettes and rings in warm
  palettes; domain B is the same kind of picture restyled by one fixed colour remap (RGB -> BRG channel rotation),
  drawn from DIFFERENT seeds than A, so the two domains are unpaired but the mapping is learnable.
- `examples/captioned/`: coloured shapes with `captions.csv` for text -> image (`scripts/captioned.py`).
- `examples/landscapes/{images,labels}/` + `labels.json`: SPADE's image + label map pairs (`scripts/landscapes.py`).

Every run rewrites exactly the same files (numpy's seeded generator + PIL encoders); nothing is downloaded.
"""
from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
from landscapes import make_landscapes
from PIL import Image

from captioned import FOLDER as CAPTIONED, make_captioned

PALETTES = {
    "ember": ["#1b0c0c", "#7a1f1f", "#e0572b", "#f7b267", "#fff3c4"],
    "lagoon": ["#03161d", "#0b4f6c", "#01baef", "#a5e6ba", "#fbfbff"],
    "moss": ["#10170f", "#2f4a26", "#6b8f3a", "#c9d48b", "#f4f1de"],
    "dusk": ["#0d0221", "#3b185f", "#a12568", "#fec260", "#fff7e0"],
    "ink": ["#f6f1e7", "#c8bfae", "#6d6875", "#2b2d42", "#0b0b0f"],
    "candy": ["#ffe5ec", "#ffb3c6", "#ff8fab", "#fb6f92", "#6a0572"],
    "glacier": ["#e8f1f2", "#b3d4e0", "#5a8fa8", "#1f4e6b", "#0a1f2e"],
    "saffron": ["#2d1e0f", "#8c4b12", "#e09f3e", "#f2d492", "#fdf6e3"],
    "jade": ["#04151f", "#183a37", "#2a9d8f", "#e9c46a", "#f4a261"],
    "orchid": ["#140f2d", "#4f1271", "#9d4edd", "#e0aaff", "#fdf4ff"],
    "rust": ["#1a1a1a", "#5e2c04", "#b5651d", "#e6b17e", "#f3e9dc"],
    "neon": ["#050505", "#00f5d4", "#00bbf9", "#fee440", "#f15bb5"],
}
WARM = ["ember", "dusk", "saffron", "rust", "candy"]
MOTIF_COUNT = 60
UNPAIRED_COUNTS = {"train": 60, "test": 10}


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def paint(t: np.ndarray, palette: str) -> np.ndarray:
    """Scalar field in [0, 1] -> uint8 RGB through the palette's colour stops (linear between stops)."""
    stops = np.stack([_rgb(c) for c in PALETTES[palette]])
    x = np.clip(t, 0.0, 1.0) * (len(stops) - 1)
    low = np.minimum(np.floor(x).astype(int), len(stops) - 2)
    frac = (x - low)[..., None]
    return np.round(stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def grid(height: int, width: int):
    """Coordinates centred on the image, in units of its shorter half-side."""
    scale = min(height, width) / 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return (y - height / 2) / scale, (x - width / 2) / scale


def blobs(rng, height, width):
    y, x = grid(height, width)
    field = np.zeros_like(x)
    for _ in range(rng.integers(3, 8)):
        cy, cx, sigma = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.15, 0.6)
        field += rng.uniform(0.4, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))
    return field / field.max()


def rings(rng, height, width):
    y, x = grid(height, width)
    cy, cx = rng.uniform(-0.4, 0.4, size=2)
    radius = np.hypot(y - cy, x - cx)
    return 0.5 + 0.5 * np.sin(radius * rng.uniform(6, 18) + rng.uniform(0, 2 * np.pi)) * np.exp(-radius * 0.4)


def stripes(rng, height, width):
    y, x = grid(height, width)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    warp = rng.uniform(0.1, 0.5) * np.sin(v * rng.uniform(1, 4) + rng.uniform(0, 2 * np.pi))
    return 0.5 + 0.5 * np.sin((u + warp) * rng.uniform(5, 14))


def rosettes(rng, height, width):
    y, x = grid(height, width)
    radius, theta = np.hypot(y, x), np.arctan2(y, x)
    petals, twist = rng.integers(3, 10), rng.uniform(-1.5, 1.5)
    edge = 0.45 + rng.uniform(0.15, 0.35) * np.cos(petals * (theta + twist * radius))
    inner = 0.5 + 0.5 * np.cos(petals * 2 * theta) * np.exp(-radius * 3)
    return np.where(radius < edge, 0.55 + 0.45 * inner * (1 - radius / np.maximum(edge, 1e-6)),
                    0.25 * np.exp(-(radius - edge) * 2))


def moire(rng, height, width):
    y, x = grid(height, width)
    (ay, ax), (by, bx) = rng.uniform(-0.6, 0.6, size=(2, 2))
    freq = rng.uniform(10, 22)
    return 0.5 + 0.25 * (np.sin(np.hypot(y - ay, x - ax) * freq) + np.sin(np.hypot(y - by, x - bx) * freq))


MOTIFS = {"blobs": blobs, "rings": rings, "stripes": stripes, "rosettes": rosettes, "moire": moire}


def save(image: np.ndarray, path: str, as_png: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if as_png:
        Image.fromarray(image).save(path, "PNG", optimize=True)
    else:
        Image.fromarray(image).save(path, "JPEG", quality=88)


def make_gallery(out: str) -> int:
    palettes = sorted(PALETTES)
    written = 0
    for motif_index, (motif, draw) in enumerate(MOTIFS.items()):
        for i in range(MOTIF_COUNT):
            rng = np.random.default_rng([motif_index, i])
            height, width = (int(v) for v in rng.integers(64, 97, size=2))
            palette = palettes[int(rng.integers(len(palettes)))]
            as_png = i % 6 == 0
            save(paint(draw(rng, height, width), palette),
                 os.path.join(out, "images", motif, f"{i:03d}.{'png' if as_png else 'jpg'}"), as_png)
            written += 1
    return written


def restyle(image: np.ndarray) -> np.ndarray:
    """The fixed A -> B colour remap: rotate channels RGB -> BRG."""
    return image[..., [2, 0, 1]]


def make_unpaired(out: str, size: int = 48) -> int:
    written = 0
    for domain, seed_base in (("A", 10_000), ("B", 20_000)):  # different seeds: unpaired samples
        for split, count in UNPAIRED_COUNTS.items():
            for i in range(count):
                rng = np.random.default_rng([seed_base, 0 if split == "train" else 1, i])
                draw = rosettes if i % 2 == 0 else rings
                image = paint(draw(rng, size, size), WARM[int(rng.integers(len(WARM)))])
                if domain == "B":
                    image = restyle(image)
                save(image, os.path.join(out, "unpaired", f"{split}{domain}", f"{i:03d}.jpg"), as_png=False)
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "examples"))
    args = parser.parse_args()
    for generated in ("images", "unpaired", CAPTIONED, "landscapes"):
        shutil.rmtree(os.path.join(args.out, generated), ignore_errors=True)
    gallery, unpaired = make_gallery(args.out), make_unpaired(args.out)
    captioned, pairs = make_captioned(args.out), make_landscapes(args.out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {gallery} gallery images, {unpaired} unpaired images, {captioned} captioned images and {pairs} "
          f"landscape pairs to {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
