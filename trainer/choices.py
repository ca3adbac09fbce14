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
FEATURE_DISCRIMINATOR = "feature_discriminator"  # image -> (real/fake logit, intermediate features)
TRANSLATOR = "translator"                        # image -> image of the same size (tanh RGB)
PATCH_DISCRIMINATOR = "patch_discriminator"      # image -> map of real/fake scores, one per patch


class Network(NamedTuple):
    builder: str  # "module:function" returning a keras.Model
    role: str


NETWORKS = {
    "dcgan_encoder": Network("trainer.networks.dcgan:dcgan_encoder", ENCODER),
    "dcgan_decoder": Network("trainer.networks.dcgan:dcgan_decoder", DECODER),
    "dcgan_discriminator": Network("trainer.networks.dcgan:dcgan_discriminator", FEATURE_DISCRIMINATOR),
    "resnet_generator": Network("trainer.networks.resnet:resnet_generator", TRANSLATOR),
    "patchgan_discriminator": Network("trainer.networks.resnet:patchgan_discriminator", PATCH_DISCRIMINATOR),
}

# GAN losses (trainer.losses.GAN_LOSSES holds their functions under these names).
NON_SATURATING = "non_saturating"  # BCE, the generator maximising log D(fake) (Goodfellow et al. 2014)
LSGAN = "lsgan"                    # least squares (Mao et al. 2017), CycleGAN's
GAN_LOSSES = (NON_SATURATING, LSGAN)


def network_names(role: str | None = None) -> tuple[str, ...]:
    """The registered network names (only those that can play `role`, when given), sorted."""
    return tuple(sorted(name for name, network in NETWORKS.items() if role in (None, network.role)))


def network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(network_names())}") from None
