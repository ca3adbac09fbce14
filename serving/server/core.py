"""The one prediction core under every protocol (REST, gRPC, `serving.predict --model-dir`, batch prediction).

instances (JSON rows or columns, or tensors) -> validated numpy batch -> signature call -> outputs -> JSON rows.
Generic over signatures: names, dtypes and shapes come from the SavedModel's SignatureDefs, nothing is
hard-coded to genart's models. Beyond TF Serving (INTERFACE.md section 5): the signature is chosen by the
instances' input names when `signature_name` is absent, and a missing string `key` input is filled with the
instance's index (a numeric key becomes its decimal string).

Two levels of API:
- whole requests, failing as a whole like TF Serving: `parse_json_body`, `parse_json_request`,
  `parse_tensor_request`, `run_batch`, `format_response`, `predict_json`;
- per instance, for batch prediction: `prepare_instances` (-> `Instance` or `InstanceError` each), `run`
  (good instances in one graph call -> JSON rows), `run_isolated` (a failing batch is retried one by one).

No transport here: errors are `PredictionError` subclasses carrying their HTTP status and gRPC code name.
Loading (`load_model`, `LoadedModel`, `Signature`, `TensorInfo`, `run_batch`) and the error classes live in
`serving.server.model` and are re-exported here, so `serving.server.core` is the one import a caller needs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from artifacts.export import KEY
from serving.server import values as V
from serving.server.model import (InvalidInput, LoadedModel, NotFound, PredictionError,  # noqa: F401 - re-exported
                                  Signature, TensorInfo, Unavailable, load_model, run_batch)


# ---------------------------------------------------------------- choosing the signature


def choose_signature(model: LoadedModel, names: set[str] | None = None, signature_name: str | None = None
                     ) -> Signature:
    """Explicit `signature_name`; else the signature the input `names` fit (a missing fillable key allowed):
    preferably the one named like the only non-key input, then the default, then a sole fit; else the default."""
    if signature_name:
        return model.signature(signature_name)
    if names:
        fits = [s for s in model.signatures.values()
                if names <= set(s.inputs) and set(s.required) <= names]
        non_key = names - {KEY}
        for signature in fits:
            if len(non_key) == 1 and signature.name in non_key:
                return signature
        if any(s.name == model.default_signature_name for s in fits):
            return model.signature()
        if len(fits) == 1:
            return fits[0]
        if len(fits) > 1:
            raise InvalidInput(f"inputs {sorted(names)} fit several signatures ({', '.join(s.name for s in fits)}):"
                               f" set signature_name")
    return model.signature()


def _names_of(instances: list) -> set[str] | None:
    first = instances[0] if instances else None
    if isinstance(first, dict) and not V.is_b64_object(first):
        return set(first)
    return None


# ---------------------------------------------------------------- per-instance API


@dataclass
class Instance:
    """One valid instance: {input alias: np value of that instance (no batch dim)}."""
    index: int
    values: dict[str, np.ndarray]


@dataclass
class InstanceError:
    """One invalid instance; `message` names the instance and the input."""
    index: int
    message: str

    def __str__(self) -> str:
        return self.message


def _where(index: int, alias: str | None = None) -> str:
    return f"instance {index}" + (f", input '{alias}'" if alias else "")


def check_input_names(signature: Signature, names: set[str], where: Callable[[str], str]) -> None:
    """InvalidInput for the first unknown or missing input; `where(alias)` says where (instance and input)."""
    takes = f"(signature '{signature.name}' takes {', '.join(signature.inputs)})"
    unknown = sorted(names - set(signature.inputs))
    if unknown:
        raise InvalidInput(f"{where(unknown[0])}: unknown input {takes}")
    missing = [alias for alias in signature.required if alias not in names]
    if missing:
        raise InvalidInput(f"{where(missing[0])}: missing {takes}")


def parse_instance(signature: Signature, instance: Any, index: int) -> Instance:
    """One row-format instance -> Instance; InvalidInput naming the instance and the input otherwise."""
    if isinstance(instance, dict) and not V.is_b64_object(instance):
        check_input_names(signature, set(instance), lambda alias: _where(index, alias))
        given = dict(instance)
    elif len(signature.required) == 1:
        given = {signature.required[0]: instance}
    else:
        raise InvalidInput(f"{_where(index)}: expected an object with inputs {', '.join(signature.inputs)}, got "
                           f"{V.json_type(instance)}")
    if signature.fills_key and KEY not in given:
        given[KEY] = str(index)
    out = {}
    for alias, info in signature.inputs.items():
        if not info.batched:
            raise InvalidInput(f"{_where(index, alias)}: this input has no batch dimension; send the request in "
                               f"columnar form ('inputs')")
        try:
            out[alias] = V.json_array(given[alias], info.dtype, info.instance_shape, numeric_ok=alias == KEY,
                                      image=alias in signature.image_inputs)
        except ValueError as err:
            raise InvalidInput(f"{_where(index, alias)}: {err}") from None
    return Instance(index, out)


def prepare_instances(model: LoadedModel, instances: list, signature_name: str | None = None, *,
                      first_index: int = 0) -> tuple[Signature, list[Instance | InstanceError]]:
    """Choose the signature, then validate each instance on its own: a bad one yields an InstanceError and never
    affects the others. Indexes (for messages and filled keys) start at `first_index`. InvalidInput only for
    problems of the whole list (not a non-empty list; unknown signature_name; ambiguous inputs)."""
    if not isinstance(instances, list):
        raise InvalidInput(f"'instances' must be a list, got {V.json_type(instances)}")
    if not instances:
        raise InvalidInput("No values in 'instances' array (empty instances)")
    signature = choose_signature(model, _names_of(instances), signature_name)
    results: list[Instance | InstanceError] = []
    reference: tuple[int, dict] | None = None
    for offset, instance in enumerate(instances):
        index = first_index + offset
        try:
            parsed = parse_instance(signature, instance, index)
        except InvalidInput as err:
            results.append(InstanceError(index, str(err)))
            continue
        shapes = {a: v.shape for a, v in parsed.values.items()}
        if reference is None:
            reference = (index, shapes)
        else:
            differing = next((a for a in shapes if shapes[a] != reference[1][a]), None)
            if differing:
                results.append(InstanceError(index, f"{_where(index, differing)}: shape "
                                             f"{list(shapes[differing])} differs from instance {reference[0]}'s "
                                             f"{list(reference[1][differing])} (mixed shapes in one batch)"))
                continue
        results.append(parsed)
    return signature, results


def stack(signature: Signature, prepared: list[Instance]) -> dict[str, np.ndarray]:
    """Valid instances -> one batch {alias: array with the batch dim first}."""
    return {alias: np.stack([instance.values[alias] for instance in prepared]) for alias in signature.inputs}


def run(signature: Signature, prepared: list[Instance],
        runner: Callable[[Signature, dict], dict] | None = None) -> list[dict]:
    """Run valid instances in one graph call; return one JSON-ready dict {output alias: value} per instance."""
    if not prepared:
        return []
    outputs = (runner or run_batch)(signature, stack(signature, prepared))
    return split_rows(outputs, len(prepared))


def run_isolated(signature: Signature, prepared: list[Instance],
                 runner: Callable[[Signature, dict], dict] | None = None) -> list[dict | InstanceError]:
    """Like `run`, but if the graph rejects the batch (InvalidInput), run the instances one by one so only the
    guilty fail: each comes back as an InstanceError (a lone instance too; never raised). Other failures
    (PredictionError: a genuine fault) are raised."""
    try:
        return run(signature, prepared, runner)
    except InvalidInput as err:
        if len(prepared) == 1:
            return [InstanceError(prepared[0].index, f"{_where(prepared[0].index)}: {err}")]
    results: list[dict | InstanceError] = []
    for instance in prepared:
        try:
            results.extend(run(signature, [instance], runner))
        except InvalidInput as err:
            results.append(InstanceError(instance.index, f"{_where(instance.index)}: {err}"))
    return results


# ---------------------------------------------------------------- whole requests


@dataclass
class Request:
    """A validated request: the signature, its input batch, the number of instances, and the JSON format."""
    signature: Signature
    batch: dict[str, np.ndarray]
    size: int
    columnar: bool = False


def parse_json_body(data: bytes | str) -> Any:
    """Request bytes -> JSON value; InvalidInput ("JSON Parse error: ...") when it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        detail = str(err) if not isinstance(err, RecursionError) else "nested too deeply"
        raise InvalidInput(f"JSON Parse error: {detail}") from None


