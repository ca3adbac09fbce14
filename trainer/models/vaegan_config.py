"""The VAE-GAN's own options (beside `vaegan.py`, TensorFlow-free), added to the common ones of `trainer.config`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainer import choices
from trainer.config import FUSED_STEP_HELP, TrainConfig, model_default, option


@dataclass
class VAEGANConfig(TrainConfig):
    AUTO_SIZED: ClassVar[tuple[str, ...]] = ("image_size", "base_filters", "batch_size")  # trainer/sizing.py
    model: str = model_default("model", "vaegan")
    kl_weight: float | None = option(
        None, "weight of the KL term in the encoder's loss", minimum=0,
        default_text="10 / the number of discriminator feature elements: the feature-space ELBO per feature, its KL "
        "weighted by beta 10 so the aggregate posterior stays nearer N(0, I)")
    # Larsen's gamma: 10 keeps reconstructions (the `image_bytes` -> `embeddings` -> image round trip) faithful.
    recon_weight: float = option(
        10.0, "Larsen's gamma: weight of the learned-similarity reconstruction against the GAN loss in the "
        "decoder's update; lower it for sharper, less faithful samples", minimum=0)
    feature_stage: int | None = option(
        None, "the discriminator stage whose features give the learned similarity", minimum=0,
        default_text="the discriminator's own: stage 1, at image_size / 4")
    prior_exemplars: int = option(
        4096, "training images whose posteriors make the prior map's aggregate posterior (prior_map.py): the "
        "exported model holds 2 x latent_dim floats for each", minimum=1)
    encoder: str = option("dcgan_encoder", "the encoder network", choices=choices.network_names(choices.ENCODER))
    decoder: str = option("dcgan_decoder", "the decoder network", choices=choices.network_names(choices.DECODER))
    discriminator: str = option("dcgan_discriminator", "the discriminator network",
                                choices=choices.network_names(choices.FEATURE_DISCRIMINATOR))
    gan_loss: str = option(choices.NON_SATURATING, "the GAN loss", choices=choices.GAN_LOSSES)
    fused_step: bool = option(True, FUSED_STEP_HELP)
