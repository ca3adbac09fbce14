"""Encoded-image inputs: what decoding one will cost, read from its headers without decoding it.

`decoded_pixels(data)` -> (kind, pixels): the pixels the serving graph's decoder allocates — for a GIF every
frame (TensorFlow's GIF decoder decodes them all, each on the full logical screen), read by walking the GIF's
blocks; for the other kinds PIL's header (width x height x frames). `ImageBudget` charges each image of a request
against `--max-image-pixels` and the request's `--max-request-pixels`, so a decompression bomb is refused before
any decoding. Images are then decoded once, by the graph; only when the graph rejects a batch does
`first_undecodable` decode them one at a time to name the guilty instance. Errors are `ValueError`s saying what
is wrong with the image (`core` adds which instance and input).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from serving.server.limits import DEFAULT_MAX_IMAGE_PIXELS, Limits

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
)
_GIF_TRAILER, _GIF_EXTENSION, _GIF_IMAGE = 0x3B, 0x21, 0x2C


def image_kind(data: bytes) -> str:
    """'JPEG', 'PNG', 'GIF', 'BMP', 'WebP' or 'JPEG XL' from the magic bytes; ValueError for anything else."""
    kind = next((name for magic, name in _IMAGE_MAGIC if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None:
        head = data[:8].hex(" ") if data else "empty"
        raise ValueError(f"not an encoded image (JPEG, PNG, GIF, BMP or WebP expected; first bytes: {head})")
    return kind


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a chain of GIF data sub-blocks (each a length byte, then that many bytes; 0 ends)."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise ValueError("undecodable GIF image: truncated data")


def gif_pixels(data: bytes, stop_above: int | None = None) -> int:
    """Pixels TensorFlow's GIF decoder allocates: for every frame the larger of the logical screen and the frame.
    Stops counting (and returns) once the count is above `stop_above`."""
    if len(data) < 13:
        raise ValueError("undecodable GIF image: truncated header")
    screen = int.from_bytes(data[6:8], "little") * int.from_bytes(data[8:10], "little")
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # global colour table
    pixels = frames = 0
    while pos < len(data) and data[pos] != _GIF_TRAILER:
        block = data[pos]
        if block == _GIF_EXTENSION:
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == _GIF_IMAGE:
            if pos + 11 > len(data):
                raise ValueError("undecodable GIF image: truncated image descriptor")
            width, height = int.from_bytes(data[pos + 5:pos + 7], "little"), int.from_bytes(data[pos + 7:pos + 9],
                                                                                             "little")
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # local colour table, LZW code size
            pos = _skip_sub_blocks(data, pos)
            frames += 1
            pixels += max(screen, width * height)
            if stop_above is not None and pixels > stop_above:
                break
        else:
            break  # bytes after the last block: the decoder stops there too
    if not frames:
        raise ValueError("undecodable GIF image: no image data")
    return pixels


def decoded_pixels(data: bytes, stop_above: int | None = None) -> tuple[str, int]:
    """(kind, pixels the decoder will allocate, all frames counted); ValueError if the header is unreadable."""
    kind = image_kind(data)
    if kind == "GIF":
        return kind, gif_pixels(data, stop_above)
    if kind == "JPEG XL":
        return kind, 0  # the serving graph refuses it before decoding anything
    from PIL import Image  # reads only the header

    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
            frames = max(1, int(getattr(header, "n_frames", 1) or 1))
    except Image.DecompressionBombError as err:
        raise ValueError(f"{kind} image too large to decode ({err})") from None
    except Exception as err:  # noqa: BLE001 - any reader failure means: not decodable
        raise ValueError(f"undecodable {kind} image: {err}") from None
    return kind, width * height * frames


@dataclass
class ImageBudget:
    """The decoded pixels one request may cost: each image at most `max_image_pixels` (all frames counted), all
    of them together at most `max_request_pixels` (None: no per-request budget)."""
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_request_pixels: int | None = None
    used: int = 0

    @classmethod
    def for_request(cls, limits: Limits | None = None) -> "ImageBudget":
        """A fresh budget for one request under `limits` (default: the default limits)."""
        limits = limits or Limits()
        return cls(limits.max_image_pixels, limits.max_request_pixels)

    def charge(self, data: bytes) -> str:
        """Count one encoded image; its kind, or ValueError if it is not an image or over a budget."""
        kind, pixels = decoded_pixels(data, stop_above=self.max_image_pixels)
        if pixels > self.max_image_pixels:
            raise ValueError(f"{kind} image decodes to more than the {self.max_image_pixels} pixels allowed per "
                             f"image, all frames counted (--max-image-pixels)")
        if self.max_request_pixels is not None and self.used + pixels > self.max_request_pixels:
            raise ValueError(f"the request's images decode to more than the {self.max_request_pixels} pixels "
                             f"allowed per request (--max-request-pixels)")
        self.used += pixels
        return kind


def first_undecodable(images) -> tuple[int, str] | None:
    """(position, message) of the first of `images` (encoded bytes) the serving graph's decode rejects, decoding
    them one at a time (after the graph refused a batch); None if every one decodes."""
    import tensorflow as tf

    from preprocess.records import decode_rgb  # the decode the exported serving graph runs
    from serving.server.model import public_message

    for position, data in enumerate(images):
        try:
            decode_rgb(tf.constant(data))
        except tf.errors.OpError as err:
            try:
                kind = image_kind(data)
            except ValueError as not_image:
                return position, str(not_image)
            return position, f"undecodable {kind} image: {public_message(err)}"
    return None
