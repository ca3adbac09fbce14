"""Network builders found by name (as in SPADE's `models/networks`): `build("dcgan_encoder", ...)`.

Each submodule registers plain Keras builders with `@register("name")`; `build` imports them on first use.
"""
from __future__ import annotations

import importlib
from typing import Callable

_MODULES = ("trainer.networks.dcgan", "trainer.networks.resnet")
_REGISTRY: dict[str, Callable] = {}


def register(name: str):
    def decorator(builder: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise ValueError(f"network {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder
    return decorator


def _load_all() -> None:
    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def build(network: str, /, **kwargs):
    """Build the Keras model registered as `network` with the builder's keyword arguments (which may include the
    Keras model's own `name`)."""
    _load_all()
    try:
        builder = _REGISTRY[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return builder(**kwargs)


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)