def _first_error(results: list) -> None:
    errors = [r for r in results if isinstance(r, InstanceError)]
    if errors:
        more = f" (and {len(errors) - 1} more invalid instances)" if len(errors) > 1 else ""
        raise InvalidInput(errors[0].message + more)


def parse_json_request(model: LoadedModel, body: Any) -> Request:
    """A TF Serving predict body (row `instances` or columnar `inputs`) -> Request; InvalidInput if anything is
    wrong (the message names the first bad instance and input)."""
    if not isinstance(body, dict):
        raise InvalidInput(f"request body must be a JSON object, got {V.json_type(body)}")
    signature_name = body.get("signature_name")
    if signature_name is not None and not isinstance(signature_name, str):
        raise InvalidInput("'signature_name' must be a string")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInput("expecting exactly one of 'inputs' or 'instances' keys"
                           if "instances" in body else "Missing 'inputs' or 'instances' key")
    if "instances" in body:
        signature, results = prepare_instances(model, body["instances"], signature_name)
        _first_error(results)
        return Request(signature, stack(signature, results), len(results))
    return _parse_columnar(model, body["inputs"], signature_name)


def _parse_columnar(model: LoadedModel, inputs: Any, signature_name: str | None) -> Request:
    named = isinstance(inputs, dict) and not V.is_b64_object(inputs)
    signature = choose_signature(model, set(inputs) if named and inputs else None, signature_name)
    if not all(info.batched for info in signature.inputs.values()):
        return _parse_unbatched(signature, inputs if named else {signature.required[0]: inputs})
    if not named:
        if len(signature.required) != 1:
            raise InvalidInput(f"'inputs' is a plain value/list, but signature '{signature.name}' takes several "
                               f"inputs ({', '.join(signature.inputs)}): send an object")
        inputs = {signature.required[0]: inputs}
    unknown = sorted(set(inputs) - set(signature.inputs))
    if unknown:
        raise InvalidInput(f"input '{unknown[0]}': unknown input (signature '{signature.name}' takes "
                           f"{', '.join(signature.inputs)})")
    missing = [a for a in signature.required if a not in inputs]
    if missing:
        raise InvalidInput(f"Missing named input: {missing[0]} in 'inputs' object")
    sizes = {}
    for alias, column in inputs.items():
        if not isinstance(column, list):
            raise InvalidInput(f"input '{alias}': expected a list with one entry per instance, got "
                               f"{V.json_type(column)}")
        sizes[alias] = len(column)
    if len(set(sizes.values())) > 1:
        raise InvalidInput(f"inputs have different numbers of instances: "
                           f"{', '.join(f'{a}={n}' for a, n in sizes.items())}")
    size = next(iter(sizes.values()))
    if size == 0:
        raise InvalidInput("No values in 'inputs' (empty instances)")
    rows = [{alias: column[i] for alias, column in inputs.items()} for i in range(size)]
    signature, results = prepare_instances(model, rows, signature.name)
    _first_error(results)
    return Request(signature, stack(signature, results), size, columnar=True)


