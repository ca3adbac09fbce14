"""A loaded SavedModel version and its callable signatures, described by the SignatureDefs themselves.

`load_model(path)` -> `LoadedModel` (name, version, `signatures` by name, `default_signature_name`, the raw
`signature_defs` for metadata); each `Signature` knows its inputs/outputs (`TensorInfo`: alias, dtype, shape),
whether it takes a fillable string `key`, which inputs are encoded images, and runs a numpy batch through the
graph (`run_batch`). Also the error classes every protocol maps (HTTP status, gRPC code), and how a failed graph
call becomes one of them: every TensorFlow error is mapped by its code (`graph_error`) with a message cleaned of
node names, op names and file paths (`public_message`); nothing escapes as a raw 500.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from artifacts.export import DEFAULT_SIGNATURE, KEY, read_classes, read_saved_model_bytes
from serving.server import values as V


class PredictionError(Exception):
    """A failed prediction; `http_status` / `grpc_code` say how each protocol reports it."""
    http_status = 500
    grpc_code = "INTERNAL"


def _prediction_error(name: str, http_status: int, grpc_code: str) -> type[PredictionError]:
    return type(name, (PredictionError,), {"http_status": http_status, "grpc_code": grpc_code,
                                           "__doc__": f"{http_status} / {grpc_code}", "__module__": __name__})


# TF Serving's mapping of each failure to an HTTP status and a gRPC code
InvalidInput = _prediction_error("InvalidInput", 400, "INVALID_ARGUMENT")
NotFound = _prediction_error("NotFound", 404, "NOT_FOUND")
Unavailable = _prediction_error("Unavailable", 503, "UNAVAILABLE")
ResourceExhausted = _prediction_error("ResourceExhausted", 429, "RESOURCE_EXHAUSTED")
DeadlineExceeded = _prediction_error("DeadlineExceeded", 504, "DEADLINE_EXCEEDED")


# what a single instance can cause: a batch failing so is re-run one by one to find the guilty instance
INSTANCE_ERRORS = (InvalidInput, ResourceExhausted)
_GRAPH_ERRORS = {tf.errors.InvalidArgumentError: InvalidInput, tf.errors.OutOfRangeError: InvalidInput,
                 tf.errors.DataLossError: InvalidInput, tf.errors.ResourceExhaustedError: ResourceExhausted,
                 tf.errors.DeadlineExceededError: DeadlineExceeded, tf.errors.UnavailableError: Unavailable}
_PREAMBLE = re.compile(r"Graph execution error|Detected at node|<stack traces unavailable>|Node: '")
_INTERNALS = re.compile(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]|(?<![\w.])(?:/[^\s/'\"]+){2,}/?")


def public_message(err: BaseException, limit: int = 300) -> str:
    """What went wrong, without internals: the first line of the error's message that says something once
    TensorFlow's preamble ("Graph execution error", "Detected at node", indented stack and annotation lines),
    node/op annotations and file paths are removed; at most `limit` characters."""
    text = err.message if isinstance(err, tf.errors.OpError) else str(err)
    for part in text.splitlines():
        if not part.strip() or part[:1].isspace() or _PREAMBLE.match(part):
            continue
        line = " ".join(_INTERNALS.sub(lambda m: "<path>" if m.group(0).startswith("/") else "", part).split())
        if line.strip(" :;,"):
            return line[:limit].rstrip(" :;,")
    return type(err).__name__


def graph_error(err: tf.errors.OpError) -> PredictionError:
    """A failed graph call as the PredictionError its TensorFlow code maps to (a genuine fault: 500)."""
    cls = next((c for t, c in _GRAPH_ERRORS.items() if isinstance(err, t)), None)
    if cls is None:
        return PredictionError(f"the model failed ({type(err).__name__}): {public_message(err)}")
    return cls(public_message(err))


# ---------------------------------------------------------------- models and signatures


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature. `shape` includes the batch dim; None = unknown rank/size."""
    alias: str
    dtype: tf.DType
    shape: tuple | None
    tensor_name: str = ""

    @classmethod
    def from_proto(cls, alias: str, info: meta_graph_pb2.TensorInfo) -> "TensorInfo":
        dims = info.tensor_shape
        shape = None if dims.unknown_rank else tuple(d.size if d.size >= 0 else None for d in dims.dim)
        return cls(alias, tf.dtypes.as_dtype(info.dtype), shape, info.name)

    @property
    def batched(self) -> bool:
        return self.shape is None or len(self.shape) >= 1

    @property
    def instance_shape(self) -> tuple | None:
        return None if self.shape is None else self.shape[1:]


