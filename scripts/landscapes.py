"""Procedural landscape pairs for SPADE (INTERFACE.md section 11): `examples/landscapes/` holds `images/NNN.jpg`,
`labels/NNN.png` (colour label maps) and `labels.json` with seven classes — sky, cloud, mountain, water, grass,
tree, sand.

Each scene is a label map first (a horizon, a jagged mountain ridge, clouds, a lake or sea with a beach, trees on
the grass), then painted class by class with procedural textures (smooth value noise, gradients, ripples, snow on
high rock), so the image follows its label map exactly as a photo follows its segmentation. Seeded: every run
writes the same files.
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

CLASSES = {  # name -> label colour (the Draw tab's palette)
    "sky": (120, 180, 250), "cloud": (240, 240, 240), "mountain": (140, 110, 90), "water": (30, 80, 210),
    "grass": (90, 190, 70), "tree": (20, 110, 40), "sand": (235, 215, 150),
}
IDS = {name: index for index, name in enumerate(CLASSES)}
COUNT = 160
WIDTH, HEIGHT = 96, 64


def value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random `cells`-wide grid, bilinearly upsampled."""
    coarse = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float64) / 255.0


def layout(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """uint8 [height, width] class ids of one scene."""
    y, x = np.mgrid[0:height, 0:width]
    horizon = int(height * rng.uniform(0.45, 0.6))
    ids = np.full((height, width), IDS["grass"], np.uint8)
    ids[y < horizon] = IDS["sky"]
    for _ in range(int(rng.integers(1, 4))):  # clouds: flat ellipses high in the sky
        cy, cx = rng.uniform(0.05, 0.35) * height, rng.uniform(0, width)
        ry, rx = rng.uniform(2, 5), rng.uniform(6, 16)
        ids[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] = IDS["cloud"]
    if rng.random() < 0.8:  # a mountain ridge from the horizon up
        phase, peaks = rng.uniform(0, 6.3, 3), rng.uniform(0.15, 0.4)
        ridge = horizon - height * peaks * (0.6 + 0.25 * np.sin(x[0] / width * 6 + phase[0])
                                            + 0.15 * np.sin(x[0] / width * 17 + phase[1]))
        ridge += rng.normal(0, 0.6, width).cumsum() * 0.3
        ids[(y >= ridge[None, :]) & (y < horizon)] = IDS["mountain"]
    if rng.random() < 0.75:  # water below the horizon, with a sand beach along it
        top = horizon
        shore = (horizon + (height - horizon) * rng.uniform(0.3, 0.7)
                 + 3 * np.sin(x[0] / width * rng.uniform(3, 8) + rng.uniform(0, 6.3)))
        beach = shore + rng.uniform(2, 5)
        ids[(y >= top) & (y < shore[None, :])] = IDS["water"]
        ids[(y >= shore[None, :]) & (y < beach[None, :])] = IDS["sand"]
    grass = np.argwhere(ids == IDS["grass"])
    for _ in range(int(rng.integers(0, 5)) if len(grass) else 0):  # trees: triangles standing on the grass
        base_y, base_x = grass[int(rng.integers(len(grass)))]
        tall, half = rng.uniform(6, 14), rng.uniform(2, 5)
        inside = (y <= base_y) & (y >= base_y - tall) & (np.abs(x - base_x) <= half * (y - base_y + tall) / tall)
        ids[inside] = IDS["tree"]
    return ids


def paint(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB [H, W, 3]: every class painted with its texture."""
    height, width = ids.shape
    y = np.mgrid[0:height, 0:width][0] / height
    noise = value_noise(rng, height, width, 8)[..., None]
    fine = value_noise(rng, height, width, 24)[..., None]
    textures = {
        "sky": np.array([70, 130, 220]) * (1 - y[..., None]) + np.array([180, 215, 250]) * y[..., None] * 1.1,
        "cloud": 215 + 40 * noise - 20 * fine,
        "mountain": np.array([110, 95, 85]) * (0.7 + 0.6 * noise) + np.where(y[..., None] < 0.3, 90, 0) * fine,
        "water": np.array([25, 70, 150]) * (0.8 + 0.4 * fine)
        + 25 * np.sin(np.mgrid[0:height, 0:width][0] * 2.2 + 6 * noise[..., 0])[..., None],
        "grass": np.array([70, 150, 50]) * (0.7 + 0.5 * noise) + 30 * (fine - 0.5),
        "tree": np.array([25, 80, 30]) * (0.6 + 0.6 * fine),
        "sand": np.array([220, 195, 140]) * (0.9 + 0.2 * fine) - 15 * noise,
    }
    image = np.zeros((height, width, 3))
    for name, texture in textures.items():
        mask = ids == IDS[name]
        image[mask] = np.broadcast_to(texture, (height, width, 3))[mask]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def make_landscapes(out: str, count: int = COUNT) -> int:
    """Write `out/landscapes/` (images/, labels/, labels.json); returns the number of pairs."""
    root = os.path.join(out, "landscapes")
    for folder in ("images", "labels"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    palette = np.asarray(list(CLASSES.values()), np.uint8)
    for i in range(count):
        rng = np.random.default_rng([30_000, i])
        ids = layout(rng)
        Image.fromarray(paint(ids, rng)).save(os.path.join(root, "images", f"{i:03d}.jpg"), quality=90)
        Image.fromarray(palette[ids]).save(os.path.join(root, "labels", f"{i:03d}.png"), optimize=True)
    with open(os.path.join(root, "labels.json"), "w") as f:
        json.dump({"classes": [{"name": name, "color": list(color)} for name, color in CLASSES.items()]}, f,
                  indent=1)
        f.write("\n")
    return count
