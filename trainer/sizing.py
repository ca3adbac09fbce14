"""Defaults sized for the hardware and the data (issue 19): when neither a flag, a JSON config nor the job's saved
config.json sets the network width, the image size or the batch, a model that opts in (`AUTO_SIZED` on its config
class) gets them picked here from the device (CPU cores, GPUs) and the dataset (image count, image size).

A GPU gets the INTERFACE defaults (64 px, base filters 64, batch 64). A CPU gets a model small enough that a
step takes a fraction of a second, so samples visibly improve within minutes: 32 px, base filters 16 (32 from 8
cores), batch 16 (32 from 8 cores), the batch never above a quarter of the training images. The choice and its
reason are printed at start and saved in config.json (`sizing`); every flag overrides it. TensorFlow-free.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

SIZED_KEYS = ("image_size", "base_filters", "batch_size")
GPU_DEFAULTS = {"image_size": 64, "base_filters": 64, "batch_size": 64}  # INTERFACE.md section 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Device:
    cores: int
    gpus: int

    @classmethod
    def local(cls) -> "Device":
        """This machine, without TensorFlow: usable CPU cores; NVIDIA GPUs the driver lists (CUDA_VISIBLE_DEVICES
        honoured; an empty or -1 value hides them)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        gpus = len(glob.glob("/proc/driver/nvidia/gpus/*"))
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            gpus = 0 if not ids or ids[0].startswith("-1") else min(gpus, len(ids))
        return cls(cores=cores, gpus=gpus)


@dataclass
class Data:
    num_images: int | None = None   # training images (None: unknown)
    image_size: int | None = None   # the preprocessed data's size, when it is preprocessed already

    @classmethod
    def of(cls, manifest: dict | None, source: str | None = None) -> "Data":
        """From the data's manifest.json; before preprocessing, from the source folder's image files (local)."""
        if manifest:
            counts = manifest.get("counts") or {}
            return cls(num_images=counts.get("train") or None, image_size=manifest.get("image_size"))
        if source and os.path.isdir(source):
            count = sum(name.lower().endswith(IMAGE_SUFFIXES) for _, _, names in os.walk(source) for name in names)
            return cls(num_images=count or None)
        return cls()


def pick(device: Device, data: Data) -> tuple[dict[str, int], str]:
    """({image_size, base_filters, batch_size}, the reason in words)."""
    if device.gpus:
        values = dict(GPU_DEFAULTS)
        if data.image_size:
            values["image_size"] = data.image_size
        return values, f"{device.gpus} GPU(s): the INTERFACE defaults"
    big = device.cores >= 8
    values = {"image_size": data.image_size or (64 if big else 32), "base_filters": 32 if big else 16,
              "batch_size": 32 if big else 16}
    why = f"CPU only, {device.cores} core(s): a small model for a step well under a second"
    if data.num_images:
        cap = max(1, data.num_images // 4)
        if values["batch_size"] > cap:
            values["batch_size"] = cap
            why += f"; batch at most a quarter of the {data.num_images} training images"
    return values, why


def apply(config, explicit: set[str], device: Device, data: Data) -> str | None:
    """Set the sized keys `explicit` leaves open on `config` (of a class with `AUTO_SIZED`); returns the line
    to print (also saved as `config.sizing`), or None when nothing was picked."""
    open_keys = [key for key in getattr(type(config), "AUTO_SIZED", ()) if key not in explicit]
    if data.image_size and "image_size" in open_keys:  # preprocessed data keeps its size
        config.image_size = data.image_size
        open_keys.remove("image_size")
    if not open_keys:
        return None
    values, why = pick(device, data)
    for key in open_keys:
        setattr(config, key, values[key])
    chosen = ", ".join(f"{key} {values[key]}" for key in open_keys)
    config.sizing = f"{chosen} ({why}; flags override; a GPU gets 64 px, base filters 64, batch 64)"
    return config.sizing
