"""The one prediction core under every protocol (REST, gRPC, `serving.predict --model-dir`, batch prediction).

instances (JSON rows or columns, or tensors) -> validated numpy batch -> signature call -> outputs -> JSON rows.
Generic over signatures: names, dtypes and shapes come from the SavedModel's SignatureDefs, nothing is
hard-coded to genart's models. Beyond TF Serving (INTERFACE.md section 5): the signature is chosen by the
instances' input names when `signature_name` is absent, and a missing string `key` input is filled with the
instance's index (a numeric key becomes its decimal string).

Two levels of API:
- whole requests, failing as a whole like TF Serving, at their first invalid instance: `parse_json_body`,
  `parse_json_request` (tensors: `serving.server.tensors`), `run_request`, `format_response`, `predict_json`;
  encoded images are charged to the request's `ImageBudget` before anything is decoded, and decoded once, by
  the graph (`run_request` names the guilty instance when the graph refuses one);
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
from serving.server.image_check import ImageBudget, first_undecodable
from serving.server.model import (INSTANCE_ERRORS, DeadlineExceeded, InvalidInput,  # noqa: F401 - re-exported
                                  LoadedModel, NotFound, PredictionError, ResourceExhausted, Signature, TensorInfo,
                                  Unavailable, load_model, run_batch)


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


def location(index: int, alias: str | None = None) -> str:
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


def parse_instance(signature: Signature, instance: Any, index: int, budget: ImageBudget | None = None) -> Instance:
    """One row-format instance -> Instance; InvalidInput naming the instance and the input otherwise. Its encoded
    images are charged to `budget` (default: the per-image limit only)."""
    if isinstance(instance, dict) and not V.is_b64_object(instance):
        check_input_names(signature, set(instance), lambda alias: location(index, alias))
        given = dict(instance)
    elif len(signature.required) == 1:
        given = {signature.required[0]: instance}
    else:
        raise InvalidInput(f"{location(index)}: expected an object with inputs {', '.join(signature.inputs)}, got "
                           f"{V.json_type(instance)}")
    if signature.fills_key and KEY not in given:
        given[KEY] = str(index)
    out = {}
    budget = budget or ImageBudget()
    for alias, info in signature.inputs.items():
        if not info.batched:
            raise InvalidInput(f"{location(index, alias)}: this input has no batch dimension; send the request in "
                               f"columnar form ('inputs')")
        try:
            out[alias] = V.json_array(given[alias], info.dtype, info.instance_shape, numeric_ok=alias == KEY,
                                      image=budget.charge if alias in signature.image_inputs else None)
        except ValueError as err:
            raise InvalidInput(f"{location(index, alias)}: {err}") from None
    return Instance(index, out)


def prepare_instances(model: LoadedModel, instances: list, signature_name: str | None = None, *,
                      first_index: int = 0, budget: ImageBudget | None = None, fail_fast: bool = False
                      ) -> tuple[Signature, list[Instance | InstanceError]]:
    """Choose the signature, then validate each instance on its own: a bad one yields an InstanceError and never
    affects the others (with `fail_fast`, the first bad one raises InvalidInput instead: a whole request stops
    there, building nothing for the rest). Indexes (for messages and filled keys) start at `first_index`.
    InvalidInput also for problems of the whole list (not a non-empty list; unknown signature_name; ambiguous
    inputs)."""
    if not isinstance(instances, list):
        raise InvalidInput(f"'instances' must be a list, got {V.json_type(instances)}")
    if not instances:
        raise InvalidInput("No values in 'instances' array (empty instances)")
    signature = choose_signature(model, _names_of(instances), signature_name)
    results: list[Instance | InstanceError] = []
    reference: tuple[int, dict] | None = None
    budget = budget or ImageBudget()
    for offset, instance in enumerate(instances):
        index = first_index + offset
        try:
            parsed = parse_instance(signature, instance, index, budget)
            shapes = {a: v.shape for a, v in parsed.values.items()}
            reference = reference or (index, shapes)
            differing = next((a for a in shapes if shapes[a] != reference[1][a]), None)
            if differing:
                raise InvalidInput(f"{location(index, differing)}: shape {list(shapes[differing])} differs from "
                                   f"instance {reference[0]}'s {list(reference[1][differing])} (mixed shapes in one "
                                   f"batch)")
        except InvalidInput as err:
            if fail_fast:
                raise
            results.append(InstanceError(index, str(err)))
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
    """Like `run`, but if the graph call fails (any TensorFlow error, mapped to its PredictionError), run the
    instances one by one so only the guilty fail: each comes back as an InstanceError carrying its error's
    message (a lone instance too; never raised)."""
    try:
        return run(signature, prepared, runner)
    except PredictionError as err:
        if len(prepared) == 1:
            return [InstanceError(prepared[0].index, f"{location(prepared[0].index)}: {err}")]
    results: list[dict | InstanceError] = []
    for instance in prepared:
        try:
            results.extend(run(signature, [instance], runner))
        except PredictionError as err:
            results.append(InstanceError(instance.index, f"{location(instance.index)}: {err}"))
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


def parse_json_request(model: LoadedModel, body: Any, budget: ImageBudget | None = None) -> Request:
    """A TF Serving predict body (row `instances` or columnar `inputs`) -> Request; InvalidInput at the first
    thing wrong (the message names the bad instance and input). Images are charged to `budget` (default: the
    default limits)."""
    budget = budget or ImageBudget.for_request()
    if not isinstance(body, dict):
        raise InvalidInput(f"request body must be a JSON object, got {V.json_type(body)}")
    signature_name = body.get("signature_name")
    if signature_name is not None and not isinstance(signature_name, str):
        raise InvalidInput("'signature_name' must be a string")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInput("expecting exactly one of 'inputs' or 'instances' keys"
                           if "instances" in body else "Missing 'inputs' or 'instances' key")
    if "instances" in body:
        signature, results = prepare_instances(model, body["instances"], signature_name, budget=budget,
                                               fail_fast=True)
        return Request(signature, stack(signature, results), len(results))
    return _parse_columnar(model, body["inputs"], signature_name, budget)


def _parse_columnar(model: LoadedModel, inputs: Any, signature_name: str | None, budget: ImageBudget) -> Request:
    named = isinstance(inputs, dict) and not V.is_b64_object(inputs)
    signature = choose_signature(model, set(inputs) if named and inputs else None, signature_name)
    if not all(info.batched for info in signature.inputs.values()):
        return _parse_unbatched(signature, inputs if named else {signature.required[0]: inputs}, budget)
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
    rows = ({alias: column[i] for alias, column in inputs.items()} for i in range(size))
    signature, results = prepare_instances(model, list(rows), signature.name, budget=budget, fail_fast=True)
    return Request(signature, stack(signature, results), size, columnar=True)


def _parse_unbatched(signature: Signature, inputs: dict, budget: ImageBudget) -> Request:
    batch = {}
    for alias, info in signature.inputs.items():
        if alias not in inputs:
            raise InvalidInput(f"Missing named input: {alias} in 'inputs' object")
        try:
            batch[alias] = V.json_array(inputs[alias], info.dtype, info.shape,
                                        image=budget.charge if alias in signature.image_inputs else None)
        except ValueError as err:
            raise InvalidInput(f"input '{alias}': {err}") from None
    return Request(signature, batch, 0, columnar=True)


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


def run_request(request: Request, runner: Callable[[Signature, dict], dict] | None = None) -> dict[str, np.ndarray]:
    """Run a whole request's batch. If the graph refuses it for something an instance can cause and the
    signature takes encoded images, the images are decoded one at a time to name the first undecodable one."""
    try:
        return (runner or run_batch)(request.signature, request.batch)
    except INSTANCE_ERRORS as err:
        raise _blame(request, err) from None


def _blame(request: Request, err: PredictionError) -> PredictionError:
    for alias in sorted(request.signature.image_inputs & set(request.batch)):
        column = request.batch[alias]
        found = first_undecodable(column.reshape(-1))
        if found is not None:
            per_instance = max(1, column.size // len(column)) if column.ndim and len(column) else 1
            return InvalidInput(f"{location(found[0] // per_instance, alias)}: {found[1]}")
    return err


def predict_json(model: LoadedModel, body: Any, runner: Callable[[Signature, dict], dict] | None = None,
                 budget: ImageBudget | None = None) -> dict:
    """A whole JSON predict request -> JSON response dict (raises PredictionError subclasses)."""
    request = parse_json_request(model, body, budget)
    return format_response(run_request(request, runner), request)
