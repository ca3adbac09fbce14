"""Training defects of issue 12: the CycleGAN pool never returns a slot twice in a batch and scales with the
per-replica batch; BatchNorm statistics are synchronised over replicas; non-finite weights after a step with
finite losses are never saved or exported (the job fails naming the step, a rerun resumes from the last finite
checkpoint); two workers read disjoint records.

Tiny everything: 16 px images, 4 base filters, a few steps; multi-replica cases run in a fresh process with two
logical CPUs, multi-worker ones as two processes with TF_CONFIG on 127.0.0.1 ports.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT, free_port
from saved_model_tools import run_python_json
from train_data import checkpoint_step, read_job, write_records

from trainer.models.cyclegan import CycleGAN, HistoryPool
from trainer.models.cyclegan_config import CycleGANConfig

TIMEOUT = 300
VAEGAN_FLAGS = ["--model", "vaegan", "--image-size", "16", "--base-filters", "4", "--latent-dim", "4",
                "--batch-size", "8", "--summary-every-steps", "1", "--sample-every-steps", "1000"]


def constant_images(ids, size: int) -> tf.Tensor:
    return tf.constant(np.stack([np.full([size, size, 3], i, np.float32) for i in ids]))


# ---------------------------------------------------------------- the CycleGAN pool


def test_pool_refuses_a_batch_larger_than_itself():
    """Slots are drawn without replacement: a batch larger than the pool would have to repeat one."""
    pool = HistoryPool(2, [1, 1, 3])
    with pytest.raises(ValueError, match="larger than the pool"):
        pool.query(constant_images([1, 2, 3], 1), tf.constant([1, 2], tf.int64))


def test_cyclegan_pool_scales_with_the_per_replica_batch_and_never_repeats_a_slot():
    config = CycleGANConfig(image_size=16, base_filters=4, n_blocks=1, batch_size=4, pool_size=2,
                            max_steps=10).validate()
    model = CycleGAN(config)
    model.build_for_training()
    pool = model.pool_a
    assert pool.size == 8  # --pool-size images per image of the per-replica batch (2 x 4)
    query = tf.function(pool.query)
    for step in range(40):
        new = list(range(100 * (step + 1), 100 * (step + 1) + 4))
        answer = query(constant_images(new, 16), tf.constant([3, step], tf.int64))
        out = [int(v) for v in np.asarray(answer)[:, 0, 0, 0]]
        old = [i for i in out if i not in new]
        assert len(old) == len(set(old)), (step, out)


# ---------------------------------------------------------------- two replicas: BatchNorm and pool size

TWO_REPLICAS = """
import json
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer import networks
from trainer.models.cyclegan import CycleGAN
from trainer.models.cyclegan_config import CycleGANConfig

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    encoder = networks.build("dcgan_encoder", image_size=16, latent_dim=4, base_filters=4)
    cyclegan = CycleGAN(CycleGANConfig(image_size=16, base_filters=4, n_blocks=1, batch_size=4, pool_size=3,
                                       max_steps=10).validate())
    cyclegan.build_for_training()
rng = np.random.default_rng(0)
halves = [rng.normal(0, 1, [2, 16, 16, 3]).astype(np.float32), rng.normal(3, 2, [2, 16, 16, 3]).astype(np.float32)]
images = strategy.experimental_distribute_values_from_function(lambda ctx: halves[ctx.replica_id_in_sync_group])

@tf.function
def forward(x):
    return strategy.run(lambda x: encoder(x, training=True)[0], args=(x,))

per_replica = np.concatenate([v.numpy() for v in strategy.experimental_local_results(forward(images))])
single = networks.build("dcgan_encoder", image_size=16, latent_dim=4, base_filters=4)
single.set_weights([v.numpy() for v in encoder.weights])
whole_batch = single(np.concatenate(halves), training=True)[0].numpy()
print(json.dumps({"max_difference": float(np.abs(per_replica - whole_batch).max()),
                  "pool_size": cyclegan.pool_a.size}))
"""


def test_two_replicas_share_batchnorm_statistics_and_size_the_pool_per_replica():
    """Under a two-replica MirroredStrategy a BatchNorm network in training mode normalises with the statistics
    of the whole global batch (as one device would), and the pool holds --pool-size x the per-replica batch."""
    result = run_python_json(TWO_REPLICAS)
    assert result["max_difference"] < 1e-4, result
    assert result["pool_size"] == 6, result  # 3 x (4 / 2 replicas)


# ---------------------------------------------------------------- non-finite weights with finite losses

POISONED = """
import sys
import tensorflow as tf
from trainer import task
from trainer.models.vaegan import VAEGAN

