"""The models, registered by name: each is `models/<name>.py` (a `GenerativeModel`, the contract of `base.py` that
the loop and the exporter talk to) plus its options `models/<name>_config.py` (a `TrainConfig` dataclass).
Imported only when used, so that `--help` and config checks need no TensorFlow. A new model: those two files and
one line in `MODELS`; the loop, the export plumbing and serving don't change.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from trainer.config import TrainConfig
    from trainer.models.base import GenerativeModel


IMAGE_FOLDER, UNPAIRED = "images", "unpaired"  # the data a model trains on: a plain image folder, trainA/ trainB/
LABEL_MAPS = "label_maps"  # images/ + labels/ pairs, or an image folder with --auto-labels


class Registration(NamedTuple):
    title: str   # one line for --help
    config: str  # "module:Class" of its options (TensorFlow-free)
    model: str   # "module:Class" of the model (imports TensorFlow)
    data: str = IMAGE_FOLDER


MODELS = {
    "vaegan": Registration("VAE-GAN (Larsen et al. 2016): images <-> embeddings",
                           "trainer.models.vaegan_config:VAEGANConfig", "trainer.models.vaegan:VAEGAN"),
    "cyclegan": Registration("CycleGAN (Zhu et al. 2017): unpaired image-to-image translation, A <-> B",
                             "trainer.models.cyclegan_config:CycleGANConfig", "trainer.models.cyclegan:CycleGAN",
                             UNPAIRED),
    "gan": Registration("the GAN zoo (IBM gan-toolkit's configs): generator and discriminator by name (gan, dcgan, "
                        "wgan, wgan-gp, cgan), latent -> image", "trainer.models.gan_config:GANZooConfig",
                        "trainer.models.gan:GANZoo"),
    "text2image": Registration("text -> image (GAN-INT-CLS + StackGAN conditioning augmentation + TAC-GAN): "
                               "captioned images, the text encoded in the graph",
                               "trainer.models.text2image_config:Text2ImageConfig",
                               "trainer.models.text2image:Text2Image"),
    "spade": Registration("SPADE (Park et al. 2019): label map / sketch -> image, trained on image + label map pairs",
                          "trainer.models.spade_config:SPADEConfig", "trainer.models.spade:SPADE", LABEL_MAPS),
}
DEFAULT_MODEL = "vaegan"


def names() -> list[str]:
    return list(MODELS)


def taking(data: str) -> list[str]:
    """The models that train on `data` (IMAGE_FOLDER or UNPAIRED)."""
    return [name for name, registration in MODELS.items() if registration.data == data]


def registration(name: str) -> Registration:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def _load(path: str):
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def config_class(name: str) -> type[TrainConfig]:
    """The options dataclass of model `name` (no TensorFlow imported)."""
    return _load(registration(name).config)


def config_classes() -> dict[str, type[TrainConfig]]:
    return {name: config_class(name) for name in MODELS}


def model_class(name: str) -> type[GenerativeModel]:
    """The `GenerativeModel` subclass of model `name` (imports TensorFlow)."""
    return _load(registration(name).model)


def declaring(key: str) -> list[str]:
    """The models that have an option named `key`."""
    return [name for name, config in config_classes().items() if key in config.keys()]


def config_from_saved(values: dict) -> TrainConfig:
    """The config of a job from its saved `config.json` (see `TrainConfig.from_saved`)."""
    return config_class(values.get("model", DEFAULT_MODEL)).from_saved(values)
