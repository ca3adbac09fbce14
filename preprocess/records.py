"""The TFRecord format of genart's training data, and the one image function shared by training and serving.

Owns:
- the `tf.train.Example` feature spec (`image/encoded`, `image/format`, `image/height`, `image/width`,
  `image/filename`, and for labelled data `image/label`, an int64 class id, or `image/label_map`, an index PNG:
  `preprocess.label_maps`); shard names and the manifest are the dataset layout's (`artifacts.dataset`);
- the pixel pipeline: `center_crop_resize` / `resize_shorter_side` (antialiased `tf.image.resize`, rounded to
  uint8), `to_float` ([-1, 1]) and `decode_and_preprocess` — the exact function the exported serving graph calls,
  and the one the trainer calls on center-crop data, so train and serve preprocessing cannot drift apart;
- `make_dataset`: the `tf.data` reader the trainer uses (random crop + flip, or center crops passed through), each
  input pipeline of a distributed job reading its own shard of the records.
"""
from __future__ import annotations

import os

import tensorflow as tf

from artifacts.captions import CAPTION
from artifacts.labels import LABEL_MAP_FEATURE

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string, default_value=b"png"),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=b""),
}
LABEL = "image/label"
LABEL_FEATURE = {LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
CAPTION_FEATURE = {CAPTION: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
LABEL_MAP_FEATURES = {LABEL_MAP_FEATURE: tf.io.FixedLenFeature([], tf.string)}


def load_size_for(image_size: int) -> int:
    """Shorter-side size stored for random-crop data (INTERFACE.md section 1)."""
    return int(round(image_size * 1.125))


def make_example(png_bytes: bytes, height: int, width: int, filename: str, label: int | None = None,
                 caption: str | None = None, label_map: bytes | None = None) -> bytes:
    """One serialized tf.train.Example with the contract's features (`image/label` when `label` is given,
    `image/caption` when `caption` is, `image/label_map` when `label_map`, an index PNG of the same size, is)."""
    def _bytes(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = tf.train.Features(feature={
        "image/encoded": _bytes(png_bytes),
        "image/format": _bytes(b"png"),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/filename": _bytes(filename.encode("utf-8")),
        **({LABEL: _int(label)} if label is not None else {}),
        **({CAPTION: _bytes(caption.encode("utf-8"))} if caption is not None else {}),
        **({LABEL_MAP_FEATURE: _bytes(label_map)} if label_map is not None else {}),
    })
    # deterministic: map entries in key order, so the same image gives the same bytes in every process
    return tf.train.Example(features=features).SerializeToString(deterministic=True)


# ---------------------------------------------------------------- the shared pixel pipeline


def _round_to_uint8(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _resize(image: tf.Tensor, height, width, nearest: bool = False) -> tf.Tensor:
    """Antialiased bilinear resize of a uint8 image to uint8 (`nearest`: nearest-neighbour, for label maps, whose
    values are class ids and must never be interpolated); a no-op when the size already matches."""
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    size = tf.stack([height, width])
    if nearest:
        return tf.cond(same, lambda: image, lambda: tf.image.resize(image, size, method="nearest"))
    return tf.cond(
        same,
        lambda: image,
        lambda: _round_to_uint8(tf.image.resize(image, size, antialias=True)),
    )


def _central(image: tf.Tensor, crop_height, crop_width) -> tf.Tensor:
    """The central `crop_height` x `crop_width` window of an [H, W, C] image."""
    shape = tf.shape(image)
    top, left = (shape[0] - crop_height) // 2, (shape[1] - crop_width) // 2
    return image[top:top + crop_height, left:left + crop_width, :]


def center_crop_resize(image: tf.Tensor, image_size: int, nearest: bool = False) -> tf.Tensor:
    """uint8 [H, W, C] -> uint8 [image_size, image_size, C]: the central square, resized (`nearest`: label maps)."""
    side = tf.reduce_min(tf.shape(image)[:2])
    out = _resize(_central(image, side, side), image_size, image_size, nearest)
    return tf.ensure_shape(out, [image_size, image_size, image.shape[-1]])


def resize_shorter_side(image: tf.Tensor, load_size: int, nearest: bool = False) -> tf.Tensor:
    """uint8 [H, W, C] -> shorter side `load_size`, aspect kept, longer side center-cropped to <= 2 * load_size
    (`nearest`: nearest-neighbour, for label maps: the same crop, never interpolated)."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    max_long = 2 * short  # in source pixels: a 20:1 panorama keeps its middle 2:1
    crop_h, crop_w = tf.minimum(height, max_long), tf.minimum(width, max_long)
    image = _central(image, crop_h, crop_w)
    scale = tf.cast(load_size, tf.float64) / tf.cast(short, tf.float64)
    new_h = tf.cast(tf.round(tf.cast(crop_h, tf.float64) * scale), tf.int32)
    new_w = tf.cast(tf.round(tf.cast(crop_w, tf.float64) * scale), tf.int32)
    height_is_shorter = height <= width  # height is the shorter side
    new_h = tf.where(height_is_shorter, load_size, new_h)
    new_w = tf.where(height_is_shorter, new_w, load_size)
    return _resize(image, new_h, new_w, nearest)


def to_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 in [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """float in [-1, 1] -> uint8 (clipped, rounded)."""
    return _round_to_uint8((tf.cast(image, tf.float32) + 1.0) * 127.5)


_GIF_SIGNATURE = b"GIF"
_GIF_GRAPHIC_CONTROL = b"\x21\xf9\x04"  # extension introducer, graphic control label, block size
_GIF_HEADER_BYTES = 13  # signature, version, logical screen descriptor; the global colour table follows
_WHITE_RGB = b"\xff\xff\xff"


def composite_over_white(rgba: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 4] -> uint8 [H, W, 3]: the pixels over an opaque white background, bit for bit as PIL's
    `Image.alpha_composite` does it (preprocessing's flattening), so training and serving see the same pixels.

    PIL (AlphaComposite.c, 7 precision bits) with an opaque destination reduces to
    out = SHIFTFORDIV255(c * a * 128 + 255 * (255 - a) * 128 + 128 * 128) >> 7.
    """
    color = tf.cast(rgba[:, :, :3], tf.int32)
    alpha = tf.cast(rgba[:, :, 3:], tf.int32)
    blended = color * alpha * 128 + 255 * (255 - alpha) * 128 + 128 * 128
    shift = tf.bitwise.right_shift
    divided = shift(shift(blended, 8) + blended, 8)  # PIL's SHIFTFORDIV255
    return tf.cast(shift(divided, 7), tf.uint8)


def _gif_transparency_to_white(gif_bytes: tf.Tensor) -> tf.Tensor:
    """A GIF whose first transparent colour (graphic control extension) is opaque white in the global colour
    table, so `decode_gif` shows white where PIL composites over white (it would show black otherwise).

    Only the first graphic control extension after the global colour table, and that table, are patched; a
    frame with its own local colour table keeps that table's colour.
    """
    raw = tf.cast(tf.io.decode_raw(gif_bytes, tf.uint8), tf.int32)
    size = tf.shape(raw)[0]
    packed = tf.gather(raw, tf.minimum(10, tf.maximum(size - 1, 0)))  # logical screen descriptor flags
    has_global_table = tf.logical_and(size > _GIF_HEADER_BYTES, tf.bitwise.bitwise_and(packed, 0x80) > 0)
    table_bytes = 3 * tf.bitwise.left_shift(2, tf.bitwise.bitwise_and(packed, 0x07))
    search_from = _GIF_HEADER_BYTES + tf.where(has_global_table, table_bytes, 0)
    positions = tf.range(tf.maximum(size - 7, 0))
    is_marker = positions >= search_from
    for offset, value in enumerate(_GIF_GRAPHIC_CONTROL):
        is_marker = tf.logical_and(is_marker, tf.equal(tf.gather(raw, positions + offset), value))
    starts = tf.boolean_mask(positions, is_marker)

    def patch_first_extension():
        start = starts[0]
        flags, index = tf.gather(raw, start + 3), tf.gather(raw, start + 6)
        entry = _GIF_HEADER_BYTES + 3 * index  # the transparent colour's RGB in the global table
        transparent = tf.logical_and(tf.bitwise.bitwise_and(flags, 1) > 0, has_global_table)

        def rewrite():
            byte_strings = tf.constant([bytes([value]) for value in range(256)])
            opaque_flags = tf.gather(byte_strings, tf.bitwise.bitwise_and(flags, 0xFE))
            return tf.strings.join([tf.strings.substr(gif_bytes, 0, entry), tf.constant(_WHITE_RGB),
                                    tf.strings.substr(gif_bytes, entry + 3, start - entry),
                                    opaque_flags, tf.strings.substr(gif_bytes, start + 4, -1)])

        return tf.cond(tf.logical_and(transparent, entry + 3 <= start), rewrite, lambda: gif_bytes)

    return tf.cond(tf.size(starts) > 0, patch_first_extension, lambda: gif_bytes)


def decode_rgb(image_bytes: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG / PNG / GIF (first frame) / BMP / WebP -> uint8 [H, W, 3], transparency over white.

    JPEGs use the accurate integer DCT (libjpeg's ISLOW, PIL's default): `tf.io.decode_image` would use the fast
    DCT, up to ~9/255 away from the pixels preprocessing (PIL) stored for training. Images with an alpha channel
    or a transparent colour (RGBA, LA, palette + tRNS, transparent GIF) are composited over white exactly as
    preprocessing does (`composite_over_white`).
    """
    def jpeg():
        return tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE")

    def gif():
        return tf.io.decode_gif(_gif_transparency_to_white(image_bytes))[0]

    def with_alpha():
        rgba = tf.io.decode_image(image_bytes, channels=4, dtype=tf.uint8, expand_animations=False)
        return composite_over_white(tf.ensure_shape(rgba, [None, None, 4]))

    is_gif = tf.equal(tf.strings.substr(image_bytes, 0, 3), _GIF_SIGNATURE)
    image = tf.case([(tf.io.is_jpeg(image_bytes), jpeg), (is_gif, gif)], default=with_alpha, exclusive=False)
    image.set_shape([None, None, 3])
    return image


def decode_and_preprocess(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """THE shared function: encoded image -> center crop -> resize -> float32 [image_size, image_size, 3] in [-1, 1].

    The exported serving graph maps it over `image_bytes`; the trainer applies it to center-crop records.
    """
    return to_float(center_crop_resize(decode_rgb(image_bytes), image_size))


def random_crop_flip(image: tf.Tensor, image_size: int, seed=None) -> tf.Tensor:
    """uint8 [H, W, 3] stored at load_size -> random `image_size` square + random horizontal flip, float [-1, 1]."""
    shape = tf.shape(image)
    too_small = tf.minimum(shape[0], shape[1]) < image_size
    image = tf.cond(too_small, lambda: resize_shorter_side(image, load_size_for(image_size)), lambda: image)
    crop = tf.image.random_crop(image, [image_size, image_size, 3], seed=seed)
    crop = tf.image.random_flip_left_right(crop, seed=seed)
    return to_float(crop)


# ---------------------------------------------------------------- the tf.data reader


def parse_example(serialized: tf.Tensor) -> dict:
    return tf.io.parse_single_example(serialized, FEATURES)


EXTRA_FEATURES = {LABEL: LABEL_FEATURE, CAPTION: CAPTION_FEATURE}  # what a training batch may pair images with


def _decoded(serialized: tf.Tensor, image_size: int, whole: bool, extra: str | None):
    """A record decoded as far as is the same at every epoch: the center crop (`whole`), else the stored uint8
    image (random crops come later); with an `extra` feature (LABEL, CAPTION), (image, its value)."""
    example = tf.io.parse_single_example(serialized, {**FEATURES, **(EXTRA_FEATURES[extra] if extra else {})})
    encoded = example["image/encoded"]
    image = decode_and_preprocess(encoded, image_size) if whole else tf.io.decode_png(encoded, channels=3)
    return (image, example[extra]) if extra else image


def _finished(image: tf.Tensor, image_size: int, whole: bool) -> tf.Tensor:
    """A decoded record as the trainer sees it: the center crop as is, else a random crop + flip."""
    return image if whole else random_crop_flip(image, image_size)


def decoded_mib(files: list[str], image_size: int, whole: bool) -> float | None:
    """Memory the decoded records of `files`' dataset take (every split of its manifest.json counted; None: no
    manifest beside the shards)."""
    from artifacts.dataset import read_manifest

    try:
        manifest = read_manifest(os.path.dirname(files[0]))
    except (OSError, ValueError):
        return None
    side = image_size if whole else int(manifest.get("load_size") or load_size_for(image_size))
    bytes_per_image = side * side * 3 * (4 if whole else 1)  # float32 center crops, uint8 stored images
    return sum(int(n) for n in (manifest.get("counts") or {}).values()) * bytes_per_image / 2 ** 20


def make_dataset(files: list[str], image_size: int, center_crop: bool, batch_size: int, *,
                 training: bool = True, shuffle_buffer: int = 2048, seed: int | None = None,
                 drop_remainder: bool = True, labels: bool = False, captions: bool = False,
                 label_maps: bool = False, input_context: tf.distribute.InputContext | None = None,
                 cache_mib: int = 0) -> tf.data.Dataset:
    """Batches of float32 [batch, image_size, image_size, 3] in [-1, 1] from TFRecord shards (with `labels`:
    (images, int64 [batch] class ids) pairs; with `captions`: (images, string [batch] captions as written); with
    `label_maps`: (images, int32 [batch, size, size] class-id maps) pairs, each map cropped and flipped together with
    its image, `preprocess.label_maps.training_pair`).

    training=True: shuffled, repeated forever, random crop + flip unless `center_crop`.
    training=False: one deterministic pass of center crops (for validation and fixed sample grids).
    input_context (`strategy.distribute_datasets_from_function`'s): `batch_size` is the global batch, batches are
    per replica, and with several input pipelines each keeps only its shard of the records (every N-th record of
    the same deterministic order in every pipeline), before anything is decoded: the pipelines read disjoint
    records and each decodes only its own.
    cache_mib (training): when this pipeline's decoded records fit in that many MiB (`decoded_mib`), they are
    decoded once and kept in memory (`Dataset.cache`); the random crops and the shuffle still change every epoch.
    """
    if not files:
        raise ValueError("no TFRecord shards to read")
    sharded = input_context is not None and input_context.num_input_pipelines > 1
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    if training:  # sharded: an explicit op seed, so every pipeline draws the same file order before `shard`
        ds = ds.shuffle(len(files), seed=0 if sharded and seed is None else seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training or sharded)
    if sharded:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    whole = center_crop or not training
    size = decoded_mib(files, image_size, whole) if training and cache_mib and not label_maps else None
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    cached = size is not None and size / pipelines <= cache_mib
    extra = LABEL if labels else CAPTION if captions else None

    def decode(serialized):
        if label_maps:  # the image and its map are cropped together: nothing to cache before the crop
            from preprocess.label_maps import training_pair

            example = tf.io.parse_single_example(serialized, {**FEATURES, **LABEL_MAP_FEATURES})
            return training_pair(example["image/encoded"], example[LABEL_MAP_FEATURE], image_size, whole)
        return _decoded(serialized, image_size, whole, extra)

    def finish(*decoded):
        if label_maps:
            return decoded
        image = _finished(decoded[0], image_size, whole)
        return (image, decoded[1]) if extra else image

    if cached:
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    load = finish if cached else (lambda serialized: finish(*tf.nest.flatten(decode(serialized))))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
