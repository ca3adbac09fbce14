"""JSON values <-> numpy values for one tensor input, the way TF Serving's `json_tensor.cc` reads them.

Owns the leaf rules shared by every protocol: nested lists must be rectangular; float inputs take JSON numbers
(never booleans or strings) that are finite and fit the dtype; integer inputs take integers in range; string
inputs take JSON strings (UTF-8) or `{"b64": "<standard base64>"}` objects, each handed to an optional
`image` check (encoded-image inputs: `image_check.ImageBudget.charge`). And the output side: `_bytes` outputs as
`{"b64"}`, float32 in its shortest form.

Every error is a `ValueError` whose message says what is wrong with the value; `serving.server.core` adds
which instance and which input it was.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Callable

import numpy as np
import tensorflow as tf

from artifacts.export import BYTES_SUFFIX, IMAGE_BYTES, LABEL_MAP

B64_KEY = "b64"
IMAGE_INPUT_SUFFIX = IMAGE_BYTES  # string inputs whose alias ends so hold encoded images, checked before the graph
IMAGE_INPUTS = (LABEL_MAP,)  # further string inputs holding encoded images (SPADE's label maps), checked so too
_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(rb"\s+")
_KINDS = {"string", "float", "int", "bool"}


def dtype_kind(dtype: tf.DType) -> str:
    """'string', 'float', 'int', 'bool' or the dtype's name (unsupported)."""
    if dtype == tf.string:
        return "string"
    if dtype.is_floating:
        return "float"
    if dtype.is_integer:
        return "int"
    if dtype == tf.bool:
        return "bool"
    return dtype.name


def is_b64_object(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64_KEY), str)


def decode_b64(text: str) -> bytes:
    """Standard base64 (RFC 4648 alphabet; padding optional; whitespace ignored) -> bytes; ValueError if invalid."""
    raw = _WHITESPACE.sub(b"", text.encode("ascii", "replace"))
    if not _B64_ALPHABET.fullmatch(raw):
        hint = " (URL-safe '-' or '_' found: use the standard alphabet '+' and '/')" if re.search(rb"[-_]", raw) \
            else ""
        raise ValueError(f"not valid base64: characters outside the standard base64 alphabet{hint}")
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise ValueError("not valid base64: truncated (length is 1 more than a multiple of 4)")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as err:
        raise ValueError(f"not valid base64: {err}") from None


def encode_b64(data: bytes) -> dict:
    return {B64_KEY: base64.b64encode(data).decode("ascii")}


def _flatten(value) -> tuple[tuple[int, ...], list]:
    """Nested JSON lists -> (shape, leaves in row-major order); ValueError for ragged lists."""
    shape: list[int] = []
    level = [value]
    while True:
        lists = sum(type(item) is list for item in level)
        if lists == 0:
            return tuple(shape), level
        if lists != len(level):
            raise ValueError(f"ragged nesting: lists and non-lists mixed at depth {len(shape) + 1}")
        sizes = {len(item) for item in level}
        if len(sizes) != 1:
            raise ValueError(f"ragged nesting: lists of sizes {sorted(sizes)[:4]} at depth {len(shape) + 1}")
        shape.append(sizes.pop())
        level = [leaf for item in level for leaf in item]
        if not level:
            return tuple(shape), []


def check_shape(shape: tuple[int, ...], expected: tuple | None) -> None:
    """`expected` is the TensorInfo shape without the batch dim (None: unknown rank; None entries: any size)."""
    if expected is None:
        return
    if len(shape) != len(expected):
        want = "a single value" if not expected else f"a list of shape {shape_text(expected)}"
        got = "a single value" if not shape else f"a list of shape {shape_text(shape)}"
        raise ValueError(f"expected {want}, got {got}")
    for got, want in zip(shape, expected):
        if want is not None and got != want:
            if len(expected) == 1:
                raise ValueError(f"expected {want} values, got {got}")
            raise ValueError(f"expected shape {shape_text(expected)}, got {shape_text(shape)}")


def shape_text(shape) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _bad_leaf(leaf, expected: str) -> ValueError:
    text = repr(leaf) if not isinstance(leaf, (dict, list)) else json_type(leaf)
    if isinstance(leaf, float) and not math.isfinite(leaf):
        return ValueError(f"non-finite value {leaf!r} ({expected} must be finite)")
    return ValueError(f"{text} ({json_type(leaf)}) is not {expected}")


