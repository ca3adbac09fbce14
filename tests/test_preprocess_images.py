"""Every bad input of issue 2: decoded correctly or skipped with a reason, and a run over all of them never crashes.

Unreadable files: the tests run as root, for whom chmod 000 changes nothing, so a permission error is simulated by
making `storage.read_bytes` raise PermissionError for one file (the real chmod test runs only when not root).
FIFOs, dangling links and symlink loops are real file-system objects.
"""
from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from artifacts import dataset as layout
from artifacts import storage
from preprocess import images, pipeline, records


# ---------------------------------------------------------------- builders


def encoded(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def noise_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose IHDR claims width x height RGB pixels (the pixel data is absent)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    whole = encoded(Image.fromarray(noise_rgb(64, 64)), "JPEG", quality=95)
    return whole[: len(whole) // 2]


def cmyk_jpeg() -> bytes:
    return encoded(Image.new("CMYK", (16, 12), (0, 255, 255, 0)), "JPEG", quality=100)  # pure red


def png16() -> bytes:
    values = np.array([[0, 257 * 128, 65535, 1000]], dtype=np.uint16)
    return encoded(Image.fromarray(values))


def paletted_png_with_transparency() -> bytes:
    image = Image.new("P", (4, 2), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 black (transparent), 1 blue
    image.putpixel((3, 1), 1)
    return encoded(image, transparency=0)


def rgba_png() -> bytes:
    pixels = np.zeros((1, 3, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (255, 0, 0, 0)  # fully transparent
    pixels[0, 2] = (0, 0, 0, 128)  # half-transparent black
    return encoded(Image.fromarray(pixels, "RGBA"))


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_png() -> bytes:
    """40 wide x 20 high: left half red, right half blue; EXIF orientation 6 (display rotated 90° clockwise)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.fromarray(pixels), exif=exif.tobytes())


# ---------------------------------------------------------------- decoding, case by case


def test_modes_become_rgb_uint8():
    gray = images.decode_rgb(encoded(Image.new("L", (5, 3), 77)))
    assert gray.shape == (3, 5, 3) and gray.dtype == np.uint8 and (gray == 77).all()
    red = images.decode_rgb(cmyk_jpeg())
    assert red.shape == (12, 16, 3) and np.abs(red.astype(int) - (255, 0, 0)).max() <= 3
    deep = images.decode_rgb(png16())
    assert deep[0, :, 0].tolist() == [0, 128, 255, 4] and (deep[..., 0] == deep[..., 2]).all()
    one = images.decode_rgb(encoded(Image.new("RGB", (1, 1), (10, 20, 30))))
    assert one.tolist() == [[[10, 20, 30]]]
    bilevel = images.decode_rgb(encoded(Image.new("1", (2, 2), 1), "BMP"))
    assert (bilevel == 255).all()
    webp = images.decode_rgb(encoded(Image.new("RGB", (6, 4), (0, 200, 0)), "WEBP", lossless=True))
    assert webp.shape == (4, 6, 3) and (webp == (0, 200, 0)).all()


def test_transparency_is_composited_over_white():
    palette = images.decode_rgb(paletted_png_with_transparency())
    assert palette[0, 0].tolist() == [255, 255, 255] and palette[1, 3].tolist() == [0, 0, 255]
    rgba = images.decode_rgb(rgba_png())
    assert rgba[0, 0].tolist() == [255, 0, 0] and rgba[0, 1].tolist() == [255, 255, 255]
    assert np.abs(rgba[0, 2].astype(int) - 127).max() <= 1  # half black over white
    gray_alpha = images.decode_rgb(encoded(Image.new("LA", (2, 2), (0, 0))))
    assert (gray_alpha == 255).all()


def test_serving_decode_composites_transparency_exactly_as_preprocessing():
    """The in-graph decode (records.decode_rgb, used by every serving graph) equals PIL's flattening bit for bit:
    exhaustively over (colour, alpha), and for RGBA / LA / palette+tRNS / RGB+tRNS PNGs and a transparent GIF."""
    import tensorflow as tf

    colour, alpha = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8), indexing="ij")
    rgba = np.stack([colour, colour // 2, 255 - colour, alpha], axis=-1)  # [256, 256, 4]
    pil = Image.alpha_composite(Image.new("RGBA", (256, 256), (255, 255, 255, 255)), Image.fromarray(rgba))
    np.testing.assert_array_equal(records.composite_over_white(tf.constant(rgba)).numpy(),
                                  np.asarray(pil.convert("RGB")))
    palette_image = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) % 4, "P")
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9] + [0] * 756)
    cases = {"rgba": rgba_png(), "la": encoded(Image.fromarray(rgba[:9, :7, 2:], "LA")),
             "palette": paletted_png_with_transparency(), "gif": encoded(palette_image, "GIF", transparency=2),
             "opaque gif": encoded(palette_image, "GIF"),
             "rgb+trns": encoded(Image.fromarray(rgba[:6, :6, :3]), transparency=(0, 0, 255))}
    for name, data in cases.items():
        np.testing.assert_array_equal(records.decode_rgb(tf.constant(data)).numpy(), images.decode_rgb(data),
                                      err_msg=name)
    assert (records.decode_rgb(tf.constant(cases["gif"])).numpy()[0, 2] == 255).all()  # transparent: white


def test_animated_gif_gives_first_frame_and_exif_orientation_is_applied():
    first = images.decode_rgb(animated_gif())
    assert first.shape == (8, 8, 3) and (first == (255, 0, 0)).all()
    rotated = images.decode_rgb(exif_rotated_png())
    assert rotated.shape == (40, 20, 3)  # portrait after rotation
    assert rotated[0, 10].tolist() == [255, 0, 0] and rotated[-1, 10].tolist() == [0, 0, 255]


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"just some notes, not a JPEG\n", "not a JPEG, PNG, GIF, BMP or WebP image"),
    (truncated_jpeg(), "truncated"),
    (encoded(Image.new("RGB", (4, 4)), "TIFF"), "not a JPEG, PNG, GIF, BMP or WebP image"),
])
def test_unusable_bytes_give_a_reason(data, reason):
    with pytest.raises(images.UnusableImage, match=reason):
        images.decode_rgb(data)


@pytest.mark.parametrize("width, height", [(30000, 30000), (10000, 9000)])  # 900 and 90 megapixels
def test_oversized_header_is_refused_before_decoding(width, height):
    data = png_header_only(width, height)
    assert len(data) < 200
    start = time.perf_counter()
    with pytest.raises(images.UnusableImage, match="image too large"):
        images.decode_rgb(data)
    assert time.perf_counter() - start < 1.0  # decoding 30000x30000 (2.7 GB) would take far longer


def test_pixel_count_check():
    images.check_pixel_count(images.MAX_PIXELS, 1)
    with pytest.raises(images.UnusableImage, match="too large"):
        images.check_pixel_count(images.MAX_PIXELS + 1, 1)
    with pytest.raises(images.UnusableImage, match="no pixels"):
        images.check_pixel_count(0, 10)


def test_discovery_is_recursive_and_case_insensitive(tmp_path):
    for rel in ("a.JPG", "b.jpeg", "c.Png", "d.gif", "e.bmp", "f.WebP", "sub/g.png", "notes.txt", "h.tiff", "jpg"):
        storage.write_bytes(str(tmp_path / rel), b"x")
    assert images.discover_images(str(tmp_path)) == ["a.JPG", "b.jpeg", "c.Png", "d.gif", "e.bmp", "f.WebP",
                                                     "sub/g.png"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can read a chmod 000 file; the simulated PermissionError below covers the path")
def test_real_permission_denied_is_a_skip_reason(tmp_path):
    path = tmp_path / "locked.png"
    path.write_bytes(encoded(Image.new("RGB", (2, 2))))
    path.chmod(0)
    with pytest.raises(images.UnusableImage, match="Permission denied"):
        images.load_rgb(str(path))


# ---------------------------------------------------------------- one run over all of them


def bad_input_folder(root) -> tuple[set[str], dict[str, str]]:
    """Builds the folder; returns (paths that must be used, {path: reason fragment} that must be skipped)."""
    usable = {
        "cmyk.jpg": cmyk_jpeg(), "deep16.png": png16(), "paletted.png": paletted_png_with_transparency(),
        "rgba.png": rgba_png(), "gray.png": encoded(Image.new("L", (30, 20), 128)), "anim.gif": animated_gif(),
        "one_pixel.png": encoded(Image.new("RGB", (1, 1), (9, 9, 9))), "rotated.png": exif_rotated_png(),
        "panorama.png": encoded(Image.fromarray(noise_rgb(20, 400))), "nested/dir/UPPER.JPG":
            encoded(Image.fromarray(noise_rgb(40, 50)), "JPEG"),
    }
    unusable = {
        "truncated.jpg": (truncated_jpeg(), "truncated"), "empty.jpg": (b"", "empty file"),
        "text.jpg": (b"hello\n", "not a JPEG"), "huge.png": (png_header_only(30000, 30000), "image too large"),
    }
    for rel, data in list(usable.items()) + [(rel, data) for rel, (data, _) in unusable.items()]:
        storage.write_bytes(os.path.join(root, rel), data)
    for rel in ("notes.txt", ".DS_Store", "nested/readme.md"):  # not images: ignored, not "skipped"
        storage.write_bytes(os.path.join(root, rel), b"ignore me")
    os.mkfifo(os.path.join(root, "pipe.png"))
    os.symlink("does-not-exist.png", os.path.join(root, "dangling.png"))
    os.symlink("selfloop.jpg", os.path.join(root, "selfloop.jpg"))
    os.symlink("..", os.path.join(root, "nested", "dir", "back_up"))  # directory loop
    storage.write_bytes(os.path.join(root, "locked.png"), encoded(Image.new("RGB", (3, 3))))
    reasons = {rel: fragment for rel, (_, fragment) in unusable.items()}
    reasons.update({"pipe.png": "not a regular file", "dangling.png": "No such file",
                    "selfloop.jpg": "symbolic links", "locked.png": "Permission denied"})
    return set(usable), reasons


def test_run_over_every_bad_input_never_crashes(tmp_path, monkeypatch):
    source, out = str(tmp_path / "in"), str(tmp_path / "out")
    usable, reasons = bad_input_folder(source)
    real_read = storage.read_bytes
    locked = os.path.join(source, "locked.png")

    def read_bytes(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_read(path)

    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    summary = pipeline.run(source, out, pipeline.Options(workers=1, val_fraction=0.0), progress=False)

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    skipped = {item["path"]: item["reason"] for item in manifest["skipped"]}
    assert set(skipped) == set(reasons)
    for rel, fragment in reasons.items():
        assert fragment in skipped[rel], (rel, skipped[rel])
    assert manifest["counts"] == {"train": len(usable), "val": 0}
    stored = {}
    for example in layout.split_files(out, "train"):
        for serialized in _tf().data.TFRecordDataset(example):
            features = records.parse_example(serialized)
            stored[features["image/filename"].numpy().decode()] = (int(features["image/height"]),
                                                                   int(features["image/width"]))
    assert set(stored) == usable  # the directory loop did not duplicate nested/dir/UPPER.JPG
    assert stored["panorama.png"] == (72, 144) and stored["one_pixel.png"] == (72, 72)
    assert stored["rotated.png"] == (144, 72)  # 20x40 portrait after EXIF rotation, longer side capped at 2x
    assert summary.line() == f"{len(usable) + len(reasons)} images: {len(usable)} train, 0 val, " \
                             f"{len(reasons)} skipped → {out}"


def _tf():
    import tensorflow as tf

    return tf
