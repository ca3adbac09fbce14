"""How a training process on CPUs splits its cores between TensorFlow's two thread pools.

TensorFlow's default runs the ops of a step one after another, each on every core (intra-op threads). A model whose
step has independent branches (`GenerativeModel.parallel_branches`: CycleGAN's A -> B -> A and B -> A -> B meet
only in the losses) runs faster with its branches side by side, each op on its branch's share of the cores: less
waiting between threads on small ops (README "Speed" has the figures). GPUs run ops on a stream: left alone.
TF_NUM_INTEROP_THREADS / TF_NUM_INTRAOP_THREADS, when set, are the user's choice and win.
"""
from __future__ import annotations

import os

import tensorflow as tf

THREAD_ENVIRONMENT = ("TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, which a container's CPU set narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split_for_branches(branches: int) -> str | None:
    """Run `branches` independent branches side by side: `branches` inter-op threads (ops run at once), each op on
    cores // branches intra-op threads. Call before TensorFlow runs anything in this process. Returns what was
    set, for the progress line, or None where it was left as it is: one branch, a GPU, the thread environment
    variables set, or TensorFlow already started (a test or notebook process keeps its pools)."""
    if branches <= 1 or any(os.environ.get(name) for name in THREAD_ENVIRONMENT):
        return None
    if tf.config.list_physical_devices("GPU"):
        return None
    cores = cpu_cores()
    per_branch = max(1, cores // branches)
    try:
        tf.config.threading.set_inter_op_parallelism_threads(branches)
        tf.config.threading.set_intra_op_parallelism_threads(per_branch)
    except RuntimeError:  # "cannot be modified after initialization"
        return None
    return f"{branches} branches side by side on {cores} CPU cores, {per_branch} thread(s) per op"