def numeric_array(leaves: list, shape: tuple[int, ...], dtype: tf.DType) -> np.ndarray:
    """JSON numbers -> np array of `dtype`; refuses booleans, strings, non-finite and out-of-range values."""
    kind = dtype_kind(dtype)
    np_dtype = dtype.as_numpy_dtype
    if kind == "bool":
        if not all(type(leaf) is bool for leaf in leaves):
            raise _bad_leaf(next(leaf for leaf in leaves if type(leaf) is not bool), "a boolean")
        return np.array(leaves, dtype=np.bool_).reshape(shape)
    if kind == "int":
        bad = next((leaf for leaf in leaves if type(leaf) is not int), None)
        if bad is not None:
            raise _bad_leaf(bad, f"an integer ({dtype.name})")
        info = np.iinfo(np_dtype)
        out = next((leaf for leaf in leaves if not info.min <= leaf <= info.max), None)
        if out is not None:
            raise ValueError(f"{out} is out of range for {dtype.name}")
        return np.array(leaves, dtype=np_dtype).reshape(shape)
    bad = next((leaf for leaf in leaves if type(leaf) is not float and type(leaf) is not int), None)
    if bad is not None:
        raise _bad_leaf(bad, f"a number ({dtype.name})")
    try:
        array = np.array(leaves, dtype=np.float64).reshape(shape)
    except OverflowError:
        raise ValueError(f"a number is out of range for {dtype.name}") from None
    return finite_float_array(array, dtype)


def finite_float_array(array: np.ndarray, dtype: tf.DType) -> np.ndarray:
    """Check a float array is finite and fits `dtype`; return it as `dtype`."""
    if not np.all(np.isfinite(array)):
        value = array[~np.isfinite(array)].flat[0]
        name = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise ValueError(f"non-finite value {name} (values must be finite numbers)")
    limit = float(np.finfo(dtype.as_numpy_dtype).max)
    if array.size and float(np.max(np.abs(array))) > limit:
        raise ValueError(f"{float(np.max(np.abs(array))):g} is out of range for {dtype.name}")
    return array.astype(dtype.as_numpy_dtype, copy=False)


def string_leaf(leaf, *, numeric_ok: bool = False) -> bytes:
    """A JSON string (UTF-8) or {"b64": ...} -> bytes; with `numeric_ok`, a number becomes its decimal string."""
    if isinstance(leaf, str):
        return leaf.encode("utf-8", "surrogatepass")
    if is_b64_object(leaf):
        return decode_b64(leaf[B64_KEY])
    if isinstance(leaf, dict) and B64_KEY in leaf:
        raise ValueError('binary values must be objects with exactly one key "b64" holding a base64 string')
    if numeric_ok and type(leaf) in (int, float):
        return decimal_string(leaf).encode("ascii")
    if isinstance(leaf, dict):
        raise ValueError(f"object {_short(leaf)} is not a string or {{\"b64\": ...}}")
    raise _bad_leaf(leaf, 'a string or {"b64": ...}')


def decimal_string(number) -> str:
    """3 -> "3", 3.0 -> "3", 0.5 -> "0.5"; NaN and Infinity refused."""
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError(f"non-finite number {number!r} cannot be a key")
        if number.is_integer() and abs(number) < 2 ** 63:
            return str(int(number))
        return repr(number)
    return str(number)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def string_array(value, expected_shape: tuple | None, *, numeric_ok: bool = False,
                 image: Callable[[bytes], object] | None = None) -> np.ndarray:
    """A nested JSON value of strings -> object array of bytes, checked against the instance shape; each value
    is passed to `image` (which raises ValueError for a bad one) when given."""
    shape, leaves = _flatten(value)
    check_shape(shape, expected_shape)
    data = [string_leaf(leaf, numeric_ok=numeric_ok) for leaf in leaves]
    if image is not None:
        for item in data:
            image(item)
    array = np.empty(len(data), dtype=object)
    array[:] = data
    return array.reshape(shape)


def json_array(value, dtype: tf.DType, expected_shape: tuple | None, **string_options) -> np.ndarray:
    """One instance's (or one columnar input's) JSON value -> np array of `dtype`, validated."""
    kind = dtype_kind(dtype)
    if kind not in _KINDS:
        raise ValueError(f"inputs of dtype {dtype.name} are not supported over JSON")
    if kind == "string":
        return string_array(value, expected_shape, **string_options)
    shape, leaves = _flatten(value)
    check_shape(shape, expected_shape)
    return numeric_array(leaves, shape, dtype)


# ---------------------------------------------------------------- outputs


def float32_list(array: np.ndarray):
    """float32 values as Python floats that print in their shortest float32 form (0.2, not 0.20000000298...)."""
    if array.ndim == 0:
        return float(str(np.float32(array)))
    return [float32_list(row) for row in array] if array.ndim > 1 else \
        [float(str(value)) for value in array.astype(np.float32)]


def json_value(array, alias: str):
    """One output value (an instance's slice, or a whole columnar tensor) -> JSON-ready Python value."""
    binary = alias.endswith(BYTES_SUFFIX)
    if isinstance(array, bytes):
        return encode_b64(array) if binary else _text_or_b64(array)
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return _nested(array, lambda item: encode_b64(item) if binary else _text_or_b64(item))
    if array.dtype == np.float32:
        return float32_list(array)
    return array.tolist()


def _text_or_b64(item: bytes):
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return encode_b64(item)  # JSON cannot carry it as text


def _nested(array, leaf):
    if not isinstance(array, np.ndarray):
        return leaf(array)
    if array.ndim == 0:
        return leaf(array.item())
    return [_nested(row, leaf) for row in array]
