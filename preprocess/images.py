"""One image file -> the pixels genart stores: discovery, safe decoding, orientation, mode conversion, encoding.

Owns:
- `discover_images`: every file below a folder (local or gs://, recursive, via `storage.walk_files`) whose name ends
  in one of `IMAGE_EXTENSIONS` (case-insensitive); other files are ignored.
- `load_rgb`: read + decode one file with PIL into an RGB uint8 array [H, W, 3], or raise `UnusableImage` whose
  message is the reason the file is skipped. PIL only decodes, orients and converts here:
    * the whole file must decode (`ImageFile.LOAD_TRUNCATED_IMAGES` stays False: truncated -> skipped, never
      grey-filled); only the formats genart accepts are tried (JPEG incl. MPO, PNG, GIF, BMP, WebP), by content;
    * decompression bombs: the header size is checked before any pixel is decoded (`MAX_PIXELS`, PIL's own
      default limit), and PIL's DecompressionBombWarning/Error count as errors;
    * EXIF orientation is applied (`ImageOps.exif_transpose`); a corrupt EXIF block leaves the image unrotated;
    * animated GIF / APNG / WebP: the first frame;
    * every mode becomes RGB: transparency (LA, PA, RGBA, P or L/RGB with a tRNS colour) is composited over
      WHITE (the paper colour drawings on transparent backgrounds expect); 16/32-bit integer modes (I;16, I) are
      scaled from 0..65535; float mode F is taken as 0..1 (or 0..255 when it exceeds 1); CMYK, YCbCr, 1, L, P
      use PIL's conversion.
- `StoredImageEncoder` (`encoder_for`: one per setting and process): the crop/resize to what a record stores,
  through `preprocess.records`' shared TF functions (`center_crop_resize` or `resize_shorter_side`), then
  PNG-encoded by TF (lossless; a fast zlib level), so the stored pixels are exactly the TF function's uint8 output.
  TensorFlow is imported only when an encoder is built.
"""
from __future__ import annotations

import functools
import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from artifacts import storage

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "WEBP")  # JPEG covers MPO (multi-picture) files
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # ~89.5 megapixels: PIL's default decompression-bomb limit
BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white
PNG_COMPRESSION = 1  # zlib level of stored PNGs: ~1.5 ms/image faster than 6 on photos, ~10% larger (bench/)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never silently grey-filled

_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class UnusableImage(Exception):
    """A file that cannot become a training image; str(exc) is the reason recorded in manifest["skipped"]."""


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def discover_images(root: str) -> list[str]:
    """Paths (relative to `root`, "/"-separated, sorted) of every file with an image extension below `root`."""
    return sorted(rel for rel in storage.walk_files(root) if is_image_name(rel))


def load_rgb(path: str) -> np.ndarray:
    """Read and decode one image file -> uint8 [H, W, 3]; raises UnusableImage with the reason otherwise."""
    try:
        data = storage.read_bytes(path)
    except OSError as exc:
        raise UnusableImage(f"cannot read file: {exc.strerror or exc}") from None
    return decode_rgb(data)


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 [H, W, 3] (see the module docstring for the rules)."""
    if not data:
        raise UnusableImage("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                check_pixel_count(*image.size)
                image.load()  # the first frame, whole: raises on truncation
                return to_rgb_array(apply_exif_orientation(image))
        except UnusableImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnusableImage(f"image too large (decompression-bomb guard): {exc}") from None
        except UnidentifiedImageError:
            raise UnusableImage("not a JPEG, PNG, GIF, BMP or WebP image") from None
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error... on bad data
            raise UnusableImage(f"cannot decode: {_describe(exc)}") from None


def check_pixel_count(width: int, height: int) -> None:
    """Refuse, from the header alone, images that are empty or too large to decode safely."""
    if width < 1 or height < 1:
        raise UnusableImage(f"image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise UnusableImage(f"image too large: {width}x{height} pixels is over the "
                            f"{MAX_PIXELS / 1e6:.1f}-megapixel limit")


def apply_exif_orientation(image: Image.Image) -> Image.Image:
    try:
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of the (usual) upright image
    except Exception:  # corrupt EXIF: keep the pixels as stored rather than lose the image
        pass
    return image


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> C-contiguous uint8 [H, W, 3]."""
    if image.mode in _INTEGER_MODES or image.mode == "F":
        gray = _deep_gray_to_uint8(np.asarray(image), is_float=image.mode == "F")
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flattened = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        flattened.alpha_composite(rgba)
        image = flattened
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _deep_gray_to_uint8(values: np.ndarray, is_float: bool) -> np.ndarray:
    values = values.astype(np.float64)
    if is_float:
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    return np.clip(np.round(np.nan_to_num(values * scale)), 0, 255).astype(np.uint8)


def _describe(exc: Exception) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class StoredImageEncoder:
    """RGB uint8 array -> (PNG bytes, height, width) of the image a record stores.

    center_crop=True: the central square at `image_size` (`records.center_crop_resize`); otherwise the shorter side
    at `records.load_size_for(image_size)`, the longer side center-cropped to at most twice that
    (`records.resize_shorter_side`). One traced `tf.function` per encoder, so per-image overhead stays small.
    """

    def __init__(self, image_size: int, center_crop: bool):
        import tensorflow as tf

        from preprocess import records

        self.image_size, self.center_crop = image_size, center_crop
        if center_crop:
            def resize(image):
                return records.center_crop_resize(image, image_size)
        else:
            load_size = records.load_size_for(image_size)

            def resize(image):
                return records.resize_shorter_side(image, load_size)

        # autograph off: the records functions use tf.cond explicitly, and tracing drops from ~0.6 s to ~0.1 s
        # of CPU, paid by every worker process. CPU: small images are not worth a trip to a GPU.
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
        def encode(image):
            with tf.device("/CPU:0"):
                stored = resize(image)
                return tf.io.encode_png(stored, compression=PNG_COMPRESSION), tf.shape(stored)

        self._encode = encode

    def __call__(self, rgb: np.ndarray) -> tuple[bytes, int, int]:
        png, shape = self._encode(rgb)
        height, width, _ = shape.numpy().tolist()
        return png.numpy(), height, width


@functools.lru_cache(maxsize=8)
def encoder_for(image_size: int, center_crop: bool) -> StoredImageEncoder:
    """One traced encoder per setting and process (tracing a tf.function again for every run costs time)."""
    return StoredImageEncoder(image_size, center_crop)
