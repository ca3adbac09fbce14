"""The model zoo's options (beside `gan.py`, TensorFlow-free): the generator and discriminator choices of IBM
gan-toolkit (INTERFACE.md section 8) and the per-choice template that fills every setting left unset.

A setting left `None` follows the template of the loss, and the loss follows the discriminator's choice unless
`loss` names one: `gan`/`dcgan`/`cgan` -> non-saturating BCE, Adam(2e-4, β1 0.5); `wgan` -> Wasserstein with
weight clipping 0.01, RMSprop(5e-5), 5 critic steps; `wgan-gp` -> Wasserstein + gradient penalty λ=10, Adam(1e-4,
β 0, 0.9), 5 critic steps, a critic without batch norm. `resolve()` (run by `validate()`) writes the template's
values into the config, so the job's config.json holds every setting it trained with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from trainer import choices
from trainer.config import TrainConfig, flag_name, model_default, option

ZOO_MODEL = "gan"


class Template(NamedTuple):
    optimizer: str
    learning_rate: float
    beta1: float
    beta2: float
    n_critic: int
    clip_value: float


LOSS_TEMPLATES = {  # Radford et al.; Arjovsky et al.; Gulrajani et al.; SN-GAN's hinge; Mao et al.
    "gan": Template("adam", 2e-4, 0.5, 0.999, 1, 0.0),
    "wgan": Template("rmsprop", 5e-5, 0.0, 0.0, 5, 0.01),
    "wgan-gp": Template("adam", 1e-4, 0.0, 0.9, 5, 0.0),
    "hinge": Template("adam", 2e-4, 0.5, 0.999, 1, 0.0),
    "lsgan": Template("adam", 2e-4, 0.5, 0.999, 1, 0.0),
}
OPTIMIZER_TEMPLATES = {"adam": LOSS_TEMPLATES["gan"], "rmsprop": LOSS_TEMPLATES["wgan"]}


class Choice(NamedTuple):
    generator: str       # network names (trainer.choices.NETWORKS)
    critic: str
    loss: str
    norm: str            # the critic's normalisation
    filters: int         # base width: conv filters, or MLP units


CHOICES = {
    "gan": Choice("mlp_generator", "mlp_critic", "gan", "none", 128),
    "dcgan": Choice("conv_generator", "conv_critic", "gan", "batch", 64),
    "wgan": Choice("conv_generator", "conv_critic", "wgan", "batch", 64),
    "wgan-gp": Choice("conv_generator", "conv_critic", "wgan-gp", "layer", 64),
    "cgan": Choice("conv_generator", "conv_critic", "gan", "batch", 64),
}
MLP_LAYERS = 3


def augment_policy(text: str) -> tuple[str, ...]:
    """`--augment` -> the DiffAugment transforms: `none` -> (), `diffaug` -> all three, else a comma list."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names in ([], ["none"]):
        return ()
    if names == ["diffaug"]:
        return choices.AUGMENTATIONS
    unknown = [name for name in names if name not in choices.AUGMENTATIONS]
    if unknown:
        raise ValueError(f"--augment: unknown transform(s) {', '.join(unknown)}; use none, diffaug or a comma list "
                         f"of {', '.join(choices.AUGMENTATIONS)}")
    return tuple(dict.fromkeys(names))


