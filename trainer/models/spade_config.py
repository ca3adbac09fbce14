"""SPADE's own options (beside `spade.py`, TensorFlow-free), added to the common ones of `trainer.config`: the
paper's TTUR (generator 1e-4 = `--learning-rate`, discriminator 4e-4, Adam β 0, 0.9), CPU-sized widths."""
from __future__ import annotations

from dataclasses import dataclass

from trainer import choices
from trainer.config import TrainConfig, model_default, option

NORMS = ("batch", "instance")


@dataclass
class SPADEConfig(TrainConfig):
    model: str = model_default("model", "spade")
    batch_size: int = model_default("batch_size", 8)
    base_filters: int = model_default("base_filters", 16)
    learning_rate: float = model_default("learning_rate", 1e-4)
    beta1: float = model_default("beta1", 0.0)
    beta2: float = option(0.9, "Adam beta2 of both optimizers", minimum=0)
    discriminator_learning_rate: float = option(4e-4, "the discriminators' Adam learning rate (TTUR; the "
                                                "generator's is --learning-rate)", minimum=0)
    feature_matching_weight: float = option(10.0, "weight of the discriminator feature-matching loss", minimum=0)
    noise_dim: int = option(0, "noise vector fed to the generator beside the label map (0: none; the export "
                            "uses the zero vector)", minimum=0)
    norm: str = option("batch", "the generator's parameter-free normalisation inside SPADE", choices=NORMS)
    spade_filters: int = option(128, "hidden filters of each SPADE layer's shared convolution", minimum=1)
    num_discriminators: int = option(2, "PatchGAN discriminators, one per scale (image, image / 2, ...)", minimum=1)
    discriminator_layers: int = option(4, "conv layers of each PatchGAN discriminator", minimum=2)
    generator: str = option("spade_generator", "the generator network",
                            choices=choices.network_names(choices.LABEL_MAP_GENERATOR))
    discriminator: str = option("spade_patch_discriminator", "the discriminator network (one per scale)",
                                choices=choices.network_names(choices.LABEL_MAP_DISCRIMINATOR))
    auto_labels: int = option(0, "preprocessing: make label maps of a plain image folder by K-colour quantisation "
                              "(0: the folder holds images/ + labels/)", minimum=0)
    classes: list[str] = option([], "class names: from the data's manifest.json", flag=False)
    class_colors: list = option([], "class colours [[r, g, b], ...]: from the data's manifest.json", flag=False)

    @property
    def label_maps(self) -> bool:
        """Trains on images with label maps (`run_training.sh` preprocesses them so)."""
        return True
