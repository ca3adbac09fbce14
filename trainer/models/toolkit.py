"""IBM gan-toolkit's JSON config keys, read as they are (INTERFACE.md section 8), turned into genart's own keys.

    {"generator": {"choice": "dcgan", "loss": "Mean", "optimizer": {"choice": "Adam", "learning_rate": 1e-4}},
     "discriminator": {"choice": "wgan_gp", "input_shape": 32}, "GAN_model": {"epochs": 50, "n_critic": 5},
     "data_path": "datasets/faces.npz", "metric_evaluate": "MMD"}
-> {"model": "gan", "generator": "dcgan", "loss": "wgan-gp", "optimizer": "adam", "generator_learning_rate": 1e-4,
    "discriminator": "wgan-gp", "image_size": 32, "epochs": 50, "n_critic": 5, "data_path": ..., "metric_evaluate":
    ["mmd"]}
gan-toolkit's `-1` means "unset"; its output paths (`result_path`, ...) and `channels` are accepted and ignored
(a genart job dir holds every output; images are RGB). genart's own flat keys may sit beside them. A config naming
both a zoo generator/discriminator block and another `"model"` is refused. TensorFlow-free.
"""
from __future__ import annotations

import math

from trainer import choices
from trainer.config import comma_list
from trainer.models.gan_config import ZOO_MODEL

ROLES = ("generator", "discriminator")
# block key -> genart key ("{role}" = the block's role); "loss", "optimizer", "input_shape" are translated below
COMMON_BLOCK_KEYS = {"choice": "{role}", "filters": "{role}_filters", "layers": "{role}_layers",
                     "learning_rate": "{role}_learning_rate"}
BLOCK_KEYS = {
    "generator": {**COMMON_BLOCK_KEYS, "latent_dim": "latent_dim"},
    "discriminator": {**COMMON_BLOCK_KEYS, "norm": "discriminator_norm", "spectral_norm": "spectral_norm",
                      "n_critic": "n_critic", "clip_value": "clip_value", "gp_weight": "gp_weight"},
}
GAN_MODEL_KEYS = {"epochs": "epochs", "mini_batch_size": "batch_size", "clip_value": "clip_value",
                  "n_critic": "n_critic", "lambda_gp": "gp_weight"}
TOP_LEVEL_KEYS = {"sample_interval": "sample_every_steps"}
IGNORED = {"result_path", "save_model_path", "performance_log", "channels", "input", "w_loss", "data_label",
           "classes", "seq"}
TOOLKIT_LOSSES = {"bce": "gan", "mse": "lsgan"}  # "Mean" (the critic's mean score) is Wasserstein, see below
UNSET = -1


def _choice(name) -> str:
    return name.replace("_", "-") if isinstance(name, str) else name  # gan-toolkit spells it "wgan_gp"


def is_zoo_config(values: dict) -> bool:
    """A choice block (`{"choice": ...}`), a zoo choice name under a role without another model (the VAE-GAN and
    CycleGAN have `discriminator` options of their own, naming networks), or `"model": "gan"`."""
    blocks = any(isinstance(values.get(role), dict) for role in ROLES)
    named = any(_choice(values.get(role)) in choices.ZOO_CHOICES for role in ROLES)
    return blocks or values.get("model") == ZOO_MODEL or (named and "model" not in values)


def image_size_for(input_shape: int) -> int:
    """gan-toolkit's `input_shape` (28 for MNIST) -> the next size the conv nets take, 4 * 2**n."""
    return 4 * 2 ** max(2, math.ceil(math.log2(max(int(input_shape), 16) / 4)))


def _loss(name: str, discriminator: str | None, where: str) -> str:
    lower = str(name).lower()
    if lower == "mean":
        return "wgan-gp" if discriminator == "wgan-gp" else "wgan"
    if lower in TOOLKIT_LOSSES:
        return TOOLKIT_LOSSES[lower]
    if lower in choices.ZOO_LOSSES:
        return lower
    raise ValueError(f"{where}unknown loss {name!r}; use BCE, MSE, Mean or one of {', '.join(choices.ZOO_LOSSES)}")


def _set(out: dict, key: str, value, where: str) -> None:
    if value == UNSET or value is None:
        return
    if key in out and out[key] != value:
        raise ValueError(f"{where}{key!r} is set twice, to {out[key]!r} and {value!r}")
    out[key] = value


def _block(role: str, block, out: dict, discriminator: str | None, where: str) -> None:
    if isinstance(block, str):  # "generator": "dcgan"
        block = {"choice": block}
    if not isinstance(block, dict):
        raise ValueError(f"{where}{role!r} must be an object such as {{\"choice\": \"dcgan\"}}, got {block!r}")
    known = BLOCK_KEYS[role]
    unknown = sorted(set(block) - set(known) - IGNORED - {"loss", "optimizer", "input_shape"})
    if unknown:
        raise ValueError(f"{where}unknown key(s) {', '.join(map(repr, unknown))} in {role!r}; a {role} block "
                         f"takes {', '.join([*known, 'loss', 'optimizer', 'input_shape'])}")
    if "choice" not in block:
        raise ValueError(f"{where}{role!r} needs a \"choice\"")
    for key, value in block.items():
        if key in known:
            _set(out, known[key].format(role=role), _choice(value) if key == "choice" else value, where)
    if "input_shape" in block:
        _set(out, "image_size", image_size_for(block["input_shape"]), where)
    optimizer = block.get("optimizer")
    if isinstance(optimizer, dict):
        _set(out, "optimizer", str(optimizer.get("choice", "adam")).lower(), where)
        _set(out, f"{role}_learning_rate", optimizer.get("learning_rate"), where)
        _set(out, "beta1", optimizer.get("b1"), where)
        _set(out, "beta2", optimizer.get("b2"), where)
    elif optimizer is not None:
        _set(out, "optimizer", str(optimizer).lower(), where)


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
    out = {key: value for key, value in values.items()
           if key not in (*ROLES, "GAN_model", *TOP_LEVEL_KEYS, *IGNORED)}
    out["model"] = ZOO_MODEL
    for key, target in TOP_LEVEL_KEYS.items():
        _set(out, target, values.get(key), where)
    settings = values.get("GAN_model") or {}
    for key, value in settings.items():
        if key in GAN_MODEL_KEYS:
            _set(out, GAN_MODEL_KEYS[key], int(value) if key in ("epochs", "mini_batch_size") else value, where)
    discriminator = values.get("discriminator")
    discriminator = _choice(discriminator.get("choice") if isinstance(discriminator, dict) else discriminator)
    losses = {}
    for role in ROLES:
        if role in values:
            _block(role, values[role], out, discriminator, where)
            if isinstance(values[role], dict) and "loss" in values[role]:
                losses[role] = _loss(values[role]["loss"], discriminator, where)
    if "loss" not in out and losses:  # one loss for both networks: the discriminator's when both name one
        out["loss"] = losses.get("discriminator", losses.get("generator"))
    metrics = out.get("metric_evaluate")
    if isinstance(metrics, str):
        metrics = comma_list(metrics)
    if isinstance(metrics, list):  # gan-toolkit spells them "MMD"; section 9's names are lower case
        out["metric_evaluate"] = [str(name).lower() for name in metrics]
    return out
