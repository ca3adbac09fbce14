"""Issue 18 (training speed): the fused step computes what the unfused one does, --steps-per-execution keeps every
checkpoint / sample on its exact step and resumes exactly, and a mixed_bfloat16 run exports float32 signatures."""
from __future__ import annotations

import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_data import write_data

from artifacts import jobs
from trainer import loop
from trainer.models import config_class, model_class

TINY = {"vaegan": dict(image_size=32, batch_size=8, base_filters=8, latent_dim=8),
        "cyclegan": dict(image_size=32, batch_size=2, base_filters=4, n_blocks=1, pool_size=4)}


def tiny_batch(model: str):
    def images(seed: int, count: int):
        return tf.random.stateless_uniform([count, 32, 32, 3], [seed, 0], -1.0, 1.0)

    return images(1, 8) if model == "vaegan" else (images(1, 2), images(2, 2))


@pytest.mark.parametrize("model, stack_batches", [("vaegan", None), ("cyclegan", False), ("cyclegan", True)])
def test_fused_step_gives_the_losses_and_updates_of_the_unfused_one(model, stack_batches):
    """CycleGAN: both layouts of the fused step, the CPU's (separate calls) and the GPU's (stacked batches)."""
    runs = []
    for fused in (False, True):
        keras.utils.set_random_seed(0)
        instance = model_class(model)(config_class(model)(fused_step=fused, **TINY[model]))
        instance.build_for_training()
        if fused and stack_batches is not None:
            instance.stack_batches = stack_batches
        step = tf.function(instance.train_step)
        losses = [step(tiny_batch(model)) for _ in range(3)]  # CycleGAN: the pools fill, then swap
        runs.append(([{k: float(v) for k, v in step_losses.items()} for step_losses in losses],
                     [v.numpy() for v in instance.variables]))
    (unfused_losses, unfused_variables), (fused_losses, fused_variables) = runs
    for before, after in zip(unfused_losses, fused_losses):
        assert before.keys() == after.keys()
        np.testing.assert_allclose(list(after.values()), list(before.values()), rtol=1e-4, atol=1e-5)
    assert len(unfused_variables) == len(fused_variables)
    for before, after in zip(unfused_variables, fused_variables):
        np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-4)


@pytest.fixture(scope="module")
def vaegan_data(tmp_path_factory):
    return write_data("vaegan", tmp_path_factory.mktemp("speed_data"))


def train(data_dir, job_dir, max_steps: int, **options) -> loop.TrainResult:
    config = config_class("vaegan")(data_dir=str(data_dir), job_dir=str(job_dir), max_steps=max_steps,
                                    checkpoint_every_steps=3, summary_every_steps=5, sample_every_steps=5,
                                    eval_every_steps=0, **TINY["vaegan"], **options).validate()
    return loop.train(config, stream=io.StringIO())


def checkpoint_steps(job_dir) -> list[int]:
    state = tf.train.get_checkpoint_state(os.path.join(str(job_dir), jobs.CHECKPOINTS))
    return [int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths]


@pytest.fixture
def deterministic():
    """Op determinism (tf.data's parallel map and interleave too), so that two runs can be compared weight for
    weight."""
    tf.config.experimental.enable_op_determinism()
    yield
    from tensorflow.python.framework import config as tf_config  # (no public switch back)

    tf_config.disable_op_determinism()


def test_steps_per_execution_lands_on_exact_steps_and_resumes_exactly(vaegan_data, tmp_path, deterministic):
    final = {}
    for k in (4, 1):
        job = tmp_path / f"k{k}"
        assert train(vaegan_data, job, 7, steps_per_execution=k).step == 7
        assert checkpoint_steps(job) == [3, 6, 7]
        assert sorted(os.listdir(job / jobs.SAMPLES)) == [jobs.sample_name(0), jobs.sample_name(5)]
        result = train(vaegan_data, job, 10, steps_per_execution=k)  # resumed at 7
        assert result.step == 10 and checkpoint_steps(job) == [7, 9, 10]  # the 3 kept
        final[k] = [v.numpy() for v in result.model.variables]
    for with_k4, with_k1 in zip(final[4], final[1]):
        np.testing.assert_allclose(with_k4, with_k1, rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16_run_computes_in_bfloat16_and_exports_float32_signatures(vaegan_data, tmp_path):
    result = train(vaegan_data, tmp_path / "bf16", 2, precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is back
    compute = {layer.compute_dtype for layer in result.model.decoder.layers}
    assert compute == {"bfloat16", "float32"}  # mixed inside, the output layer float32
    assert result.model.decoder(tf.zeros([1, 8])).dtype == tf.float32
    loaded = tf.saved_model.load(result.export_dir)
    embeddings = loaded.signatures["embeddings"]
    assert embeddings.structured_input_signature[1]["embeddings"].dtype == tf.float32
    assert embeddings.structured_outputs["image_bytes"].dtype == tf.string
    image_bytes = loaded.signatures["image_bytes"]
    assert image_bytes.structured_input_signature[1]["image_bytes"].dtype == tf.string
    assert image_bytes.structured_outputs["embeddings"].dtype == tf.float32
    pngs = embeddings(embeddings=tf.zeros([2, 8]), key=tf.constant(["a", "b"]))["image_bytes"].numpy()
    assert all(png.startswith(b"\x89PNG") for png in pngs)


def _fresh_process_threads(branches: int, environment: dict | None = None) -> list[str]:
    """(what split_for_branches said, inter-op threads, intra-op threads) in a new Python process."""
    import subprocess
    import sys

    code = ("import tensorflow as tf; from trainer import threads; said = threads.split_for_branches(%d); "
            "print(said); print(tf.config.threading.get_inter_op_parallelism_threads()); "
            "print(tf.config.threading.get_intra_op_parallelism_threads())" % branches)
    env = {key: value for key, value in os.environ.items() if key not in ("TF_NUM_INTEROP_THREADS",
                                                                          "TF_NUM_INTRAOP_THREADS")}
    env.update(environment or {}, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-3:]


def test_two_branches_get_the_cores_split_between_them_in_a_fresh_process():
    from trainer import threads

    cores = threads.cpu_cores()
    said, inter, intra = _fresh_process_threads(2)
    assert said.startswith("2 branches side by side") and (inter, intra) == ("2", str(max(1, cores // 2)))
    assert _fresh_process_threads(1) == ["None", "0", "0"]  # one branch: TensorFlow's defaults (0: its choice)
    assert _fresh_process_threads(2, {"TF_NUM_INTRAOP_THREADS": "1"})[0] == "None"  # the user's setting wins


def test_threads_are_left_alone_once_tensorflow_runs_and_only_the_fused_cyclegan_step_has_branches():
    from trainer import threads

    tf.constant(1.0) + 1.0  # this process's TensorFlow has started
    assert threads.split_for_branches(2) is None
    cyclegan, vaegan = model_class("cyclegan"), model_class("vaegan")
    assert cyclegan.parallel_branches(config_class("cyclegan")()) == 2
    assert cyclegan.parallel_branches(config_class("cyclegan")(fused_step=False)) == 1
    assert vaegan.parallel_branches(config_class("vaegan")()) == 1
