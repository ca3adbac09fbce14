"""IBM gan-toolkit's JSON config keys, read as they are (INTERFACE.md section 8), turned into genart's own keys.

    {"generator": {"choice": "dcgan", "filters": 32}, "discriminator": {"choice": "gan"},
     "data_path": "my_images/", "metric_evaluate": "MMD"}
-> {"model": "gan", "generator": "dcgan", "generator_filters": 32, "discriminator": "gan",
    "data_path": "my_images/", "metric_evaluate": ["mmd"]}
Each choice block holds `choice` and the settings of that network (`BLOCK_KEYS`); genart's flat keys may sit beside
them. A config naming both a zoo generator/discriminator and another `"model"` is refused. TensorFlow-free.
"""
from __future__ import annotations

from trainer import choices
from trainer.config import comma_list
from trainer.models.gan_config import ZOO_MODEL

ROLES = ("generator", "discriminator")
# block key -> genart key ("{role}" = the block's role)
COMMON_BLOCK_KEYS = {"choice": "{role}", "filters": "{role}_filters", "layers": "{role}_layers",
                     "learning_rate": "{role}_learning_rate"}
BLOCK_KEYS = {
    "generator": {**COMMON_BLOCK_KEYS, "latent_dim": "latent_dim"},
    "discriminator": {**COMMON_BLOCK_KEYS, "norm": "discriminator_norm", "spectral_norm": "spectral_norm",
                      "n_critic": "n_critic", "clip_value": "clip_value", "gp_weight": "gp_weight"},
}


def is_zoo_config(values: dict) -> bool:
    """A choice block (`{"choice": ...}`), a zoo choice name under a role without another model (the VAE-GAN and
    CycleGAN have `discriminator` options of their own, naming networks), or `"model": "gan"`."""
    blocks = any(isinstance(values.get(role), dict) for role in ROLES)
    named = any(values.get(role) in choices.ZOO_CHOICES for role in ROLES)
    return blocks or values.get("model") == ZOO_MODEL or (named and "model" not in values)


def _block(role: str, block, where: str) -> dict:
    if isinstance(block, str):  # "generator": "dcgan"
        block = {"choice": block}
    if not isinstance(block, dict):
        raise ValueError(f"{where}{role!r} must be an object such as {{\"choice\": \"dcgan\"}}, got {block!r}")
    known = BLOCK_KEYS[role]
    unknown = sorted(set(block) - set(known))
    if unknown:
        raise ValueError(f"{where}unknown key(s) {', '.join(map(repr, unknown))} in {role!r}; a {role} block "
                         f"takes {', '.join(known)}")
    if "choice" not in block:
        raise ValueError(f"{where}{role!r} needs a \"choice\"")
    return {known[key].format(role=role): value for key, value in block.items()}


def genart_values(values: dict, where: str = "") -> dict:
    """A config file's values in genart's keys (unchanged when it is not a zoo config). `where` prefixes
    messages (the file name)."""
    if not is_zoo_config(values):
        return values
    model = values.get("model", ZOO_MODEL)
    if model != ZOO_MODEL:
        roles = " and ".join(role for role in ROLES if isinstance(values.get(role), dict))
        raise ValueError(f"{where}the config names both the model {model!r} and a zoo {roles}: a zoo config picks "
                         f"its networks with \"generator\"/\"discriminator\", another model with \"model\"; "
                         f"keep one")
    out = {key: value for key, value in values.items() if key not in ROLES}
    out["model"] = ZOO_MODEL
    for role in ROLES:
        if role in values:
            for key, value in _block(role, values[role], where).items():
                if key in out and out[key] != value:
                    raise ValueError(f"{where}{key!r} is set twice, at the top level and in {role!r}")
                out[key] = value
    metrics = out.get("metric_evaluate")
    if isinstance(metrics, str):
        metrics = comma_list(metrics)
    if isinstance(metrics, list):  # gan-toolkit spells them "MMD"; section 9's names are lower case
        out["metric_evaluate"] = [str(name).lower() for name in metrics]
    return out
