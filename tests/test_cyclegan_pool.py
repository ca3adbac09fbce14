"""CycleGAN's training recipe pieces: the history pool of generated images and the learning-rate schedule.

Pool images here are constant images whose value is their id (0 = an empty slot), so a batch's history can be
read back from pixel values.
"""
from __future__ import annotations


import keras
import numpy as np
import pytest
import tensorflow as tf

from saved_model_tools import run_python_json

from trainer.models.cyclegan import ConstantThenLinearDecay, CycleGAN, HistoryPool
from trainer.models.cyclegan_config import CycleGANConfig

SHAPE = [2, 2, 3]


def batch_of(*ids) -> tf.Tensor:
    return tf.constant(np.stack([np.full(SHAPE, i, np.float32) for i in ids]))


def ids_of(images) -> list[int]:
    return [int(v) for v in np.asarray(images)[:, 0, 0, 0]]


def seed(i: int) -> tf.Tensor:
    return tf.constant([7, i], tf.int64)


def test_pool_returns_new_images_while_it_fills():
    pool = HistoryPool(4, SHAPE)
    assert ids_of(pool.query(batch_of(1, 2), seed(0))) == [1, 2]
    assert ids_of(pool.query(batch_of(3, 4), seed(1))) == [3, 4]
    assert sorted(ids_of(pool.images.numpy())) == [1, 2, 3, 4] and int(pool.count.numpy()) == 4


def test_a_batch_that_fills_the_pool_stores_its_first_images_and_may_swap_the_rest():
    pool = HistoryPool(3, SHAPE)
    pool.query(batch_of(1, 2), seed(0))
    out = ids_of(pool.query(batch_of(3, 4), seed(1)))
    assert out[0] == 3 and out[1] in (1, 2, 3, 4)
    assert int(pool.count.numpy()) == 3
    assert sorted(ids_of(pool.images.numpy()) + out) == sorted([1, 2, 3, 4] + [3])  # 3 stored and returned


@pytest.mark.parametrize("batch", [1, 3])
def test_full_pool_swaps_half_of_the_images_with_past_ones(batch):
    """Once full, each image comes back as an older one with p = 0.5; nothing is lost or duplicated (what is
    stored plus what is returned = what was stored plus what came in), and returned images are from the past."""
    pool = HistoryPool(5, SHAPE)
    query = tf.function(pool.query)
    next_id, step = 1, 0
    while int(pool.count.numpy()) < 5:
        query(batch_of(*range(next_id, next_id + batch)), seed(step))
        next_id, step = next_id + batch, step + 1
    swapped = total = 0
    for _ in range(600 // batch):
        new = list(range(next_id, next_id + batch))
        before = ids_of(pool.images.numpy())
        out = ids_of(query(batch_of(*new), seed(step)))
        after = ids_of(pool.images.numpy())
        assert sorted(before + new) == sorted(after + out)
        assert all(i in new or i in before for i in out) and 0 not in out
        swapped += sum(i not in new for i in out)
        total += batch
        next_id, step = next_id + batch, step + 1
    assert 0.43 < swapped / total < 0.57, swapped / total  # binomial(600, 0.5): > 3.4 standard deviations


def test_within_a_batch_swaps_take_distinct_slots():
    pool = HistoryPool(4, SHAPE)
    pool.query(batch_of(1, 2, 3, 4), seed(0))
    for step in range(1, 30):
        out = ids_of(pool.query(batch_of(*range(10 * step, 10 * step + 4)), seed(step)))
        old = [i for i in out if i < 10 * step]
        assert len(old) == len(set(old))


def test_query_keeps_shape_and_dtype_and_runs_in_one_graph_without_python_side_effects():
    pool = HistoryPool(3, SHAPE)
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([2, *SHAPE], tf.float32), tf.TensorSpec([2], tf.int64)])
    def query(images, rng_seed):
        traces.append(1)  # runs only while tracing
        return pool.query(images, rng_seed)

    outputs = [ids_of(query(batch_of(i, -i), seed(i))) for i in range(1, 21)]
    assert len(traces) == 1
    assert query.get_concrete_function().structured_outputs.shape == (2, *SHAPE)
    assert query(batch_of(1, 2), seed(0)).dtype == tf.float32
    assert int(pool.count.numpy()) == 3  # state changed inside the graph
    assert any(out != [i, -i] for i, out in enumerate(outputs, start=1))  # old images came back


def test_same_state_and_seeds_give_the_same_answers(tmp_path):
    """Stateless randomness + the pool in the checkpoint: a resumed run continues exactly."""
    pool = HistoryPool(3, SHAPE)
    for step in range(5):
        pool.query(batch_of(step + 1), seed(step))
    path = tf.train.Checkpoint(pool=pool).save(str(tmp_path / "pool"))
    later = [ids_of(pool.query(batch_of(10 + step), seed(step))) for step in range(5, 15)]

    restored = HistoryPool(3, SHAPE)
    tf.train.Checkpoint(pool=restored).restore(path).assert_existing_objects_matched()
    assert [ids_of(restored.query(batch_of(10 + step), seed(step))) for step in range(5, 15)] == later


