"""The compiled training call of the shared loop: up to `steps` steps on every replica per call into TensorFlow
(`--steps-per-execution`), with the non-finite and stop checks in the graph, so no step needs a host round trip."""
from __future__ import annotations

import tensorflow as tf

from trainer import distribute


class StepFunction:
    """`step_fn(iterator, stop_vote, steps)` -> float32 [steps done, losses + 2]: one row per step done, all-reduced
    over replicas: [losses... (in `loss_names` order), stop votes, replicas whose variables are not all finite
    after the step]. The call stops early, in the graph, after a step with a stop vote or a non-finite value, so
    no step runs past one the host would have stopped at."""

    def __init__(self, strategy: tf.distribute.Strategy, model, jit_compile: bool | None = None):
        self.strategy, self.model = strategy, model
        use_jit = distribute.use_jit(jit_compile)
        self.train_step = tf.function(model.train_step, jit_compile=True) if use_jit else model.train_step
        self.checked = distribute.float_variables(model.checkpoint_items().values())
        self.loss_names: list[str] = []  # known once traced
        self.function = tf.function(self._steps)
        self.one_step = tf.function(self._one_step)  # no loop in the graph: what --steps-per-execution 1 runs

    def __call__(self, iterator, stop_vote: float, steps: int):
        if steps == 1:
            return self.one_step(iterator, tf.constant(stop_vote))
        return self.function(iterator, tf.constant(stop_vote), tf.constant(steps))

    def _replica_step(self, batch, stop_vote):
        losses = self.train_step(batch)
        self.loss_names = list(losses)
        non_finite = 1.0 - tf.cast(distribute.all_finite(self.checked), tf.float32)  # read after the updates
        return tf.stack([tf.cast(losses[name], tf.float32) for name in self.loss_names] + [stop_vote, non_finite])

    def _step_row(self, iterator, stop_vote):
        packed = self.strategy.run(self._replica_step, args=(next(iterator), stop_vote))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, packed, axis=None)

    def _one_step(self, iterator, stop_vote):
        return self._step_row(iterator, stop_vote)[None]

    def _steps(self, iterator, stop_vote, steps):
        rows = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)
        done, going = tf.constant(0), tf.constant(True)
        while going and done < steps:
            row = self._step_row(iterator, stop_vote)
            rows = rows.write(done, row)
            done += 1
            going = tf.logical_and(tf.reduce_all(tf.math.is_finite(row)), tf.reduce_all(row[-2:] == 0.0))
        return rows.stack()
