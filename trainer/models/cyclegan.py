"""CycleGAN (Zhu et al. 2017) with the reference implementation's training recipe, as a `GenerativeModel`.

Owns the model (two generators G_ab: A → B and G_ba: B → A, two discriminators D_a, D_b: by default the ResNet and
PatchGAN networks of `trainer/networks/resnet.py`), its losses (adversarial, LSGAN by default; cycle consistency
λ·L1; identity 0.5λ·L1), one `train_step` (= one update of both generators, then of both discriminators), the
history pool of generated images each discriminator learns from (`HistoryPool`, TF ops only; `--pool-size` slots
per image of the per-replica batch) and the learning-rate schedule (`ConstantThenLinearDecay`). Data: unpaired
domains in `DATA/A/` and `DATA/B/` (the layout `python -m preprocess` writes for `trainA/ trainB/ [testA/ testB/]`).
Options: `cyclegan_config.py`. `fused_step` (the same maths, faster; false: the old step, for comparison): instance
norm through the fused kernel (`networks/fused_norm.py`), the RGB convs on 2×2 blocks on CPUs
(`networks/space_to_depth_conv.py`), each discriminator once on [real; pooled fake]; on GPUs, 3 generator calls
on stacked batches instead of 6; on CPUs, the two cycles as 2 branches run side by side (`trainer/threads.py`).
The shared loop, checkpoints and export are not here: they only see the `GenerativeModel` contract.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from artifacts.dataset import DOMAINS, domain_dir, read_manifest, split_files
from preprocess.records import make_dataset
from trainer import losses, networks
from trainer.models.base import (IMAGE_BYTES, EvaluationSets, GenerativeModel, SignatureSpec, image_split_dataset,
                                 make_grid, step_seeds)
from trainer.models.cyclegan_config import CycleGANConfig
from trainer.networks import fused_norm
from trainer.precision import scaled_optimizer

FIXED_IMAGES_PER_DOMAIN = 4   # images per domain in the sample grids
SWAP_PROBABILITY = 0.5        # once the pool is full: chance of answering with a stored image


class HistoryPool(tf.Module):
    """The last `size` generated images, so a discriminator also sees older generator outputs (Shrivastava et al.).

    `query(images, seed)` follows the reference `ImagePool`, image by image through the batch: while the pool is
    filling, an image is stored and returned as is; once full, with probability 0.5 it takes the place of a random
    stored image, which is returned instead, else it is returned as is. The slots drawn within one batch are
    distinct, so no slot is returned twice (a batch larger than the pool is refused: the model sizes its pools
    by the per-replica batch); a swap may return an image stored earlier in the same batch, as the sequential
    reference would.

    State: `images` [size, H, W, 3] and `count`, updated with TF ops and static shapes only (so the query also
    compiles with XLA), randomness stateless from `seed` (so a resumed run draws what the uninterrupted one would
    have). Create the pool under the strategy's scope: the variables are `ON_READ` with `ONLY_FIRST_REPLICA`
    aggregation, i.e. every replica keeps its own pool of its own images (as one reference process would, with
    no cross-device traffic), and a checkpoint saves the first replica's pool and restores it into every replica.
    `size` 0 disables the pool.
    """

    def __init__(self, size: int, image_shape, name: str | None = None):
        super().__init__(name=name)
        self.size = int(size)
        if self.size < 0:
            raise ValueError(f"--pool-size must be >= 0, got {size}")
        if not self.size:
            return
        per_replica = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.images = tf.Variable(tf.zeros([self.size, *image_shape], tf.float32), name="images", **per_replica)
        self.count = tf.Variable(0, dtype=tf.int32, name="count", **per_replica)

    def query(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """A batch of the same shape: new images while filling, then each one with p=0.5 a stored older one.

        `seed`: int [2], a stateless RNG seed (a different one for every call).
        """
        images = tf.convert_to_tensor(images, tf.float32)
        if not self.size:
            return images
        if images.shape[0] is not None and images.shape[0] > self.size:
            raise ValueError(f"a batch of {images.shape[0]} images is larger than the pool ({self.size} slots): "
                             f"it would return a slot twice")
        slot_seed, coin_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        index = tf.range(tf.shape(images)[0])
        count = self.count.read_value()
        scratch = self.size  # an extra row that absorbs the writes of images that store nothing
        stored = tf.concat([self.images.read_value(), tf.zeros([1, *self.images.shape[1:]], tf.float32)], axis=0)

        # Filling: image i takes slot count + i while that slot is free, and comes back unchanged.
        filling = count + index < self.size
        stored = tf.tensor_scatter_nd_update(stored, tf.where(filling, count + index, scratch)[:, None], images)

        # Full: each other image, with p=0.5, trades places with the image in a random slot (distinct slots).
        random_slots = tf.argsort(tf.random.stateless_uniform([self.size], slot_seed))
        slots = tf.gather(random_slots, index % self.size)
        swap = tf.logical_and(tf.logical_not(filling),
                              tf.random.stateless_uniform(tf.shape(index), coin_seed) < SWAP_PROBABILITY)
        old = tf.gather(stored, slots)
        stored = tf.tensor_scatter_nd_update(stored, tf.where(swap, slots, scratch)[:, None], images)

        self.images.assign(stored[:self.size])
        self.count.assign(count + tf.reduce_sum(tf.cast(filling, tf.int32)))
        return tf.where(swap[:, None, None, None], old, images)


@keras.saving.register_keras_serializable(package="genart")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` until `decay_start` (default: half of `max_steps`), then linearly down to 0 at `max_steps`.

    Evaluated at the optimizer's `iterations` (one per step), which the checkpoint holds, so a resumed job
    continues on the same curve.
    """

    def __init__(self, learning_rate: float, max_steps: int, decay_start: int | None = None):
        self.learning_rate = float(learning_rate)
        self.max_steps = int(max_steps)
        self.decay_start = self.max_steps // 2 if decay_start is None else int(decay_start)

    def __call__(self, step):
        decay_steps = float(max(self.max_steps - self.decay_start, 1))
        remaining = (float(self.max_steps) - tf.cast(step, tf.float32)) / decay_steps
        return self.learning_rate * tf.clip_by_value(remaining, 0.0, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "max_steps": self.max_steps, "decay_start": self.decay_start}