@dataclass
class GANZooConfig(TrainConfig):
    model: str = model_default("model", ZOO_MODEL)
    learning_rate: float | None = option(None, "learning rate of both optimizers (> 0)",
                                         default_text="the loss's template")
    beta1: float | None = option(None, "Adam beta1", default_text="the loss's template")
    generator: str = option("dcgan", "the generator choice", choices=choices.ZOO_CHOICES)
    discriminator: str = option("dcgan", "the discriminator choice; the loss and optimizer follow it",
                                choices=choices.ZOO_CHOICES)
    generator_filters: int | None = option(None, "generator width (conv filters / MLP units)", minimum=1,
                                           default_text="the choice's: 64 conv, 128 MLP")
    discriminator_filters: int | None = option(None, "discriminator width", minimum=1,
                                               default_text="the choice's: 64 conv, 128 MLP")
    generator_layers: int = option(MLP_LAYERS, "hidden layers of an MLP generator (conv nets are sized from the "
                                   "image size)", minimum=1)
    discriminator_layers: int = option(MLP_LAYERS, "hidden layers of an MLP discriminator", minimum=1)
    discriminator_norm: str | None = option(None, "the discriminator's normalisation", choices=choices.NORMS,
                                            default_text="the choice's; layer under the wgan-gp loss")
    spectral_norm: bool = option(False, "spectral normalisation of every discriminator layer (Miyato et al.)")
    loss: str | None = option(None, "the GAN loss", choices=tuple(choices.ZOO_LOSSES),
                              default_text="the discriminator choice's")
    optimizer: str | None = option(None, "the optimizer of both networks", choices=choices.OPTIMIZERS,
                                   default_text="the loss's template")
    generator_learning_rate: float | None = option(None, "the generator's learning rate",
                                                   default_text="the learning rate")
    discriminator_learning_rate: float | None = option(None, "the discriminator's learning rate",
                                                       default_text="the learning rate")
    beta2: float | None = option(None, "Adam beta2", default_text="the loss's template")
    n_critic: int | None = option(None, "discriminator updates per step", minimum=1,
                                  default_text="the loss's: 5 for wgan and wgan-gp, else 1")
    clip_value: float | None = option(None, "weight clipping of the discriminator, 0 = off", minimum=0,
                                      default_text="0.01 for wgan, else 0")
    gp_weight: float = option(10.0, "weight λ of the wgan-gp gradient penalty", minimum=0)
    augment: str = option("diffaug", "DiffAugment before the discriminator: none, diffaug (color,translation,"
                          "cutout) or a comma list")
    ema: float = option(0.0, "decay of the generator's weight moving average, exported when on (0 = off)",
                        minimum=0)
    epochs: int | None = option(None, "passes over the training images (gan-toolkit's GAN_model.epochs): sets "
                                "--max-steps when that is not given", minimum=1, default_text="none")
    metric_evaluate: list[str] = option([], "metrics (section 9's names) of an evaluation of the final checkpoint "
                                        "(and every --eval-every-steps): sets --eval-metrics")
    data_path: str = option("", "the training data (gan-toolkit's key): image folder, preprocessed data dir, "
                            ".npy or .npz; run_training.sh -d wins", flag=False)
    allow_pickle: bool = option(False, "accept a pickled data_path (.p, .pkl): a pickle can run code")
    classes: list[str] = option([], "class names (cgan): from the data's manifest.json", flag=False)

    @property
    def conditional(self) -> bool:
        return self.generator in choices.CONDITIONAL_CHOICES

    def steps_for_epochs(self, train_images: int) -> int:
        """The steps of `epochs` passes over `train_images` (a step reads n_critic batches)."""
        self.resolve()
        return max(1, math.ceil(self.epochs * train_images / (self.batch_size * self.n_critic)))

    def resolve(self) -> GANZooConfig:
        """Fill every setting left None from the templates (see the module docstring); returns self."""
        self.loss = self.loss or CHOICES[self.discriminator].loss
        template = LOSS_TEMPLATES[self.loss]
        if self.optimizer not in (None, template.optimizer):
            template = OPTIMIZER_TEMPLATES[self.optimizer]
        self.optimizer = template.optimizer
        for key in ("learning_rate", "beta1", "beta2", "n_critic", "clip_value"):
            if getattr(self, key) is None:
                setattr(self, key, getattr(template, key))
        for role in ("generator", "discriminator"):
            if getattr(self, f"{role}_filters") is None:
                setattr(self, f"{role}_filters", CHOICES[getattr(self, role)].filters)
            if getattr(self, f"{role}_learning_rate") is None:
                setattr(self, f"{role}_learning_rate", self.learning_rate)
        if self.metric_evaluate:  # gan-toolkit's key: the evaluation of the final checkpoint (section 9's metrics)
            self.eval_metrics = ",".join(self.metric_evaluate)
            self.eval_every_steps = self.eval_every_steps or self.max_steps
        if self.discriminator_norm is None:
            norm = CHOICES[self.discriminator].norm
            self.discriminator_norm = "layer" if self.loss == "wgan-gp" and norm == "batch" else norm
        return self

    def validate(self) -> GANZooConfig:
        for key in ("generator", "discriminator", "loss", "optimizer"):  # the names the templates are keyed by
            value, allowed = getattr(self, key), self.field(key).metadata["choices"]
            if value is not None and value not in allowed:
                raise ValueError(f"{flag_name(key)} must be one of {', '.join(allowed)}, got {value!r}")
        self.resolve()
        conditional = {role: getattr(self, role) in choices.CONDITIONAL_CHOICES
                       for role in ("generator", "discriminator")}
        if conditional["generator"] != conditional["discriminator"]:
            raise ValueError(f"generator {self.generator!r} and discriminator {self.discriminator!r} cannot be "
                             "paired: one is class-conditional (cgan), the other is not")
        augment_policy(self.augment)
        if not 0 <= self.ema < 1:
            raise ValueError(f"{flag_name('ema')} must be in [0, 1) (0 = off), got {self.ema}")
        for key in ("generator_learning_rate", "discriminator_learning_rate"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{flag_name(key)} must be > 0, got {getattr(self, key)}")
        return super().validate()