def test_pool_of_size_zero_passes_images_through():
    pool = HistoryPool(0, SHAPE)
    assert ids_of(pool.query(batch_of(5, 6), seed(0))) == [5, 6] and not pool.variables


def test_query_compiles_with_xla():
    """The loop XLA-compiles the train step on GPUs: the pool uses static shapes only."""
    pool = HistoryPool(2, SHAPE)
    query = tf.function(pool.query, jit_compile=True)
    assert ids_of(query(batch_of(1, 2), seed(0))) == [1, 2]
    assert all(i in (1, 2, 3, 4) for i in ids_of(query(batch_of(3, 4), seed(1))))


def test_pool_under_a_one_device_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        pool = HistoryPool(2, SHAPE)
    assert isinstance(pool.images, tf.distribute.DistributedValues)

    @tf.function
    def query(images, rng_seed):
        return strategy.run(pool.query, args=(images, rng_seed))

    assert ids_of(query(batch_of(1), seed(0))) == [1]
    query(batch_of(2), seed(1))
    assert sorted(ids_of(pool.images.values[0].numpy())) == [1, 2]


TWO_REPLICAS = """
import json
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer.models.cyclegan import HistoryPool
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    pool = HistoryPool(3, [1, 1, 1])

@tf.function
def step(images, i):
    def query(x):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return pool.query(x, tf.random.experimental.stateless_fold_in(tf.stack([i, 0]), replica))
    return strategy.run(query, args=(images,))

for i in range(8):  # replica r gets the image 100 * (r + 1) + i
    images = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.fill([1, 1, 1, 1], 100.0 * (ctx.replica_id_in_sync_group + 1) + i))
    step(images, tf.constant(i, tf.int64))
path = tf.train.Checkpoint(pool=pool).save(__import__("sys").argv[1])
with strategy.scope():
    restored = HistoryPool(3, [1, 1, 1])
tf.train.Checkpoint(pool=restored).restore(path).assert_existing_objects_matched()
print(json.dumps({"pools": [v.numpy().ravel().tolist() for v in pool.images.values],
                  "restored": [v.numpy().ravel().tolist() for v in restored.images.values]}))
"""


def test_each_replica_keeps_its_own_pool_and_checkpoints_keep_the_first(tmp_path):
    result = run_python_json(TWO_REPLICAS, str(tmp_path / "pool"))
    first, second = result["pools"]
    assert all(100 <= v < 200 for v in first) and all(200 <= v < 300 for v in second)
    assert result["restored"] == [first, first]


# ---------------------------------------------------------------- learning-rate schedule


def test_learning_rate_is_constant_for_the_first_half_then_falls_linearly_to_zero():
    schedule = ConstantThenLinearDecay(2e-4, max_steps=10)
    rates = [float(schedule(step)) for step in range(13)]
    np.testing.assert_allclose(rates[:6], 2e-4)
    np.testing.assert_allclose(rates[5:11], [2e-4, 1.6e-4, 1.2e-4, 0.8e-4, 0.4e-4, 0.0], atol=1e-10)
    assert rates[11:] == [0.0, 0.0]
    odd = ConstantThenLinearDecay(1.0, max_steps=7)  # decay over steps 3..7
    np.testing.assert_allclose([float(odd(s)) for s in (0, 3, 5, 7)], [1.0, 1.0, 0.5, 0.0])
    assert ConstantThenLinearDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_optimizers_follow_the_schedule_through_their_checkpointed_iterations(tmp_path):
    config = CycleGANConfig(image_size=16, base_filters=2, n_blocks=1, batch_size=1, max_steps=100,
                            learning_rate=1e-3).validate()
    model = CycleGAN(config)
    model.build_for_training()
    assert model.learning_rates(0) == pytest.approx({"generators": 1e-3, "discriminators": 1e-3})
    assert model.learning_rates(75) == pytest.approx({"generators": 5e-4, "discriminators": 5e-4})
    for optimizer in (model.g_optimizer, model.d_optimizer):
        optimizer.iterations.assign(75)
    path = tf.train.Checkpoint(**model.checkpoint_items()).save(str(tmp_path / "ckpt"))

    keras.utils.set_random_seed(1)
    resumed = CycleGAN(config)
    resumed.build_for_training()
    tf.train.Checkpoint(**resumed.checkpoint_items()).restore(path).assert_existing_objects_matched()
    for optimizer in (resumed.g_optimizer, resumed.d_optimizer):
        assert int(optimizer.iterations.numpy()) == 75
        assert float(optimizer.learning_rate) == pytest.approx(5e-4)
