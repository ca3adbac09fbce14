"""`--precision`: the Keras dtype policy the networks are built under, and float32 outputs whatever the policy.

float32 everywhere, or Keras mixed precision (float32 variables, bfloat16 / float16 compute). Every network built
by `trainer.networks.build` under a mixed policy gets float32 output layers (`float32_outputs`), so losses,
sample images and the exported signatures stay float32; float16 also needs loss scaling, which the models get
from `scaled_optimizer` and `Optimizer.scale_loss`.
"""
from __future__ import annotations

import contextlib

import keras

FLOAT32 = "float32"


def resolve(precision: str) -> str:
    """The policy name `precision` means here: auto is mixed_bfloat16 on GPUs of compute capability >= 8,
    mixed_float16 on >= 7, float32 otherwise (every CPU keeps the float32 maths)."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
                    for gpu in tf.config.list_physical_devices("GPU")]
    if not capabilities:
        return FLOAT32
    lowest = min(capabilities)
    return "mixed_bfloat16" if lowest >= (8, 0) else "mixed_float16" if lowest >= (7, 0) else FLOAT32


@contextlib.contextmanager
def policy(precision: str):
    """Build (and train) under the policy `precision` resolves to; the previous global policy afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve(precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def is_mixed() -> bool:
    return keras.config.dtype_policy().compute_dtype != keras.config.dtype_policy().variable_dtype


def float32_outputs(network: keras.Model) -> keras.Model:
    """Under a mixed policy: the layers whose outputs are `network`'s outputs compute in float32 (the same layers
    and variables, so checkpoints are those of a float32 network). Unchanged otherwise."""
    if is_mixed() and hasattr(network, "outputs"):
        for tensor in network.outputs:
            layer = tensor._keras_history.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            layer.dtype_policy = FLOAT32
            float32_outputs(layer)  # a nested network (cgan's generator body): its own output layers too
    return network


def scaled_optimizer(optimizer: keras.optimizers.Optimizer, precision: str) -> keras.optimizers.Optimizer:
    """`optimizer`, wrapped in dynamic loss scaling when `precision` (the config's) means mixed_float16 (models take
    gradients of `optimizer.scale_loss(loss)`, which `apply_gradients` unscales; a step with non-finite gradients is
    skipped). Decided by the config, not the global policy, so that a model rebuilt from a job's config for export
    or evaluation has the optimizers its checkpoints hold."""
    if resolve(precision) == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")
    return optimizer
