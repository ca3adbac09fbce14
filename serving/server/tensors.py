"""Named tensors (gRPC `TensorProto`s, or numpy arrays) -> a `core.Request`, with the checks of JSON instances.

A TensorProto is checked *before* any array is built (`check_proto`): its dtype against the signature's input,
its declared shape (rank, fixed dims, no negative dim), its declared size (elements x dtype size; for strings the
bytes its values expand to) against the message limit, and its value count (0, 1 — broadcast — or one per
element, as TensorFlow reads them). Only then does `tf.make_ndarray` run, so a 30-byte proto declaring
[1e9, 100] costs nothing. The arrays then get the checks of JSON instances (`parse_tensor_request`): dtype kind,
shape, equal batch sizes, finite floats, encoded images within the request's `ImageBudget`, key filling.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from artifacts.export import KEY
from serving.server import values as V
from serving.server.core import (InvalidInput, Request, Signature, check_input_names, choose_signature,
                                 location)
from serving.server.image_check import ImageBudget
from serving.server.model import LoadedModel

_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "int64_val", "bool_val", "uint32_val",
                 "uint64_val", "string_val")
_ACCEPTED_KINDS = {"string": {"string"}, "float": {"float", "int"}, "int": {"int"}, "bool": {"bool"}}


def check_proto(signature: Signature, alias: str, proto, max_bytes: int) -> None:
    """InvalidInput unless the TensorProto for input `alias` can be built within `max_bytes` and fits it."""
    info, where = signature.inputs[alias], f"input '{alias}'"
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise InvalidInput(f"{where}: unknown dtype {proto.dtype}") from None
    want, got = V.dtype_kind(info.dtype), V.dtype_kind(dtype)
    accepted = _ACCEPTED_KINDS.get(want, set()) | ({"float", "int"} if alias == KEY else set())
    if got not in accepted or dtype.is_complex or dtype.is_quantized:
        raise InvalidInput(f"{where}: expected {info.dtype.name}, got {dtype.name}")
    if proto.tensor_shape.unknown_rank:
        raise InvalidInput(f"{where}: the tensor's shape has an unknown rank")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise InvalidInput(f"{where}: negative dimension in shape {dims}")
    if info.shape is not None and (len(dims) != len(info.shape) or
                                   any(w is not None and g != w for g, w in zip(dims[1:], info.shape[1:]))):
        raise InvalidInput(f"{where}: expected shape {V.shape_text(info.shape)}, got {dims}")
    elements = math.prod(dims)
    if proto.tensor_content:
        values, declared = len(proto.tensor_content) // max(1, dtype.size), elements * dtype.size
        if dtype == tf.string or len(proto.tensor_content) != declared:
            raise InvalidInput(f"{where}: tensor_content holds {len(proto.tensor_content)} bytes, shape {dims} of "
                               f"{dtype.name} needs {declared}")
    else:
        values = sum(len(getattr(proto, field)) for field in _VALUE_FIELDS)
        if dtype == tf.string:
            lengths = [len(v) for v in proto.string_val]
            declared = sum(lengths) if values == elements else elements * (lengths[0] if lengths else 1)
        else:
            declared = elements * dtype.size
    if values not in (0, 1, elements):
        raise InvalidInput(f"{where}: {values} values for shape {dims} ({elements} elements): send 0, 1 or "
                           f"{elements}")
    if declared > max_bytes:
        raise InvalidInput(f"{where}: shape {dims} of {dtype.name} declares {declared} bytes, more than the "
                           f"{max_bytes} a message may carry")


def parse_tensor_protos(model: LoadedModel, protos, signature_name: str | None = None, *,
                        max_bytes: int, budget: ImageBudget | None = None) -> Request:
    """A PredictRequest's `inputs` map -> Request: names, then each proto (`check_proto`), then the arrays."""
    signature = choose_signature(model, set(protos) or None, signature_name)
    check_input_names(signature, set(protos), lambda alias: f"input '{alias}'")
    arrays = {}
    for alias, proto in protos.items():
        check_proto(signature, alias, proto, max_bytes)
        try:
            arrays[alias] = tf.make_ndarray(proto)
        except Exception as err:  # noqa: BLE001 - a malformed TensorProto is the client's fault
            raise InvalidInput(f"input '{alias}': cannot read the tensor ({type(err).__name__})") from None
    return parse_tensor_request(model, arrays, signature.name, budget=budget)


