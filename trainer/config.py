"""The one configuration dataclass of a training job: defaults <- `--config FILE.json` <- command-line flags.

The resolved config is saved as `config.json` in the job dir. Field names are the flag names with underscores
(INTERFACE.md section 2), so a JSON config and the command line set the very same things.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@dataclass
class TrainConfig:
    data_dir: str = ""
    job_dir: str = ""
    model: str = "vaegan"
    config: str | None = None
    image_size: int = 64
    batch_size: int = 64
    max_steps: int = 10000
    latent_dim: int = 100
    base_filters: int = 64
    learning_rate: float = 2e-4
    beta1: float = 0.5
    checkpoint_every_steps: int = 500
    summary_every_steps: int = 100
    sample_every_steps: int = 500
    seed: int = 0
    strategy: str = "auto"
    # CycleGAN only (ignored by the VAE-GAN).
    n_blocks: int | None = None  # None: 9 at >= 256 px, else 6
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # times cycle_weight
    pool_size: int = 50
    # Filled from the data's manifest.json when the job starts (not flags).
    center_crop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        positive = ("image_size", "batch_size", "max_steps", "latent_dim", "base_filters",
                    "checkpoint_every_steps", "summary_every_steps", "sample_every_steps")
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if self.image_size % 16:
            raise ValueError(f"--image-size must be a multiple of 16 (e.g. 32, 64, 128), got {self.image_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        return self

    @property
    def resolved_n_blocks(self) -> int:
        return self.n_blocks if self.n_blocks else (9 if self.image_size >= 256 else 6)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = cls.field_names()
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration field(s): {', '.join(unknown)}")
        return cls(**values)

    def merged(self, overrides: dict) -> "TrainConfig":
        """A copy with the non-None `overrides` applied (command-line flags over the config file)."""
        values = self.to_dict()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(values)