def _parse_unbatched(signature: Signature, inputs: dict) -> Request:
    batch = {}
    for alias, info in signature.inputs.items():
        if alias not in inputs:
            raise InvalidInput(f"Missing named input: {alias} in 'inputs' object")
        try:
            batch[alias] = V.json_array(inputs[alias], info.dtype, info.shape, image=alias in signature.image_inputs)
        except ValueError as err:
            raise InvalidInput(f"input '{alias}': {err}") from None
    return Request(signature, batch, 0, columnar=True)


def parse_tensor_request(model: LoadedModel, inputs: dict[str, np.ndarray], signature_name: str | None = None
                         ) -> Request:
    """Named numpy inputs (e.g. from gRPC TensorProtos) -> Request, with the same checks as JSON instances:
    dtype kind, shape, equal batch sizes, finite floats, decodable images, key filling."""
    signature = choose_signature(model, set(inputs) or None, signature_name)
    check_input_names(signature, set(inputs), lambda alias: f"input '{alias}'")
    batch = {}
    for alias, value in inputs.items():
        try:
            batch[alias] = _check_tensor(signature, alias, np.asarray(value))
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


def _check_tensor(signature: Signature, alias: str, array: np.ndarray) -> np.ndarray:
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
                    V.check_image(item)
                except ValueError as err:
                    raise InvalidInput(f"{_where(position // per_instance, alias)}: {err}") from None
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    if kind == "float" and got.kind in "fiu" and got != np.bool_:
        rows = array.reshape(array.shape[0], -1) if array.ndim else array.reshape(1, -1)
        bad = np.flatnonzero(~np.isfinite(rows.astype(np.float64)).all(axis=1)) if rows.size else []
        if len(bad):
            raise InvalidInput(f"{_where(int(bad[0]), alias)}: non-finite value (values must be finite numbers)")
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


def split_rows(outputs: dict[str, np.ndarray], size: int) -> list[dict]:
    """Batch outputs -> one JSON-ready dict per instance (aliases sorted; `_bytes` outputs as {"b64"})."""
    for alias, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != size:
            raise PredictionError(f"output '{alias}' has batch size {array.shape[:1]} but {size} instances were sent")
    aliases = sorted(outputs)
    return [{alias: V.json_value(outputs[alias][i], alias) for alias in aliases} for i in range(size)]


def format_response(outputs: dict[str, np.ndarray], request: Request) -> dict:
    """TF Serving's JSON response: row {"predictions": [...]} (plain values when there is a single output) or
    columnar {"outputs": {...}} (a plain value when there is a single output)."""
    if request.columnar:
        columns = {alias: V.json_value(array, alias) for alias, array in sorted(outputs.items())}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    rows = split_rows(outputs, request.size)
    if len(outputs) == 1:
        rows = [next(iter(row.values())) for row in rows]
    return {"predictions": rows}


def predict_json(model: LoadedModel, body: Any, runner: Callable[[Signature, dict], dict] | None = None) -> dict:
    """A whole JSON predict request -> JSON response dict (raises PredictionError subclasses)."""
    request = parse_json_request(model, body)
    return format_response((runner or run_batch)(request.signature, request.batch), request)