class Signature:
    """A callable serving signature: `signature(batch) -> {output alias: np.ndarray}`."""

    def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef, function: Callable,
                 model_name: str = "", version: int = 0):
        self.name, self.function, self.model_name, self.version = name, function, model_name, version
        self.signature_def = signature_def
        self.method_name = signature_def.method_name
        self.inputs = {a: TensorInfo.from_proto(a, i) for a, i in sorted(signature_def.inputs.items())}
        self.outputs = {a: TensorInfo.from_proto(a, i) for a, i in sorted(signature_def.outputs.items())}
        key = self.inputs.get(KEY)
        self.fills_key = key is not None and key.dtype == tf.string and key.shape is not None and len(key.shape) == 1
        self.required = [a for a in self.inputs if not (a == KEY and self.fills_key)]
        self.image_inputs = {a for a, i in self.inputs.items()
                             if i.dtype == tf.string and (a.endswith(V.IMAGE_INPUT_SUFFIX) or a in V.IMAGE_INPUTS)}

    def __repr__(self) -> str:
        return f"Signature({self.name!r}, inputs={list(self.inputs)}, outputs={list(self.outputs)})"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_batch(self, batch)


class LoadedModel:
    """One loaded SavedModel version: its callable signatures and its SignatureDefs (for metadata)."""

    def __init__(self, path: str, name: str = "", version: int = 0):
        self.path, self.name, self.version = path, name, int(version)
        self.signature_defs = _read_signature_defs(path)
        self.classes = read_classes(path)  # assets/classes.json of a class-conditional model, else None
        self._saved = tf.saved_model.load(path, tags=[tf.saved_model.SERVING])  # keeps the functions alive
        self.signatures = {n: Signature(n, self.signature_defs[n], f, name, self.version)
                           for n, f in sorted(self._saved.signatures.items()) if n in self.signature_defs}
        if not self.signatures:
            raise ValueError(f"{path} has no serving signatures")
        only = next(iter(self.signatures)) if len(self.signatures) == 1 else None
        self.default_signature_name = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in self.signatures else only

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, version={self.version}, signatures={list(self.signatures)})"

    def signature(self, name: str | None = None) -> Signature:
        """The named signature (None or "": the default); InvalidInput if there is none such."""
        name = name or self.default_signature_name
        if name not in self.signatures:
            if not name:
                raise InvalidInput(f"model has no '{DEFAULT_SIGNATURE}' signature: set signature_name to one of "
                                   f"{', '.join(self.signatures)}")
            raise InvalidInput(f"Serving signature name: \"{name}\" not found in signature def "
                               f"(available: {', '.join(self.signatures)})")
        return self.signatures[name]

    def warm_up(self) -> None:
        """Call every batched signature once with an empty batch, so the first request pays no set-up."""
        for signature in self.signatures.values():
            if all(info.batched and info.shape is not None for info in signature.inputs.values()):
                batch = {a: np.zeros((0, *[d or 1 for d in i.shape[1:]]),
                                     dtype=object if i.dtype == tf.string else i.dtype.as_numpy_dtype)
                         for a, i in signature.inputs.items()}
                try:
                    signature.function(**{a: tf.constant(v, dtype=signature.inputs[a].dtype)
                                          for a, v in batch.items()})
                except Exception:  # noqa: BLE001 - warm-up is best effort; real requests report errors
                    pass


def load_model(path: str, name: str = "", version: int = 0) -> LoadedModel:
    """Load the SavedModel in local dir `path` (`artifacts.export.latest_export` finds one among numbered
    versions)."""
    return LoadedModel(path, name, version)


def _read_signature_defs(path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    proto = saved_model_pb2.SavedModel.FromString(read_saved_model_bytes(path))
    graphs = [g for g in proto.meta_graphs if tf.saved_model.SERVING in g.meta_info_def.tags] or proto.meta_graphs[:1]
    if not graphs:
        raise ValueError(f"the SavedModel in {path} holds no meta graph")
    return dict(graphs[0].signature_def)


def run_batch(signature: Signature, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Call the signature's graph on a batch; a TensorFlow failure raises its `graph_error`."""
    try:
        tensors = {a: tf.constant(batch[a], dtype=i.dtype) for a, i in signature.inputs.items()}
        result = signature.function(**tensors)
    except tf.errors.OpError as err:
        raise graph_error(err) from None
    return {alias: tensor.numpy() for alias, tensor in result.items()}

