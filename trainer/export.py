"""The SavedModel of a job (INTERFACE.md section 3): signatures built from `export_spec()`, written atomically.

Owns:
- turning a model's `export_spec()` into serving signatures, generically (no model-specific code): an `embeddings`
  input is float32 [-1, latent_dim]; a `label_map` input (SPADE) is a batch of label map PNGs decoded into
  class ids (`preprocess.label_maps`); an `image_bytes` input is a batch of encoded images decoded in-graph, one by
  one, with the shared `preprocess.records.decode_and_preprocess` (the trainer's center-crop function); a `text`
  input is string [-1], passed as is (the model tokenises it in the graph); an `image_bytes` output is PNG; every
  signature also takes a string `key` [-1] and returns it unchanged;
- what is saved: a bare `tf.Module` that tracks only the networks' variables, each once. The Keras models are
  used from the signature functions' closures, never stored as attributes: a `tf.Module` holding Keras 3 models
  loads in TF2 but not in the TF1 session loader of TF Serving and `saved_model_cli run` (keras-team/keras#20095);
- writing `<job_dir>/export/` so that it is complete or absent: a temp dir renamed into place (local), or a local
  SavedModel uploaded with `saved_model.pb` last (gs://, which has no rename);
- `python -m trainer.export --job-dir J`: rebuild the model from `J/config.json`, restore the latest checkpoint
  of `J/checkpoints/`, export.
"""
from __future__ import annotations

import argparse
import os
import sys
import uuid

from artifacts import console, jobs, storage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.export",
        description="Export a job's latest checkpoint as a SavedModel in JOB_DIR/export/ (INTERFACE.md section 3).",
        epilog="Examples:\n  python -m trainer.export --job-dir workspace/jobs/faces\n"
               "  python -m trainer.export --job-dir gs://my-bucket/jobs/anime",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-dir", required=True, help="the job dir (local or gs://)")
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    return parser


def check_job_dir(job_dir: str) -> None:
    if not storage.exists(jobs.config_path(job_dir)):
        raise FileNotFoundError(f"{jobs.config_path(job_dir)} not found: is {job_dir} a genart job dir?")


if __name__ == "__main__":  # `--help`, usage errors and a wrong job dir answer before TensorFlow is imported
    _arguments = build_parser().parse_args()
    try:
        check_job_dir(_arguments.job_dir)
    except OSError as _err:
        print(f"error: {_err}", file=sys.stderr)
        sys.exit(2)
    console.import_tensorflow(console.set_verbose())

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from artifacts.export import (ASSETS, DEFAULT_SIGNATURE, EMBEDDINGS, IMAGE_BYTES, KEY, LABEL,  # noqa: E402
                              LABEL_MAP, SAVED_MODEL_PB, TEXT)
from preprocess.label_maps import decode_label_maps  # noqa: E402
from preprocess.records import decode_and_preprocess, to_uint8  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.models import config_from_saved, model_class  # noqa: E402
from trainer.models.base import GenerativeModel, SignatureSpec  # noqa: E402


class ServingModule(tf.Module):
    """What the SavedModel stores: the networks' variables (deduplicated) and nothing else."""

    def __init__(self, variables: list[tf.Variable]):
        super().__init__(name="genart_export")
        self.weights = list(variables)


# ---------------------------------------------------------------- signatures


def _tf_variable(variable):
    """The `tf.Variable` behind a Keras 3 variable (or the variable itself)."""
    return variable if isinstance(variable, tf.Variable) else variable.value


def network_variables(specs: dict[str, SignatureSpec]) -> list[tf.Variable]:
    """Every variable of every signature's networks, each once, in a stable order."""
    seen, out = set(), []
    for spec in specs.values():
        for network in spec.networks:
            for variable in network.variables:
                tf_var = _tf_variable(variable)
                if id(tf_var) not in seen:
                    seen.add(id(tf_var))
                    out.append(tf_var)
    return out


def _input_spec(kind: str, latent_dim: int) -> tf.TensorSpec:
    if kind == EMBEDDINGS:
        return tf.TensorSpec([None, latent_dim], tf.float32, name=EMBEDDINGS)
    if kind == IMAGE_BYTES:
        return tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)
    if kind == LABEL:
        return tf.TensorSpec([None], tf.int64, name=LABEL)
    if kind in (TEXT, LABEL_MAP):
        return tf.TensorSpec([None], tf.string, name=kind)
    raise ValueError(f"unknown signature input kind {kind!r} (expected {EMBEDDINGS!r}, {IMAGE_BYTES!r}, {LABEL!r}, "
                     f"{LABEL_MAP!r} or {TEXT!r})")


