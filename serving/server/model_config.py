"""Which models to serve and which of their versions: TF Serving's `model_config_list` as `ModelSpec`s.

A `ModelSpec` is one model's base path, its `model_version_policy` (latest N — 1 by default —, all, or specific
versions) and its `version_labels`. `specs_from_config_file` reads them from `models.config` (text format, as
`create_model.sh` writes it and real TF Serving reads it); a relative base path is relative to that file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from artifacts import storage
from artifacts import model_tree


@dataclass
class ModelSpec:
    """One served model: where its versions are and which of them to serve."""
    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = field(default_factory=dict)

    @classmethod
    def from_proto(cls, config) -> "ModelSpec":
        """From a TF Serving `ModelConfig` proto."""
        policy = config.model_version_policy
        which = policy.WhichOneof("policy_choice") or "latest"
        return cls(name=config.name, base_path=config.base_path, policy=which,
                   num_versions=max(1, policy.latest.num_versions) if which == "latest" else 1,
                   versions=tuple(sorted(policy.specific.versions)), labels=dict(config.version_labels))

    def wanted(self, on_disk: list[int]) -> list[int]:
        if self.policy == "all":
            return list(on_disk)
        if self.policy == "specific":
            return [v for v in on_disk if v in self.versions]
        return list(on_disk[-self.num_versions:])


def specs_from_config_file(path: str) -> list[ModelSpec]:
    """The models of a TF Serving `models.config` (text format `model_config_list`)."""
    config = model_tree.read_models_config(path)
    if config.WhichOneof("config") not in (None, "model_config_list"):
        raise model_tree.ModelTreeError(f"{path}: only model_config_list is supported")
    specs = [ModelSpec.from_proto(entry) for entry in config.model_config_list.config]
    for spec in specs:  # TF Serving wants absolute base paths; a relative one is taken relative to the file
        if not storage.is_gcs(spec.base_path) and not os.path.isabs(spec.base_path) and not storage.is_gcs(path):
            spec.base_path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), spec.base_path))
    return specs
