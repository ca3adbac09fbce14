"""Which `tf.distribute` strategy a job runs under, which worker writes files, whether to XLA-compile, and the
all-finite check of a step's variables (`float_variables`, `all_finite`).

--strategy auto          MirroredStrategy over all local GPUs when more than one is visible, else the default
--strategy default       the default (single-device) strategy
--strategy mirrored      MirroredStrategy over every local GPU (or the CPU)
--strategy multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG. Create it before any other
                         TensorFlow op runs (the loop does so first thing).
"""
from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger("genart.trainer")


def make_strategy(name: str) -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            log.warning("--strategy multi_worker without TF_CONFIG: running as a single worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one worker that writes job.json, summaries, samples, real checkpoints and the export.

    The chief is the `chief` task, or worker 0 when the cluster has no `chief` (TF's convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    cluster = resolver.cluster_spec().as_dict()
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and "chief" not in cluster)


def worker_description(strategy: tf.distribute.Strategy) -> str:
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    where = f", task {task.get('type')}:{task.get('index')}" if task else ""
    return f"{strategy_name(strategy)} with {strategy.num_replicas_in_sync} replica(s){where}"


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public name (tf.distribute.MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy)."""
    names = ((tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
             (tf.distribute.MirroredStrategy, "MirroredStrategy"))
    return next((name for kind, name in names if isinstance(strategy, kind)), "the default strategy")


def float_variables(trackables) -> list:
    """The floating-point variables of `trackables` (Keras models and optimizers, tf.Modules, bare variables),
    each once: what `all_finite` checks after every step."""
    found, seen = [], set()
    for item in trackables:
        for variable in getattr(item, "variables", None) or [item]:
            if id(variable) not in seen and tf.as_dtype(variable.dtype).is_floating:
                seen.add(id(variable))
                found.append(variable)
    return found


def all_finite(variables) -> tf.Tensor:
    """A bool scalar: no NaN or Inf in any of `variables` (one fused pass, no tf.debugging ops)."""
    if not variables:
        return tf.constant(True)
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))) for v in variables]))


def use_jit(override=None) -> bool:
    """XLA only on GPU: on CPU `jit_compile=True` made a GAN step ~15x slower here. `override` (bool) wins."""
    if override is not None:
        return bool(override)
    return bool(tf.config.list_physical_devices("GPU"))