def decode_images(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """string [N] (JPEG/PNG/GIF/BMP) -> float32 [N, image_size, image_size, 3] in [-1, 1], as the trainer sees them."""
    return tf.map_fn(lambda one: decode_and_preprocess(one, image_size), image_bytes,
                     fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))


def encode_png(images: tf.Tensor) -> tf.Tensor:
    """float [N, H, W, 3] in [-1, 1] -> string [N] of PNG files."""
    return tf.map_fn(tf.io.encode_png, to_uint8(images), fn_output_signature=tf.TensorSpec([], tf.string))


def _to_model_input(kind: str, value: tf.Tensor, config: TrainConfig) -> tf.Tensor:
    if kind == LABEL_MAP:  # PNGs -> int32 [N, S, S] class ids, nearest class colour (config.class_colors)
        return decode_label_maps(value, config.image_size, config.class_colors)
    return decode_images(value, config.image_size) if kind == IMAGE_BYTES else value


def _to_output(kind: str, value: tf.Tensor, config: TrainConfig) -> tf.Tensor:
    if kind == IMAGE_BYTES:
        return encode_png(value)
    if kind == EMBEDDINGS:
        return tf.ensure_shape(tf.cast(value, tf.float32), [None, config.latent_dim])
    raise ValueError(f"unknown signature output kind {kind!r} (expected {EMBEDDINGS!r} or {IMAGE_BYTES!r})")


def _empty_batch_output(fn, model_inputs: list[tf.Tensor]) -> tf.Tensor:
    """`fn`'s output for an empty batch, shaped right: the networks run on one zero row, which is then dropped.

    (oneDNN's batch norm refuses a batch of zero rows, so an empty request must not reach the networks as is.)
    """
    one_row = [tf.zeros(tf.concat([[1], tf.shape(x)[1:]], axis=0), x.dtype) for x in model_inputs]
    return fn(*one_row)[:0]


def signature_function(spec: SignatureSpec, config: TrainConfig):
    """The concrete function of one signature: {spec.input, *spec.extra_inputs, key} -> {spec.output, key}, N in,
    N out."""
    names = [spec.input, *spec.extra_inputs]

    def serve(*inputs):
        *inputs, key = inputs
        for name, value in zip(names, inputs):
            tf.debugging.assert_equal(tf.shape(key)[0], tf.shape(value)[0],
                                      message=f"'{name}' and '{KEY}' must have the same number of instances")
        model_inputs = [_to_model_input(spec.input, inputs[0], config), *inputs[1:]]
        model_inputs += [key] if spec.takes_key else []
        outputs = tf.cond(tf.shape(model_inputs[0])[0] > 0, lambda: spec.fn(*model_inputs),
                          lambda: _empty_batch_output(spec.fn, model_inputs))
        return {spec.output: _to_output(spec.output, outputs, config), KEY: tf.identity(key)}

    specs = [_input_spec(name, config.latent_dim) for name in names] + [tf.TensorSpec([None], tf.string, name=KEY)]
    traced = tf.function(serve, input_signature=specs, jit_compile=False)  # never XLA: string and image ops
    return traced.get_concrete_function()


def build_signatures(model: GenerativeModel) -> tuple[ServingModule, dict]:
    """(the module to save, {signature name: concrete function}) including `serving_default`."""
    default, specs = model.export_spec()
    if default not in specs:
        raise ValueError(f"export_spec() names {default!r} as serving_default but defines only {sorted(specs)}")
    if DEFAULT_SIGNATURE in specs:
        raise ValueError(f"export_spec() must not define {DEFAULT_SIGNATURE!r} itself; it names the default")
    signatures = {name: signature_function(spec, model.config) for name, spec in specs.items()}
    signatures[DEFAULT_SIGNATURE] = signatures[default]
    return ServingModule(network_variables(specs)), signatures


# ---------------------------------------------------------------- writing export/


