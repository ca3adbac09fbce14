"""CycleGAN's own options (beside `cyclegan.py`, TensorFlow-free), added to the common ones of `trainer.config`;
its batch size defaults to 1, as in the paper."""
from __future__ import annotations

from dataclasses import dataclass

from trainer import choices
from trainer.config import FUSED_STEP_HELP, TrainConfig, model_default, option

LARGE_IMAGE_SIZE = 256  # from this size on, the generators have 9 ResNet blocks by default (else 6), as in the paper


@dataclass
class CycleGANConfig(TrainConfig):
    model: str = model_default("model", "cyclegan")
    batch_size: int = model_default("batch_size", 1)
    n_blocks: int | None = option(None, "ResNet blocks of each generator", minimum=1,
                                  default_text=f"9 at >= {LARGE_IMAGE_SIZE} px, else 6")
    cycle_weight: float = option(10.0, "cycle-consistency weight (lambda)", minimum=0)
    identity_weight: float = option(0.5, "identity weight, times the cycle weight (0: no identity loss)", minimum=0)
    pool_size: int = option(50, "generated images kept in each discriminator's history pool, per image of the "
                                "per-replica batch (0: no pool)", minimum=0)
    generator: str = option("resnet_generator", "the generator network (both directions)",
                            choices=choices.network_names(choices.TRANSLATOR))
    discriminator: str = option("patchgan_discriminator", "the discriminator network",
                                choices=choices.network_names(choices.PATCH_DISCRIMINATOR))
    gan_loss: str = option(choices.LSGAN, "the GAN loss", choices=choices.GAN_LOSSES)
    fused_step: bool = option(True, FUSED_STEP_HELP)

    @property
    def resolved_n_blocks(self) -> int:
        return self.n_blocks or (9 if self.image_size >= LARGE_IMAGE_SIZE else 6)