BAD_STEP = int(sys.argv[1])
build = VAEGAN.build_for_training

def build_with_a_poisoned_step(self):
    build(self)
    optimizer = self.decoder_optimizer
    apply = optimizer.apply_gradients

    def apply_nan_at_bad_step(grads_and_vars):  # NaN gradients; the step's losses were computed before
        bad = tf.equal(optimizer.iterations, BAD_STEP - 1)
        return apply([(tf.where(bad, g * float("nan"), g), v) for g, v in grads_and_vars])

    optimizer.apply_gradients = apply_nan_at_bad_step

VAEGAN.build_for_training = build_with_a_poisoned_step
sys.exit(task.main(sys.argv[2:]))
"""


def all_finite(checkpoint_prefix: str) -> bool:
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return all(np.isfinite(reader.get_tensor(key)).all() for key, dtype in reader.get_variable_to_dtype_map().items()
               if dtype.is_floating)


def test_non_finite_weights_are_never_saved_and_a_rerun_resumes_from_the_last_finite_checkpoint(tmp_path):
    data, job = write_records(str(tmp_path / "data"), n_train=16, n_val=4, image_size=16), tmp_path / "job"
    flags = VAEGAN_FLAGS + ["--data-dir", data, "--job-dir", str(job), "--max-steps", "4",
                            "--checkpoint-every-steps", "1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", POISONED, "4", *flags], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    record = read_job(job)
    assert record["state"] == "FAILED" and re.search(r"non-finite weights at step 4\b", record["error"]), record
    assert "last good checkpoint is step 3" in record["error"]
    assert checkpoint_step(job) == 3 and not os.path.exists(job / "export")
    assert all(all_finite(str(job / "checkpoints" / f"ckpt-{step}")) for step in (1, 2, 3))

    done = subprocess.run([sys.executable, "-m", "trainer.task", *flags], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)  # the same job, nothing poisoned
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "at step 3" in done.stdout + done.stderr
    assert read_job(job)["state"] == "SUCCEEDED" and all_finite(str(job / "checkpoints" / "ckpt-4"))


# ---------------------------------------------------------------- two workers read disjoint records

WORKER_IMAGES = """
import json, sys
import numpy as np
from trainer import loop, task

out, steps = sys.argv[1], int(sys.argv[2])
trainer = loop.Trainer(task.resolve_config(sys.argv[3:]))
trainer.prepare()
seen = []
for _ in range(steps):
    for local in trainer.strategy.experimental_local_results(next(trainer.iterator)):
        seen += [np.round((image + 1) * 127.5).astype(np.uint8).tobytes().hex() for image in np.asarray(local)]
with open(out, "w") as f:
    json.dump(seen, f)
"""


def train_images(data_dir: str) -> set[str]:
    from artifacts.dataset import split_files
    from preprocess.records import make_dataset

    dataset = make_dataset(split_files(data_dir, "train"), 16, True, 64, training=False, drop_remainder=False)
    return {np.round((image + 1) * 127.5).astype(np.uint8).tobytes().hex() for batch in dataset
            for image in np.asarray(batch)}


def test_two_workers_read_disjoint_shards_of_the_records(tmp_path):
    """32 train records, global batch 8 over two workers: 4 steps are one epoch for each worker, whose 16 images
    must be distinct, disjoint from the other worker's, and together every record once."""
    data = write_records(str(tmp_path / "data"), n_train=32, n_val=4, image_size=16, train_shards=3)
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    flags = VAEGAN_FLAGS + ["--data-dir", data, "--job-dir", str(tmp_path / "job"), "--max-steps", "4",
                            "--strategy", "multi_worker"]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", TF_CONFIG=json.dumps(tf_config))
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER_IMAGES, str(tmp_path / f"seen{index}.json"), "4",
                                       *flags], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    logs = [proc.communicate(timeout=TIMEOUT)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [log[-2000:] for log in logs]
    seen = [json.loads((tmp_path / f"seen{index}.json").read_text()) for index in range(2)]
    assert [len(images) for images in seen] == [16, 16]
    assert all(len(set(images)) == 16 for images in seen), "a worker read a record twice in one epoch"
    assert not set(seen[0]) & set(seen[1]), "the two workers read the same records"
    assert set(seen[0]) | set(seen[1]) == train_images(data)