def _save(model: GenerativeModel, local_dir: str) -> None:
    module, signatures = build_signatures(model)
    tf.saved_model.save(module, local_dir, signatures=signatures)
    # Plain files in assets/, not tracked `tf.saved_model.Asset`s: those would add an init-op signature
    # (`__saved_model_init_op`), and `saved_model_cli show --all` must list exactly the contract's signatures.
    for name, content in model.export_assets().items():
        os.makedirs(os.path.join(local_dir, ASSETS), exist_ok=True)
        with open(os.path.join(local_dir, ASSETS, name), "wb") as f:
            f.write(content)


def export_model(model: GenerativeModel, job_dir: str) -> str:
    """Write the model's SavedModel to `<job_dir>/export/` (replacing any previous one); return that path."""
    target = jobs.export_dir(job_dir)
    if storage.is_gcs(job_dir):
        staging = storage.local_staging_dir("genart-export-")
    else:  # a hidden sibling: same file system, so publishing is a rename
        os.makedirs(job_dir, exist_ok=True)
        staging = os.path.join(job_dir, f".{jobs.EXPORT}-tmp-{uuid.uuid4().hex[:8]}")
    try:
        _save(model, staging)
        storage.publish(staging, target, markers=[SAVED_MODEL_PB])
    finally:
        storage.rmtree(staging)  # gone after publishing; removes a half-written one otherwise
    return target


# ---------------------------------------------------------------- python -m trainer.export


def load_job_config(job_dir: str) -> TrainConfig:
    """The job's config from its saved config.json (also one written by an older genart)."""
    check_job_dir(job_dir)
    return config_from_saved(storage.read_json(jobs.config_path(job_dir)))


def restore_latest_checkpoint(model: GenerativeModel, checkpoint_dir: str) -> str:
    """Restore the newest checkpoint of a local `checkpoint_dir` into the built model; return its path.

    The loop's checkpoint also holds its `step`, which export does not need (hence `expect_partial`); every
    network and optimizer of the model must be found in it.
    """
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if not latest:
        raise FileNotFoundError(f"no checkpoint in {checkpoint_dir}: train the job first")
    return restore_checkpoint(model, latest)


def restore_checkpoint(model: GenerativeModel, prefix: str, **loop_items) -> str:
    """Restore the local checkpoint `prefix` (`.../ckpt-N`) into the built model (and the loop's own items, such
    as its `step`, when given); return `prefix`.

    Every network and optimizer must be in the checkpoint. An item the model derives from its weights and data
    (`derived_checkpoint_items`) that an older checkpoint lacks is refit from the job's data instead.
    """
    saved = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(prefix)}
    items = {**model.checkpoint_items(), **loop_items}
    missing = sorted(name for name in model.derived_checkpoint_items() if name in items and name not in saved)
    status = tf.train.Checkpoint(**{k: v for k, v in items.items() if k not in missing}).restore(prefix)
    (status if loop_items else status.expect_partial()).assert_existing_objects_matched()
    if missing:
        with storage.local_copy(model.config.data_dir, "genart-data-") as data_dir:
            model.refresh_sampling(data_dir)
    return prefix


def float32_twin(model: GenerativeModel) -> GenerativeModel:
    """`model` itself when it computes in float32, else the same model rebuilt under the float32 policy with its
    weights: a mixed-precision job exports float32 graphs, the very ones `python -m trainer.export` rebuilds."""
    from trainer import precision

    if precision.resolve(model.config.precision) == precision.FLOAT32:
        return model
    twin = model_class(model.config.model)(model.config)
    twin.build_for_training()
    twin_items = twin.checkpoint_items()
    for name, item in model.checkpoint_items().items():
        if isinstance(item, keras.layers.Layer):  # the networks (and derived layers such as the prior map)
            twin_items[name].set_weights(item.get_weights())
    return twin


def export_job(job_dir: str) -> str:
    """Rebuild the job's model from its config, restore its latest checkpoint and export it."""
    config = load_job_config(job_dir)
    model = model_class(config.model)(config)
    model.build_for_training()
    # TF's own gs:// file system knows nothing of STORAGE_EMULATOR_HOST: restore from a local copy
    with storage.local_copy(storage.join(job_dir, jobs.CHECKPOINTS), "genart-checkpoints-") as checkpoint_dir:
        restore_latest_checkpoint(model, checkpoint_dir)
    return export_model(model, job_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return console.run(lambda: print(f"exported {export_job(args.job_dir)}"), FileNotFoundError, ValueError)


if __name__ == "__main__":
    sys.exit(main())
