"""Everything an option chooses by name, listed without importing TensorFlow (so `--help` and config checks stay
fast): the network builders, each with the role it can play in a model, and the GAN losses.

`trainer.networks.build(name)` imports a builder from here on first use; `trainer.losses.get_gan_losses(name)`
computes the losses named here. A new network is a builder function plus one line in `NETWORKS`.
"""
from __future__ import annotations

from typing import NamedTuple

# Roles: what a network takes and returns, i.e. where a model can use it.
ENCODER = "encoder"                              # image -> (mean, log_variance) of a latent Gaussian
DECODER = "decoder"                              # latent -> tanh RGB image
FEATURE_DISCRIMINATOR = "feature_discriminator"  # image -> (real/fake logit, features); per image, no batch statistics
TRANSLATOR = "translator"                        # image -> image of the same size (tanh RGB)
PATCH_DISCRIMINATOR = "patch_discriminator"      # image -> map of real/fake scores, one per patch
GENERATOR = "generator"                          # latent (+ class label) -> tanh RGB image
CRITIC = "critic"                                # image (+ class label) -> one real/fake score, no sigmoid
TEXT_ENCODER = "text_encoder"                    # string [N] -> text code (text -> image)
TEXT_CONDITIONING = "text_conditioning"          # text code -> (mu, log sigma) of the condition
TEXT_GENERATOR = "text_generator"                # [noise, condition] -> tanh RGB image
MATCHING_DISCRIMINATOR = "matching_discriminator"  # [image, text code] -> match logit (+ class logits)
LABEL_MAP_GENERATOR = "label_map_generator"      # one-hot label map (+ noise) -> tanh RGB image
LABEL_MAP_DISCRIMINATOR = "label_map_discriminator"  # [image, one-hot label map] -> features, patch scores last


class Network(NamedTuple):
    builder: str  # "module:function" returning a keras.Model
    role: str


NETWORKS = {
    "dcgan_encoder": Network("trainer.networks.dcgan:dcgan_encoder", ENCODER),
    "dcgan_decoder": Network("trainer.networks.dcgan:dcgan_decoder", DECODER),
    "dcgan_discriminator": Network("trainer.networks.dcgan:dcgan_discriminator", FEATURE_DISCRIMINATOR),
    "resnet_generator": Network("trainer.networks.resnet:resnet_generator", TRANSLATOR),
    "patchgan_discriminator": Network("trainer.networks.resnet:patchgan_discriminator", PATCH_DISCRIMINATOR),
    "mlp_generator": Network("trainer.networks.zoo:mlp_generator", GENERATOR),
    "mlp_critic": Network("trainer.networks.zoo:mlp_critic", CRITIC),
    "conv_generator": Network("trainer.networks.zoo:conv_generator", GENERATOR),
    "conv_critic": Network("trainer.networks.zoo:conv_critic", CRITIC),
    "hashed_text_encoder": Network("trainer.networks.text:hashed_text_encoder", TEXT_ENCODER),
    "conditioning_augmentation": Network("trainer.networks.text:conditioning_augmentation", TEXT_CONDITIONING),
    "text_generator": Network("trainer.networks.text:text_generator", TEXT_GENERATOR),
    "matching_discriminator": Network("trainer.networks.text:matching_discriminator", MATCHING_DISCRIMINATOR),
    "spade_generator": Network("trainer.networks.spade:spade_generator", LABEL_MAP_GENERATOR),
    "spade_patch_discriminator": Network("trainer.networks.spade:spade_patch_discriminator",
                                         LABEL_MAP_DISCRIMINATOR),
}

# GAN losses (trainer.losses.GAN_LOSSES holds their functions under these names).
NON_SATURATING = "non_saturating"  # BCE, the generator maximising log D(fake) (Goodfellow et al. 2014)
LSGAN = "lsgan"                    # least squares (Mao et al. 2017), CycleGAN's
HINGE = "hinge"                    # hinge (Lim & Ye 2017; SN-GAN, BigGAN)
WASSERSTEIN = "wasserstein"        # critic score difference (Arjovsky et al. 2017), with clipping or a penalty
GAN_LOSSES = (NON_SATURATING, LSGAN)  # the VAE-GAN's choices

# The model zoo (INTERFACE.md section 8): gan-toolkit's network choices, and its loss names -> the loss functions.
ZOO_CHOICES = ("gan", "dcgan", "wgan", "wgan-gp", "cgan")
CONDITIONAL_CHOICES = ("cgan",)    # fed a class label: pair only with each other
ZOO_LOSSES = {"gan": NON_SATURATING, "lsgan": LSGAN, "hinge": HINGE, "wgan": WASSERSTEIN, "wgan-gp": WASSERSTEIN}
OPTIMIZERS = ("adam", "rmsprop")
NORMS = ("batch", "layer", "none")  # a critic's normalisation
AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment's (Zhao et al. 2020); "diffaug" = all three


def network_names(role: str | None = None) -> tuple[str, ...]:
    """The registered network names (only those that can play `role`, when given), sorted."""
    return tuple(sorted(name for name, network in NETWORKS.items() if role in (None, network.role)))


def network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(network_names())}") from None