def parse_tensor_request(model: LoadedModel, inputs: dict[str, np.ndarray], signature_name: str | None = None, *,
                         budget: ImageBudget | None = None) -> Request:
    """Named numpy inputs -> Request, with the same checks as JSON instances: dtype kind, shape, equal batch
    sizes, finite floats, encoded images within `budget`, key filling."""
    signature = choose_signature(model, set(inputs) or None, signature_name)
    check_input_names(signature, set(inputs), lambda alias: f"input '{alias}'")
    budget = budget or ImageBudget.for_request()
    batch = {}
    for alias, value in inputs.items():
        try:
            batch[alias] = _check_tensor(signature, alias, np.asarray(value), budget)
        except ValueError as err:
            raise InvalidInput(f"input '{alias}': {err}") from None
    sizes = {a: v.shape[0] for a, v in batch.items() if signature.inputs[a].batched and v.ndim}
    if len(set(sizes.values())) > 1:
        raise InvalidInput(f"inputs have different batch sizes: {', '.join(f'{a}={n}' for a, n in sizes.items())}")
    size = next(iter(sizes.values()), 0)
    if signature.fills_key and KEY not in batch:
        batch[KEY] = np.array([str(i).encode() for i in range(size)], dtype=object).reshape(size)
    if size == 0 and all(i.batched for i in signature.inputs.values()):
        raise InvalidInput("no instances (empty batch)")
    return Request(signature, batch, size)


def _check_tensor(signature: Signature, alias: str, array: np.ndarray, budget: ImageBudget) -> np.ndarray:
    info = signature.inputs[alias]
    kind, got = V.dtype_kind(info.dtype), array.dtype
    where = f"input '{alias}'"
    if info.shape is not None:
        fixed = [(g, w) for g, w in zip(array.shape[1:], info.shape[1:]) if w is not None]
        if array.ndim != len(info.shape) or any(g != w for g, w in fixed):
            raise InvalidInput(f"{where}: expected shape {V.shape_text(info.shape)}, got {list(array.shape)}")
    if kind == "string":
        if got.kind in "iuf" and alias == KEY:
            return np.array([V.decimal_string(x.item()).encode() for x in array.reshape(-1)],
                            dtype=object).reshape(array.shape)
        if got != object and got.kind not in "SU":
            raise InvalidInput(f"{where}: expected DT_STRING, got {got}")
        flat = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in array.reshape(-1)]
        if alias in signature.image_inputs:
            per_instance = max(1, len(flat) // max(1, array.shape[0] if array.ndim else 1))
            for position, item in enumerate(flat):
                try:
                    budget.charge(item)
                except ValueError as err:
                    raise InvalidInput(f"{location(position // per_instance, alias)}: {err}") from None
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    if kind == "float" and got.kind in "fiu" and got != np.bool_:
        rows = array.reshape(array.shape[0], -1) if array.ndim else array.reshape(1, -1)
        bad = np.flatnonzero(~np.isfinite(rows.astype(np.float64)).all(axis=1)) if rows.size else []
        if len(bad):
            raise InvalidInput(f"{location(int(bad[0]), alias)}: non-finite value (values must be finite numbers)")
        try:
            return V.finite_float_array(array.astype(np.float64), info.dtype)
        except ValueError as err:
            raise InvalidInput(f"{where}: {err}") from None
    if kind == "int" and got.kind in "iu":
        limits = np.iinfo(info.dtype.as_numpy_dtype)
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise InvalidInput(f"{where}: values out of range for {info.dtype.name}")
        return array.astype(info.dtype.as_numpy_dtype)
    if kind == "bool" and got == np.bool_:
        return array
    raise InvalidInput(f"{where}: expected {info.dtype.name}, got {got}")
