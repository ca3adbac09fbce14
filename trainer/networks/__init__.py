"""Network builders found by name (as in SPADE's `models/networks`): `build("dcgan_encoder", image_size=64, ...)`.
The names, and the role each network can play, are listed TF-free in `trainer.choices.NETWORKS`; the builders are
plain functional Keras models in this package's modules (`dcgan`, `resnet`), imported on first use.
"""
from __future__ import annotations

import importlib

from trainer import choices


def build(network: str, /, **kwargs):
    """Build the Keras model registered as `network` with the builder's keyword arguments (which may include the
    Keras model's own `name`); under a mixed precision policy its outputs stay float32 (`trainer.precision`)."""
    from trainer.precision import float32_outputs

    module, function = choices.network(network).builder.split(":")
    return float32_outputs(getattr(importlib.import_module(module), function)(**kwargs))


def names(role: str | None = None) -> tuple[str, ...]:
    """Every network name (only those that can play `role`, when given)."""
    return choices.network_names(role)