class CycleGAN(GenerativeModel):
    """CycleGAN: G_ab, G_ba, D_a, D_b, two Adam optimizers (generators, discriminators) and two history pools."""

    def __init__(self, config: CycleGANConfig, **kwargs):
        super().__init__(config, name=kwargs.pop("name", "cyclegan"), **kwargs)
        self.discriminator_loss, self.generator_loss = losses.get_gan_losses(config.gan_loss)
        self.schedule = ConstantThenLinearDecay(config.learning_rate, config.max_steps)

    # ---------------------------------------------------------------- data

    def _domain_files(self, data_dir: str, domain: str, split: str) -> list[str]:
        files = split_files(domain_dir(data_dir, domain), split)
        if not files and split == "train":
            raise FileNotFoundError(
                f"no {split} TFRecords in {domain_dir(data_dir, domain)}: CycleGAN data is {data_dir}/A and "
                f"{data_dir}/B, as `python -m preprocess` writes for an input folder holding trainA/ and trainB/")
        return files

    def _center_crop(self, data_dir: str, domain: str) -> bool:
        manifest = read_manifest(domain_dir(data_dir, domain))
        return bool(manifest.get("center_crop", self.config.center_crop))

    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Infinite batches `(a, b)`: independent shuffles of the two domains (the data is unpaired).

        Shuffle and crop seeds follow TF's global seed, which the loop sets per (seed, resumed step).
        """
        def domain_dataset(domain: str) -> tf.data.Dataset:
            return make_dataset(self._domain_files(data_dir, domain, "train"), self.config.image_size,
                                self._center_crop(data_dir, domain), global_batch_size, training=True, seed=None,
                                input_context=input_context, cache_mib=self.config.input_cache_mib)

        return tf.data.Dataset.zip(tuple(domain_dataset(domain) for domain in DOMAINS))

    def fixed_batch(self, data_dir: str):
        """`(a, b)`: the first few center-cropped val (else train) images of each domain."""
        def first_images(domain: str) -> tf.Tensor:
            files = self._domain_files(data_dir, domain, "val") or self._domain_files(data_dir, domain, "train")
            ds = make_dataset(files, self.config.image_size, True, FIXED_IMAGES_PER_DOMAIN, training=False,
                              drop_remainder=False)
            return next(iter(ds))

        return tuple(first_images(domain) for domain in DOMAINS)

    # ---------------------------------------------------------------- training

    @classmethod
    def parallel_branches(cls, config: CycleGANConfig) -> int:
        """A -> B -> A and B -> A -> B: separate calls until the losses (the fused step's CPU layout)."""
        return 2 if config.fused_step else 1

    def build_for_training(self) -> None:
        cfg = self.config
        # The fused step stacks batches on GPUs (one stream: fewer, larger kernels); on CPUs the calls stay apart, as
        # two branches that run side by side on their share of the cores.
        self.stack_batches = cfg.fused_step and bool(tf.config.list_physical_devices("GPU"))
        size = cfg.image_size
        generator = dict(image_size=size, base_filters=cfg.base_filters, n_blocks=cfg.resolved_n_blocks)
        discriminator = dict(image_size=size, base_filters=cfg.base_filters)
        with fused_norm.kernels(cfg.fused_step):
            self.g_ab = networks.build(cfg.generator, name="g_ab", **generator)
            self.g_ba = networks.build(cfg.generator, name="g_ba", **generator)
            self.d_a = networks.build(cfg.discriminator, name="d_a", **discriminator)
            self.d_b = networks.build(cfg.discriminator, name="d_b", **discriminator)
        self.g_optimizer = scaled_optimizer(keras.optimizers.Adam(self.schedule, beta_1=cfg.beta1, name="g_optimizer"),
                                            cfg.precision)
        self.d_optimizer = scaled_optimizer(keras.optimizers.Adam(self.schedule, beta_1=cfg.beta1, name="d_optimizer"),
                                            cfg.precision)
        self.g_optimizer.build(self._generator_variables())
        self.d_optimizer.build(self._discriminator_variables())
        slots = self.pool_slots()
        self.pool_a = HistoryPool(slots, [size, size, 3], name="pool_a")  # fake A images, for D_a
        self.pool_b = HistoryPool(slots, [size, size, 3], name="pool_b")  # fake B images, for D_b

    def pool_slots(self) -> int:
        """Slots of each pool: --pool-size per image of the per-replica batch (the paper's 50 at batch 1), so
        pooled images are as many steps old at any batch size and a batch never needs a slot twice."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return self.config.pool_size * max(1, self.config.batch_size // replicas)

    def _generator_variables(self) -> list:
        return self.g_ab.trainable_variables + self.g_ba.trainable_variables

    def _discriminator_variables(self) -> list:
        return self.d_a.trainable_variables + self.d_b.trainable_variables

    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _translations(self, real_a, real_b, identity: bool):
        """(fake_b, fake_a, cycled_a, cycled_b, same_b, same_a): G_ab(a), G_ba(b), G_ba(G_ab(a)), G_ab(G_ba(b)) and
        the identity mappings G_ab(b), G_ba(a) (None without `identity`). `stack_batches`: 3 generator calls on
        stacked batches (G_ab on [a; b], G_ba on [b; a; G_ab(a)], G_ab on G_ba(b)), exact as instance norm
        normalises each image on its own; else 6 calls, one per batch."""
        g_ab, g_ba = (lambda x: self.g_ab(x, training=True)), (lambda x: self.g_ba(x, training=True))
        if not self.stack_batches:
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            same_b, same_a = (g_ab(real_b), g_ba(real_a)) if identity else (None, None)
            return fake_b, fake_a, g_ba(fake_b), g_ab(fake_a), same_b, same_a
        if identity:
            fake_b, same_b = tf.split(g_ab(tf.concat([real_a, real_b], 0)), 2)
            fake_a, same_a, cycled_a = tf.split(g_ba(tf.concat([real_b, real_a, fake_b], 0)), 3)
        else:
            fake_b, same_b, same_a = g_ab(real_a), None, None
            fake_a, cycled_a = tf.split(g_ba(tf.concat([real_b, fake_b], 0)), 2)
        return fake_b, fake_a, cycled_a, g_ab(fake_a), same_b, same_a

    def _real_and_fake_scores(self, discriminator, real, fake):
        """D(real), D(fake): one call on [real; fake] with `fused_step` (exact: the PatchGAN normalises per
        image), else two."""
        if self.config.fused_step:
            return tf.split(discriminator(tf.concat([real, fake], 0), training=True), 2)
        return discriminator(real, training=True), discriminator(fake, training=True)

    def train_step(self, batch) -> dict:
        """Generators first (the discriminators fixed), then both discriminators on real vs pooled fake images."""
        real_a, real_b = batch
        cfg = self.config
        # The pool queries' seeds, read before the update moves the optimizer's step.
        seed_a, seed_b = step_seeds(cfg.seed, self.g_optimizer.iterations)
        with tf.GradientTape() as tape:
            fake_b, fake_a, cycled_a, cycled_b, same_b, same_a = self._translations(
                real_a, real_b, identity=bool(cfg.identity_weight))
            adversarial = (self.generator_loss(self.d_b(fake_b, training=True))
                           + self.generator_loss(self.d_a(fake_a, training=True)))
            cycle = losses.l1(cycled_a, real_a) + losses.l1(cycled_b, real_b)
            total = adversarial + cfg.cycle_weight * cycle
            if cfg.identity_weight:
                identity = losses.l1(same_b, real_b) + losses.l1(same_a, real_a)
                total += cfg.identity_weight * cfg.cycle_weight * identity
            else:
                identity = tf.zeros_like(cycle)
            g_loss = self._average(total)
            scaled = self.g_optimizer.scale_loss(g_loss)  # loss scaling (mixed_float16), on the tape
        g_variables = self._generator_variables()
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, g_variables), g_variables))

        pooled_a = self.pool_a.query(tf.stop_gradient(fake_a), seed_a)
        pooled_b = self.pool_b.query(tf.stop_gradient(fake_b), seed_b)
        with tf.GradientTape() as tape:
            d_a = self.discriminator_loss(*self._real_and_fake_scores(self.d_a, real_a, pooled_a))
            d_b = self.discriminator_loss(*self._real_and_fake_scores(self.d_b, real_b, pooled_b))
            d_loss = self._average(d_a + d_b)
            scaled = self.d_optimizer.scale_loss(d_loss)
        d_variables = self._discriminator_variables()
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, d_variables), d_variables))

        return {
            "g_loss": g_loss,
            "g_adversarial": self._average(adversarial),
            "cycle": self._average(cycle),
            "identity": self._average(identity),
            "d_loss": d_loss,
            "d_a": self._average(d_a),
            "d_b": self._average(d_b),
        }

    def checkpoint_items(self) -> dict:
        return {
            "g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b,
            "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer,
            "pool_a": self.pool_a, "pool_b": self.pool_b,
        }

    def learning_rates(self, step: int) -> dict[str, float]:
        rate = float(self.schedule(step))
        return {"generators": rate, "discriminators": rate}

    # ---------------------------------------------------------------- summaries and export

    def translate(self, images: tf.Tensor, direction: str = "a_to_b") -> tf.Tensor:
        """Inference: `direction` "a_to_b" (G_ab) or "b_to_a" (G_ba) on float images in [-1, 1]."""
        generator = {"a_to_b": self.g_ab, "b_to_a": self.g_ba}[direction]
        return generator(images, training=False)

    def _cycle(self, real: tf.Tensor, forward: str, backward: str):
        translated = self.translate(real, forward)
        return translated, self.translate(translated, backward)

    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        """One row per fixed image: real → translated → translated back ("a_to_b_to_a", "b_to_a_to_b")."""
        a, b = fixed
        return {"a_to_b_to_a": self._cycle_grid(a, "a_to_b", "b_to_a"),
                "b_to_a_to_b": self._cycle_grid(b, "b_to_a", "a_to_b")}

    def _cycle_grid(self, real: tf.Tensor, forward: str, backward: str) -> tf.Tensor:
        rows = tf.stack([real, *self._cycle(real, forward, backward)], axis=1)  # [N, 3, H, W, 3]
        return make_grid(tf.reshape(rows, [-1, *real.shape[1:]]), columns=3)

    def validation_metrics(self, fixed) -> dict[str, float]:
        """Mean absolute cycle error of the fixed val images, per domain (images in [-1, 1])."""
        a, b = fixed
        _, a_back = self._cycle(a, "a_to_b", "b_to_a")
        _, b_back = self._cycle(b, "b_to_a", "a_to_b")
        return {"val_cycle_l1_a": float(tf.reduce_mean(tf.abs(a_back - a))),
                "val_cycle_l1_b": float(tf.reduce_mean(tf.abs(b_back - b)))}

    def evaluation_data(self, data_dir: str, split: str, batch_size: int) -> tf.data.Dataset | None:
        """Batches `(a, b)` of both domains' center-cropped `split` images, as many as the smaller domain has."""
        domains = [image_split_dataset(domain_dir(data_dir, domain), split, self.config.image_size, batch_size)
                   for domain in DOMAINS]
        return None if None in domains else tf.data.Dataset.zip(tuple(domains))

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """Translations A -> B (compared with real B) and B -> A (with real A); the cycles A -> B -> A and
        B -> A -> B reconstruct the real images. Nothing is drawn at random, so no `samples`."""
        a, b = real_batch
        a_to_b, a_back = self._cycle(a, "a_to_b", "b_to_a")
        b_to_a, b_back = self._cycle(b, "b_to_a", "a_to_b")
        return EvaluationSets(real={"A": a, "B": b}, outputs={"a_to_b": ("B", a_to_b), "b_to_a": ("A", b_to_a)},
                              reconstructions={"a_to_b_to_a": ("A", a_back), "b_to_a_to_b": ("B", b_back)})

    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        def direction(network) -> SignatureSpec:
            return SignatureSpec(input=IMAGE_BYTES, output=IMAGE_BYTES,
                                 fn=lambda images: network(images, training=False), networks=[network])

        return "a_to_b", {"a_to_b": direction(self.g_ab), "b_to_a": direction(self.g_ba)}
