"""The procedural captioned set for text -> image (`examples/captioned/`): a coloured shape on a plain
background, captioned "<colour> <shape> on <background>" in `captions.csv`, and the hue check used to score it.

6 colours of well separated hue x 3 shapes x 3 neutral backgrounds = 54 captions, IMAGES_PER_CAPTION images
each (position and size jittered). Preprocessing's caption-disjoint split holds out whole captions whose words
all stay in train, so its val prompts are unseen combinations of seen words ("red square on black" while "red
square on white" and "blue square on black" are trained on). `dominant_colour` names the colour of an image's
saturated pixels (the hue nearest one of COLOURS), so a test can check that a prompt's colour word is painted.
"""
from __future__ import annotations

import csv
import os

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (230, 40, 40), "yellow": (230, 210, 40), "green": (40, 190, 60), "cyan": (40, 200, 210),
           "blue": (50, 70, 230), "magenta": (210, 50, 200)}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = {"white": (245, 245, 245), "black": (15, 15, 15), "gray": (128, 128, 128)}
IMAGES_PER_CAPTION = 6
SIZE = 32
FOLDER = "captioned"
CAPTIONS_CSV = "captions.csv"  # artifacts.captions.CAPTIONS_CSV (scripts stay importable without the package)
MIN_SATURATION, MIN_VALUE = 0.35, 0.25  # a pixel's hue counts when it is this colourful


def caption(colour: str, shape: str, background: str) -> str:
    return f"{colour} {shape} on {background}"


def colour_word(text: str) -> str | None:
    """The colour named in a caption (None when it names none)."""
    return next((word for word in text.lower().split() if word in COLOURS), None)


def draw(rng: np.random.Generator, colour: str, shape: str, background: str, size: int = SIZE) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUNDS[background])
    pen = ImageDraw.Draw(image)
    radius = size * rng.uniform(0.22, 0.34)
    cx, cy = size / 2 + rng.uniform(-0.12, 0.12) * size, size / 2 + rng.uniform(-0.12, 0.12) * size
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    fill = COLOURS[colour]
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
    return image


def make_captioned(out: str, seed: int = 4) -> int:
    """Write `out/captioned/*.png` and its captions.csv; return the number of images."""
    folder = os.path.join(out, FOLDER)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for colour in COLOURS:
        for shape in SHAPES:
            for background in BACKGROUNDS:
                for i in range(IMAGES_PER_CAPTION):
                    name = f"{colour}_{shape}_{background}_{i}.png"
                    draw(rng, colour, shape, background).save(os.path.join(folder, name), optimize=True)
                    rows.append((name, caption(colour, shape, background)))
    with open(os.path.join(folder, CAPTIONS_CSV), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "caption"])
        writer.writerows(rows)
    return len(rows)


def hue_degrees(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> (hue in degrees, saturation, value) arrays (HSV)."""
    x = rgb.astype(np.float64) / 255.0
    high, low = x.max(-1), x.min(-1)
    chroma = high - low
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hue = np.where(high == r, (g - b) / safe % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    return hue, np.where(high > 0, chroma / np.where(high > 0, high, 1.0), 0.0), high


def dominant_colour(rgb: np.ndarray) -> str | None:
    """The COLOURS name whose hue most of the image's colourful pixels are nearest to (None: no colourful pixel)."""
    hue, saturation, value = hue_degrees(rgb)
    mask = (saturation >= MIN_SATURATION) & (value >= MIN_VALUE)
    if not mask.any():
        return None
    names = list(COLOURS)
    references = np.array([hue_degrees(np.array(COLOURS[name], np.uint8))[0] for name in names])
    distance = np.abs(hue[mask][:, None] - references[None, :])
    nearest = np.argmin(np.minimum(distance, 360 - distance), axis=1)
    return names[int(np.bincount(nearest, minlength=len(names)).argmax())]


def hue_match(export_dir: str, prompts: list[str], per_prompt: int = 8) -> float:
    """The share of images the export's `text` signature paints for `prompts` (`per_prompt` keys each) whose
    dominant colour is the prompt's colour word."""
    import io

    import tensorflow as tf

    signature = tf.saved_model.load(export_dir).signatures["text"]
    texts = [text for text in prompts for _ in range(per_prompt)]
    keys = [str(i) for i in range(len(texts))]
    images = signature(text=tf.constant(texts), key=tf.constant(keys))["image_bytes"].numpy()
    painted = [dominant_colour(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))) for png in images]
    return float(np.mean([colour == colour_word(text) for colour, text in zip(painted, texts)]))
