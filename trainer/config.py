"""Typed training options: `TrainConfig` holds the options every model shares, and each model extends it with its
own dataclass beside the model (`trainer/models/<name>_config.py`), which may also set its own default for a
shared option (`model_default`).

An option is a dataclass field whose metadata carries its help text (and its choices, minimum, ...): the
command-line flags, `--help`, JSON config parsing and the saved `config.json` are all generated from the fields.
Config keys are the field names, flags the same names with dashes (INTERFACE.md section 2). TensorFlow-free.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import types
import typing
from dataclasses import dataclass

from trainer import models
from trainer.evaluate import names as metric_names

AUTO_EVAL_EVERY_STEPS = 500  # --eval-every-steps left unset: evaluate every this many steps (not at the end)
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# A JSON object of option values that replace the built-in defaults of this process's configs (below any
# config file or flag): lets a whole test run train with, say, {"steps_per_execution": 4}. See `env_defaults`.
DEFAULTS_ENV = "GENART_TRAIN_DEFAULTS"
FUSED_STEP_HELP = ("the same maths, faster: batch / instance norm through TensorFlow's fused kernel; the VAE-GAN calls "
                   "its discriminator once per image set, so backward passes skip rows they do not need; CycleGAN "
                   "runs its RGB convs on 2x2 blocks and its two cycles side by side on CPUs, its generators on "
                   "stacked batches on GPUs (false: the old step, for comparison)")
# Before typed model options, the VAE-GAN's settings lived in an untyped dict, {"extra": {"recon_weight": 5}}.
LEGACY_EXTRA = "extra"
TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              list: "a list of strings (or a comma-separated string)"}


def option(default, help: str, *, choices=(), minimum=None, default_text: str | None = None, flag: bool = True):
    """A config field. `help` is its --help text; `choices` and `minimum` are checked by `validate()`;
    `default_text` is shown instead of the default (say, what a None default means); `flag=False` for a setting
    that is saved in config.json but comes from elsewhere (no command-line flag)."""
    where = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return dataclasses.field(**where, metadata={
        "help": help, "choices": tuple(choices), "minimum": minimum, "default_text": default_text, "flag": flag})


def model_default(name: str, value):
    """In a model's config class, that model's own default for the shared option `name` (its help and checks
    kept; --help shows it beside the common default): `batch_size: int = model_default("batch_size", 1)`."""
    metadata = TrainConfig.__dataclass_fields__[name].metadata
    return dataclasses.field(default=value, metadata={**metadata, "default_text": None})


def comma_list(text: str) -> list[str]:
    """`"a,b"` -> `["a", "b"]` (a list option's flag value)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def without_legacy_extra(values: dict) -> dict:
    """`values` with the legacy `"extra": {...}` lifted to the top level (a key also set at the top level wins)."""
    values = dict(values)
    extra = values.pop(LEGACY_EXTRA, None) or {}
    if not isinstance(extra, dict):
        raise ValueError(f"config key {LEGACY_EXTRA!r} must be an object, got {extra!r}")
    return {**extra, **values}


@dataclass
class TrainConfig:
    """The options every model shares. Each model's config class (registered in `trainer.models`) adds its own."""

    data_dir: str = option("", "TFRecords + manifest.json from `python -m preprocess` (local or gs://)",
                           default_text="required")
    job_dir: str = option("", "the job dir (local or gs://); its last component is the job name",
                          default_text="required")
    model: str = option(models.DEFAULT_MODEL, f"the model: {', '.join(models.names())}; or a JSON config file "
                        "(same as --config)")
    config: str | None = option(None, "a JSON file setting any option of the model (names with underscores)",
                                default_text="none")
    image_size: int = option(64, "training resolution, a multiple of 16", minimum=1,
                             default_text="the data's, else 64 (a GPU's); vaegan on a CPU: picked, 32")
    batch_size: int = option(64, "global batch size, split across replicas", minimum=1,
                             default_text="64 (a GPU's); vaegan on a CPU: picked, 16 to 32")
    max_steps: int = option(10000, "train until this step (a step updates every network of the model once)",
                            minimum=1)
    latent_dim: int = option(100, "embedding size", minimum=1)
    base_filters: int = option(64, "width of the first conv layer", minimum=1,
                               default_text="64 (a GPU's); vaegan on a CPU: picked, 16 to 32")
    learning_rate: float = option(2e-4, "Adam learning rate (> 0)")
    beta1: float = option(0.5, "Adam beta1")
    checkpoint_every_steps: int = option(500, "checkpoint every N steps (and at the end, and on Ctrl-C)",
                                         minimum=1)
    summary_every_steps: int = option(100, "TensorBoard scalars and progress lines every N steps", minimum=1)
    sample_every_steps: int = option(500, "sample grids in logs/ and samples/ every N steps", minimum=1)
    seed: int = option(0, "random seed of the initial weights, the data order and the training noise")
    strategy: str = option("auto", "tf.distribute strategy: auto = all local GPUs when there are several, else one "
                           "device; multi_worker reads TF_CONFIG", choices=STRATEGIES)
    jit_compile: bool | None = option(None, "XLA-compile the train step (true or false)",
                                      default_text="true on GPU only")
    steps_per_execution: int = option(
        1, "training steps per call into TensorFlow (one host round trip per call); checkpoints, summaries, "
        "samples, evaluations and signals still land on their exact steps", minimum=1)
    precision: str = option(
        "auto", "float32, or Keras mixed precision for the networks (losses, outputs and exported signatures stay "
        "float32; float16 uses loss scaling); auto: mixed_bfloat16 on GPUs of compute capability >= 8, "
        "mixed_float16 on >= 7, else float32 (every CPU)", choices=PRECISIONS)
    input_cache_mib: int = option(
        512, "keep the decoded training images in memory (tf.data cache) when they fit in this many MiB; 0: never",
        minimum=0)
    eval_every_steps: int | None = option(
        None, "evaluate every N steps and at the end, as `python -m trainer.evaluate` does with the digits feature "
        "net (eval/, logs/eval, the progress line; job.json records the best step); 0 = off", minimum=0,
        default_text=f"auto: every {AUTO_EVAL_EVERY_STEPS} steps with the cheap --eval-num-samples budget, not "
        "repeated at the end")
    eval_num_samples: int = option(256, "images generated per split by each evaluation during training", minimum=4)
    eval_metrics: str = option(",".join(metric_names.DEFAULT_METRICS), "the metrics of the evaluation during "
                               "training, comma-separated; the first picks job.json's best step")
    sizing: str | None = option(None, "why image_size, base_filters and batch_size have their values when no "
                                "option set them (trainer/sizing.py): saved, not a flag", flag=False)
    center_crop: bool = option(False, "whether the data was center-cropped: from its manifest.json", flag=False)

    def __post_init__(self):
        """Options still at their built-in default take the value `GENART_TRAIN_DEFAULTS` gives them, if any."""
        for key, value in env_defaults(type(self)).items():
            field = self.field(key)
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
            if getattr(self, key) == default:
                setattr(self, key, value)

    # ---------------------------------------------------------------- what the options are

    @classmethod
    def keys(cls) -> list[str]:
        """Every config key of this class, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def own_keys(cls) -> list[str]:
        """The keys this class adds to the common ones (a model's own options)."""
        return [key for key in cls.keys() if key not in TrainConfig.__dataclass_fields__]

    @classmethod
    def field(cls, key: str) -> dataclasses.Field:
        return cls.__dataclass_fields__[key]

    @classmethod
    def model_name(cls) -> str:
        return cls.field("model").default

    @classmethod
    @functools.cache
    def value_types(cls) -> dict[str, tuple[type, bool]]:
        """{key: (its type, whether None is allowed)}, from the annotations (`int | None` -> (int, True))."""
        hints = typing.get_type_hints(cls)
        out = {}
        for key in cls.keys():
            hint = hints[key]
            if isinstance(hint, types.UnionType):
                kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
                out[key] = (kinds[0], len(kinds) < len(typing.get_args(hint)))
            else:
                out[key] = (typing.get_origin(hint) or hint, False)  # list[str] -> list
        return out

    # ---------------------------------------------------------------- reading

    @classmethod
    def check_keys(cls, keys, where: str = "", spell=repr) -> None:
        """Refuse keys this model has no option for: naming the model(s) a key belongs to, else listing the known
        keys (typo safety). `where` prefixes the message (a file name); `spell` renders a key (`flag_name`)."""
        unknown = [key for key in keys if key not in cls.__dataclass_fields__]
        misplaced = [(key, models.declaring(key)) for key in unknown if models.declaring(key)]
        problem = (f"{spell(misplaced[0][0])} is an option of {' and '.join(misplaced[0][1])}, not of "
                   f"{cls.model_name()} (the job's model)" if misplaced else
                   f"unknown configuration key(s) {', '.join(map(repr, unknown))}; the keys "
                   f"{cls.model_name()} knows: {', '.join(sorted(cls.keys()))}" if unknown else None)
        if problem:
            raise ValueError(where + problem)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config of these JSON values: every key known (see `check_keys`), every value of its option's type."""
        cls.check_keys(values)
        return cls(**{key: cls._typed(key, value) for key, value in values.items()})

    @classmethod
    def _typed(cls, key: str, value):
        kind, optional = cls.value_types()[key]
        if value is None and optional:
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if kind is list and isinstance(value, str):
            return comma_list(value)
        if kind is list and isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise ValueError(f"config key {key!r} must be {TYPE_WORDS[kind]}"
                         f"{' or null' if optional else ''}, got {json.dumps(value)}")

    @classmethod
    def saved_values(cls, values: dict) -> dict:
        """A job's saved config.json reduced to the keys of this model, also one written before typed model options
        (`extra` lifted; the CycleGAN fields it saved for every model dropped): a saved file holds no typos."""
        return {key: value for key, value in without_legacy_extra(values).items() if key in cls.__dataclass_fields__}

    @classmethod
    def from_saved(cls, values: dict) -> TrainConfig:
        return cls.from_dict(cls.saved_values(values))

    def merged(self, overrides: dict) -> TrainConfig:
        """A copy with the non-None `overrides` applied (command-line flags over the config file)."""
        return type(self).from_dict({**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})

    def evaluation_interval(self) -> tuple[int, bool]:
        """(evaluate every N steps (0: never), whether also at the end): --eval-every-steps, or auto."""
        if self.eval_every_steps is None:
            return AUTO_EVAL_EVERY_STEPS, False
        return self.eval_every_steps, self.eval_every_steps > 0

    # ---------------------------------------------------------------- writing and checking

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def validate(self) -> TrainConfig:
        """Check every option's minimum and choices, then the rules that involve several; returns self."""
        registered = models.config_class(self.model)
        if type(self) is not registered:
            raise ValueError(f"model {self.model!r} is configured by {registered.__name__}, "
                             f"not by {type(self).__name__}")
        for key in self.keys():
            value, metadata = getattr(self, key), self.field(key).metadata
            if value is None:
                continue
            minimum, choices = metadata.get("minimum"), metadata.get("choices")
            if minimum is not None and value < minimum:
                wanted = "a positive integer" if minimum == 1 else f">= {minimum}"
                raise ValueError(f"{flag_name(key)} must be {wanted}, got {value}")
            if choices and value not in choices:
                whose = "" if key in TrainConfig.__dataclass_fields__ else f" for {self.model}"
                raise ValueError(f"{flag_name(key)} must be one of {', '.join(choices)}{whose}, got {value!r}")
        if self.image_size % 16:
            raise ValueError(f"--image-size must be a multiple of 16 (e.g. 32, 64, 128), got {self.image_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        try:
            metric_names.parse_metrics(self.eval_metrics)
        except ValueError as err:
            raise ValueError(f"--eval-metrics: {err}") from None
        return self


def env_defaults(config_class: type[TrainConfig]) -> dict:
    """The `GENART_TRAIN_DEFAULTS` values of `config_class`'s keys (typed; other models' keys ignored).

    Lower than everything set explicitly: an option set to a value other than its built-in default (by a flag, a
    config file or a saved config.json) keeps it; one set to exactly the built-in default cannot be told apart
    from one left unset, and takes the environment's value.
    """
    text = os.environ.get(DEFAULTS_ENV, "").strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{DEFAULTS_ENV} must be a JSON object of option values: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{DEFAULTS_ENV} must be a JSON object of option values, got {text!r}")
    try:
        return {key: config_class._typed(key, value) for key, value in values.items()
                if key in config_class.__dataclass_fields__}
    except ValueError as err:
        raise ValueError(f"{DEFAULTS_ENV}: {err}") from None


# ---------------------------------------------------------------- flags and --help


def parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def default_text(field: dataclasses.Field) -> str:
    """How --help shows an option's default."""
    text = field.metadata["default_text"]
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    return _shown(default) if text is None else text


def add_arguments(parser: argparse.ArgumentParser, config_classes: dict[str, type[TrainConfig]]) -> None:
    """One flag per option of any model, in groups: the common options (with each model's own default when it
    has one), then each model's own, then those several models have (with each one's default). Every flag
    defaults to None, so that only flags actually given override (`TrainConfig.merged`)."""
    owners: dict[str, list[str]] = {}
    for model, config_class in config_classes.items():
        for key in config_class.own_keys():
            owners.setdefault(key, []).append(model)

    common = parser.add_argument_group(
        "common options", "every model's; a model may set its own default for one, shown after the common one")
    for key in TrainConfig.keys():
        own_defaults = [f"{model}: {default_text(config_class.field(key))}"
                        for model, config_class in config_classes.items()
                        if key != "model"  # (each model's class names its own model)
                        and config_class.field(key).default != TrainConfig.field(key).default]
        _add_flag(common, key, [TrainConfig], "; ".join([default_text(TrainConfig.field(key)), *own_defaults]))
    for model, config_class in config_classes.items():
        group = parser.add_argument_group(f"{model} options", models.registration(model).title)
        for key in config_class.own_keys():
            if owners[key] == [model]:
                _add_flag(group, key, [config_class], default_text(config_class.field(key)))
    shared = parser.add_argument_group("options of several models", "each model with its own default")
    for key, declaring in owners.items():
        if len(declaring) > 1:
            classes = [config_classes[model] for model in declaring]
            _add_flag(shared, key, classes, "; ".join(f"{model}: {default_text(config_class.field(key))}"
                                                      for model, config_class in zip(declaring, classes)))


def _add_flag(group, key: str, config_classes: list[type[TrainConfig]], default: str) -> None:
    field = config_classes[0].field(key)
    if not field.metadata["flag"]:
        return
    kind, _ = config_classes[0].value_types()[key]
    choices = list(dict.fromkeys(c for config_class in config_classes for c in config_class.field(key).metadata[
        "choices"])) or None
    help_text = f"{field.metadata['help']} (default: {default})".replace("%", "%%")
    typed = {bool: dict(type=parse_bool, metavar="{true,false}", nargs="?", const=True),  # --flag alone: true
             list: dict(type=comma_list, metavar="A,B")}.get(kind, dict(type=kind))
    group.add_argument(flag_name(key), dest=key, default=None, choices=choices, help=help_text, **typed)
