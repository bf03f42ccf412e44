"""The run's config: the core sections, one section per registered method, validated once.

Validation is pydantic's (v2): each section is a model of typed fields (``equilibria.core.sections``),
and the root model is assembled from the method registry, so a registered method's section is a
config key with no edit here. Allowed names come from the registries (objectives, architectures,
datasets, methods). Errors are reported as ``ConfigError`` naming the key, the value and what is
allowed. Constraints between keys run after the schema: the core's, then each method's ``check``.
``docs/CONFIG.md`` is generated from the schema (``config_reference``).
"""

from __future__ import annotations

import copy
import difflib
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo

from equilibria.core.objectives import OBJECTIVES, Objective
from equilibria.core.optimizers import OptimizerConfig
from equilibria.core.sections import Bool, ConfigError, Float, Int, Section, Str, option, section
from equilibria.core.trainer import NONFINITE, PRECISIONS, UPDATES
from equilibria.data import DATASETS, POINT_DATASETS
from equilibria.methods import METHODS, Method
from equilibria.models import ARCHITECTURES, INIT_SCHEMES

__all__ = ["ConfigError", "config_model", "config_reference", "enabled_methods", "load_config", "objective_of",
           "parse_config", "set_key", "to_dict"]

Config = Any  # an instance of config_model(): the root model depends on the registered methods


def _one_of(names: typing.Iterable[str]) -> Any:
    return Literal[tuple(names)]


# -- the core sections ------------------------------------------------------------------------------
class DataConfig(Section):
    """``data``: the dataset (equilibria/data/)."""

    name: _one_of(DATASETS) = option("digits", "the dataset")
    root: Str | None = option(None, "data directory; null: $EQUILIBRIA_DATA, else ./data")
    split: Literal["train", "test", "all"] = option("train", "which split (MNIST, stacked MNIST, CIFAR-10, CelebA)")
    image_size: Int | None = option(None, "resize images to this size (e.g. MNIST at 32 for dcgan32)", ge=4)
    num_samples: Int | None = option(None, "points drawn for ring/grid (100 000), stacked images for "
                                     "stacked_mnist, else the first N", ge=1)


class GeneratorConfig(Section):
    """``generator``: the generator's network (equilibria/models/)."""

    arch: _one_of(ARCHITECTURES) = option("dcgan8", "architecture")
    width: Int | None = option(None, "channel/unit width; null: the paper's", ge=1)
    latent_dim: Int | None = option(None, "latent size; null: the paper's", ge=1)
    init: _one_of(INIT_SCHEMES) = option("default", "weight initialisation")


class DiscriminatorConfig(Section):
    """``discriminator``: the adversary's network."""

    arch: _one_of(ARCHITECTURES) | None = option(None, "architecture; null: the generator's")
    width: Int | None = option(None, "channel/unit width; null: the paper's", ge=1)
    init: _one_of(INIT_SCHEMES) = option("default", "weight initialisation")
    spectral_norm: Bool = option(False, "spectral normalisation of every Linear and Conv layer")


class OptimConfig(Section):
    """``optim``: each player's optimizer (a joint optimizer comes from a method: ``cgd``)."""

    generator: OptimizerConfig = section(OptimizerConfig, "the generator's optimizer")
    adversary: OptimizerConfig = section(OptimizerConfig, "the adversary's optimizer")


class PenaltyConfig(Section):
    """``penalties``: terms of L_adv (equilibria/core/penalties.py) and weight clipping."""

    gradient_penalty: Float = option(0.0, "weight of the WGAN-GP term (10 in the paper); 0: off", ge=0.0)
    gradient_penalty_center: Float = option(1.0, "1: WGAN-GP's one-centred penalty; 0: zero-centred", ge=0.0)
    r1: Float = option(0.0, "gamma of R1, gamma/2 E||grad D(x)||^2 on real data; 0: off", ge=0.0)
    r2: Float = option(0.0, "gamma of R2, gamma/2 E||grad D(G(z))||^2 on generated data; 0: off", ge=0.0)
    l2: Float = option(0.0, "weight of the L2 weight penalty sum ||phi||^2; 0: off", ge=0.0)
    weight_clip: Float = option(0.0, "clip the adversary's weights to [-c, c] after each step; 0: off", ge=0.0)


class TrainConfig(Section):
    """``train``: the iteration."""

    steps: Int = option(3000, "generator updates (iterations)", ge=1)
    batch_size: Int = option(64, "samples per batch, real and generated", ge=1)
    generator_batch_size: Int | None = option(None, "generated samples in the generator's step, when they differ "
                                              "from train.batch_size (AutoGAN's code: 128 against 64); null: "
                                              "train.batch_size. Alternating updates only", ge=1)
    n_adv: Int = option(1, "adversary updates per generator update (alternating updates); 0: the adversary stays "
                        "at its initialisation (AdvAs Appendix C.3)", ge=0)
    update: _one_of(UPDATES) = option("alternating", "alternating (n_adv adversary steps, then the "
                                      "generator's), simultaneous, or joint (set by a method with a joint "
                                      "optimizer)")
    ema: Float = option(0.0, "decay of the generator's weight average; 0: off", ge=0.0, lt=1.0)
    nonfinite: _one_of(NONFINITE) = option("stop", "on a NaN or infinite loss, gradient or method quantity: stop "
                                           "(the last good checkpoint kept, exit code 3), or skip that player's "
                                           "update (reads a flag every step; not with joint updates)")
    max_skips: Int = option(10, "nonfinite=skip: iterations in a row with a skipped update before the run stops",
                            ge=1)
    sync_batchnorm: Bool = option(True, "on several processes, BatchNorm layers normalise by the global batch's "
                                  "statistics (as one process would); false: each process's share")
    precision: _one_of(PRECISIONS) = option("fp32", "bf16 or fp16: the players' forward passes under autocast, "
                                            "fp16 with a loss scale per player; backward passes, penalties, AdvAs "
                                            "and joint (CGD) updates stay fp32")
    compile: Bool = option(False, "compile the players' forward passes with torch.compile (the first iterations "
                           "pay for it); penalties, AdvAs's r and the methods' networks stay eager, since compiled "
                           "graphs cannot be differentiated twice; not with joint (CGD) updates")
    channels_last: Bool = option(False, "the convolution weights of the players and of the methods' "
                                 "networks (the lens), and the image batches, in channels_last memory format "
                                 "(faster on some machines: docs/BENCHMARKS.md)")


class EvalConfig(Section):
    """``eval``: evaluation during training (equilibria/metrics/evaluation.py)."""

    every: Int = option(0, "evaluate every N steps and at the last step, logged as eval/<metric> against step "
                        "and training seconds, on the EMA generator when kept; 0: off", ge=0)
    num_samples: Int = option(5000, "generated samples per evaluation (the same latent codes each time)", ge=2)
    metrics: Str | None = option(None, "comma-separated of fid, is, kid, pr, modes; null: all that apply to "
                                 "data.name (2-D data: modes; stacked MNIST adds modes)")
    extractor: Literal["classifier", "inception"] | None = option(None, "features for FID/KID/PR and logits for "
                                                                  "IS; null: the dataset classifier for digits, "
                                                                  "MNIST and stacked MNIST, else the FID Inception")
    reference_size: Int | None = option(None, "reference images; null: all, at most 10000", ge=2)
    batch_size: Int = option(64, "batch size of the feature extractor", ge=1)
    seed: Int = option(0, "seed of the latent codes and the KID subsets", ge=0)
    kid_subset_size: Int = option(1000, "samples per KID subset", ge=2)


class LogConfig(Section):
    """``log``: what a run records."""

    every: Int = option(50, "metrics every N steps", ge=1)
    sample_every: Int = option(500, "sample grid every N steps", ge=1)
    checkpoint_every: Int = option(1000, "checkpoint every N steps (and always at the end)", ge=1)
    keep_checkpoints: Int = option(3, "checkpoints kept, the newest", ge=1)
    num_samples: Int = option(64, "images in a sample grid (points in a 2-D scatter: x 16)", ge=1)
    tensorboard: Bool = option(True, "write TensorBoard events")
    progress: Bool = option(True, "show the progress: a bar on a terminal, else a line at each logging step")


def _objective_names() -> tuple[str, ...]:
    return (*OBJECTIVES, *(name for method in METHODS.values() for name in method.objectives))


@functools.cache
def _root_model(methods: tuple[tuple[str, type], ...], objectives: tuple[str, ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "seed": (Int, option(0, "seeds torch, numpy, python, the data order and the sample-grid noise", ge=0)),
        "device": (Str, option("cpu", "where the networks and data live: cpu, cuda or cuda:N")),
        "threads": (Int | None, option(None, "torch's intra-op threads; null: PyTorch's default", ge=1)),
        "run_dir": (Str | None, option(None, "the run directory; null: runs/<time>-<data>-<arch>-<objective>-s<seed>")),
        "objective": (_one_of(objectives), option("nonsaturating", "the GAN objective (equilibria/core/objectives.py; "
                                                  "methods add their own)")),
        "data": (DataConfig, section(DataConfig, DataConfig.__doc__)),
        "generator": (GeneratorConfig, section(GeneratorConfig, GeneratorConfig.__doc__)),
        "discriminator": (DiscriminatorConfig, section(DiscriminatorConfig, DiscriminatorConfig.__doc__)),
        "optim": (OptimConfig, section(OptimConfig, OptimConfig.__doc__)),
        "penalties": (PenaltyConfig, section(PenaltyConfig, PenaltyConfig.__doc__)),
        "train": (TrainConfig, section(TrainConfig, TrainConfig.__doc__)),
        "log": (LogConfig, section(LogConfig, LogConfig.__doc__)),
        "eval": (EvalConfig, section(EvalConfig, EvalConfig.__doc__)),
    }
    for name, model in methods:
        fields[name] = (model, section(model, model.__doc__))
    return create_model("Config", __base__=Section, **fields)


def config_model() -> type[BaseModel]:
    """The root config model for the methods registered now."""
    return _root_model(tuple((name, method.config) for name, method in METHODS.items()), _objective_names())


# -- errors in our words -----------------------------------------------------------------------------
def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(base type, its Annotated metadata, whether None is allowed)."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    return annotation, metadata, optional


def _bounds(metadata: list[Any]) -> str:
    words = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            words += [_bounds(item.metadata)] if _bounds(item.metadata) else []
            continue
        for attribute, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(item, attribute, None) is not None:
                words.append(f"{sign} {getattr(item, attribute)}")
    return " and ".join(words)


def describe(annotation: Any, metadata: list[Any] = ()) -> str:
    """What a field allows, in words."""
    base, inner, optional = _unwrap(annotation)
    metadata = [*inner, *metadata]
    if typing.get_origin(base) is Literal:
        words = "one of " + ", ".join(str(a) for a in typing.get_args(base))
    elif typing.get_origin(base) is tuple:
        element, element_metadata, _ = _unwrap(typing.get_args(base)[0])
        words = f"a list of {len(typing.get_args(base))} numbers"
        if _bounds(element_metadata):
            words += f", each {_bounds(element_metadata)}"
    elif isinstance(base, type) and issubclass(base, BaseModel):
        words = "a mapping of keys"
    else:
        words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(base, str(base))
        if _bounds(metadata):
            words += f" {_bounds(metadata)}"
    return words + (", or null" if optional else "")


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The section model at ``loc`` (a path of section names)."""
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        base = _unwrap(info.annotation)[0] if info is not None else None
        if not (isinstance(base, type) and issubclass(base, BaseModel)):
            break
        model = base
    return model


def _field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The field at ``loc`` (a pydantic error location; tuple indices are left out)."""
    names = tuple(part for part in loc if isinstance(part, str))
    if not names:
        return None
    return _model_at(model, names[:-1]).model_fields.get(names[-1])


def _key(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "<root>"


def _error(root: type[BaseModel], error: dict[str, Any]) -> ConfigError:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    key, value = _key(loc), error.get("input")
    if error["type"] == "extra_forbidden":
        allowed = list(_model_at(root, loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        prefix = _key(loc[:-1]) + "." if loc[:-1] else ""
        hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
        return ConfigError(f"unknown config key {key!r}{hint}; allowed here: {', '.join(allowed)}")
    info = _field_at(root, loc)
    if info is None:
        return ConfigError(f"config key {key!r}: got {value!r}; {error['msg']}")
    annotation = info.annotation
    if loc and isinstance(loc[-1], int) and error["type"] == "missing":  # a tuple too short
        loc = loc[:-1]
        key = _key(loc)
    elif loc and isinstance(loc[-1], int):  # an element of a tuple
        annotation = typing.get_args(_unwrap(annotation)[0])[0]
    allowed = describe(annotation, [] if loc and isinstance(loc[-1], int) else info.metadata)
    base = _unwrap(annotation)[0]
    if typing.get_origin(base) is Literal and isinstance(value, str):
        close = difflib.get_close_matches(value, [str(a) for a in typing.get_args(base)], n=1)
        if close:
            allowed += f" (did you mean {close[0]!r}?)"
    return ConfigError(f"config key {key!r}: got {value!r}; allowed: {allowed}")


def _validate(data: dict[str, Any]) -> Any:
    root = config_model()
    try:
        return root.model_validate(data)
    except ValidationError as error:
        raise _error(root, error.errors()[0]) from None


# -- reading a config ---------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """A YAML file, read safely; errors name the file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a directory; allowed: a YAML file")
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML: {error}") from None


def set_key(data: dict, assignment: str) -> None:
    """Apply one ``--set a.b=value`` to a raw config mapping; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. --set train.steps=500")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML ({error})") from None
    *parents, last = key.strip().split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {'.'.join(parents[: i + 1])!r} is not a section")
        node = child
    node[last] = value


def _get(data: dict, key: str) -> tuple[bool, Any]:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _apply_implied(data: dict, config: Any) -> bool:
    """Set the keys enabled methods imply (``Method.implies``); True if any was set."""
    changed = False
    for method, _ in enabled_methods(config):
        for key, value in method.implies.items():
            given, current = _get(data, key)
            if given and current != value:
                raise ConfigError(f"config key {key!r}: got {current!r} with {method.name}.enabled=true; allowed: "
                                  f"{value!r} ({method.name} sets it)")
            if not given:
                set_key(data, f"{key}={value}")
                changed = True
    return changed


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate a raw config mapping: the schema, the keys methods imply, then the constraints between keys."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: got {data!r}; allowed: a mapping of config keys")
    data = copy.deepcopy(data)  # the implied keys are filled in here, not in the caller's mapping
    config = _validate(data)
    if _apply_implied(data, config):
        config = _validate(data)
    check(config)
    return config


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML config (or the defaults), apply ``key=value`` overrides and validate."""
    data: Any = {}
    source = "config"
    if path is not None:
        data = read_yaml(path)
        source = f"config file {str(path)!r}"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: got {data!r}; allowed: a mapping of config keys")
    for assignment in overrides:
        set_key(data, assignment)
    return parse_config(data, source)


def to_dict(config: Config) -> dict:
    """The config as plain YAML-able data (tuples become lists)."""
    return config.model_dump(mode="json")


def dotted(data: dict, prefix: str = "") -> dict[str, Any]:
    """A nested mapping (a config as ``to_dict`` gives it) as dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# -- methods and the objective of a config ------------------------------------------------------------
def enabled_methods(config: Config) -> list[tuple[Method, Any]]:
    """The registered methods the config switches on, in registry order, with their sections."""
    return [(method, getattr(config, name)) for name, method in METHODS.items() if getattr(config, name).enabled]


def objective_of(config: Config) -> Objective:
    """The run's objective: a core one, or one a method owns (built from its section)."""
    if config.objective in OBJECTIVES:
        return OBJECTIVES[config.objective]
    for name, method in METHODS.items():
        if config.objective in method.objectives:
            try:
                return method.objectives[config.objective](getattr(config, name))
            except ValueError as error:
                raise ConfigError(f"config key 'objective': got {config.objective!r} with the {name} section: "
                                  f"{error}") from None
    raise ConfigError(f"config key 'objective': got {config.objective!r}; allowed: one of "
                      f"{', '.join(_objective_names())}")


def check(config: Config) -> None:
    """Constraints between keys: the core's, then each registered method's."""
    _check_core(config)
    objective = objective_of(config)
    _check_generator_batch(config.train, objective)
    for name, method in METHODS.items():
        method.check(getattr(config, name), config, objective)


def _check_generator_batch(train: TrainConfig, objective: Objective) -> None:
    if train.generator_batch_size in (None, train.batch_size):
        return
    if train.update != "alternating" or objective.generator_uses_real:
        raise ConfigError(f"config key 'train.generator_batch_size': got {train.generator_batch_size} with "
                          f"train.update={train.update} and objective={objective.name}; allowed: null or "
                          f"train.batch_size ({train.batch_size}), unless the updates alternate and the generator's "
                          "loss reads generated samples alone (a simultaneous or joint update and a relativistic "
                          "loss pair them with the real batch)")


def _check_core(config: Config) -> None:
    try:
        device = torch.device(config.device)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"config key 'device': got {config.device!r}; allowed: cpu, cuda, cuda:N")
    train = config.train
    if train.update in ("simultaneous", "joint") and train.n_adv != 1:
        raise ConfigError(f"config key 'train.n_adv': got {train.n_adv} with train.update={train.update}; allowed: "
                          "1 (simultaneous and joint updates take one step of each player)")
    joint = [m.name for m in METHODS.values() if m.implies.get("train.update") == "joint"]
    if train.update == "joint" and not any(m.implies.get("train.update") == "joint"
                                           for m, _ in enabled_methods(config)):
        raise ConfigError(f"config key 'train.update': got 'joint' without a joint optimizer; allowed with a method "
                          f"that brings one ({', '.join(joint)}), e.g. {joint[0]}.enabled=true")
    if train.compile and train.update == "joint":
        raise ConfigError("config key 'train.compile': got true with train.update=joint; allowed: false (a joint "
                          "update differentiates twice through both networks, which torch.compile does not support)")
    if train.nonfinite == "skip" and train.update == "joint":
        raise ConfigError("config key 'train.nonfinite': got 'skip' with train.update=joint; allowed: stop (a joint "
                          "optimizer changes its own state inside its step, which a skip cannot undo)")
    points = config.data.name in POINT_DATASETS
    for key, arch in (("generator.arch", config.generator.arch), ("discriminator.arch", config.discriminator.arch)):
        if arch is not None and (arch == "mlp") != points:
            images = ", ".join(a for a in ARCHITECTURES if a != "mlp")
            allowed = "mlp" if points else f"an image architecture ({images})"
            raise ConfigError(f"config key {key!r}: got {arch!r} for data.name={config.data.name}; allowed: {allowed}")
    if points and config.eval.extractor is not None:
        raise ConfigError(f"config key 'eval.extractor': got {config.eval.extractor!r} for 2-D data; allowed: null")
    if points and config.data.image_size is not None:
        raise ConfigError(f"config key 'data.image_size': got {config.data.image_size} for 2-D data; allowed: null")
    names = metric_names(config)
    e = config.eval
    if e.every and "kid" in names and e.num_samples < e.kid_subset_size:
        raise ConfigError(f"config key 'eval.num_samples': got {e.num_samples} with eval.kid_subset_size="
                          f"{e.kid_subset_size}; allowed: >= eval.kid_subset_size (KID draws subsets of that size "
                          "from the samples), or a smaller eval.kid_subset_size, or eval.metrics without kid")
    if e.every and "kid" in names and e.reference_size is not None and e.reference_size < e.kid_subset_size:
        raise ConfigError(f"config key 'eval.reference_size': got {e.reference_size} with eval.kid_subset_size="
                          f"{e.kid_subset_size}; allowed: >= eval.kid_subset_size, or null for all")


def metric_names(config: Config) -> list[str]:
    """The evaluation metrics of the config (``eval.metrics``, else all that apply to the data)."""
    allowed = {"stacked_mnist": ("fid", "is", "kid", "pr", "modes")}.get(config.data.name, ("fid", "is", "kid", "pr"))
    if config.data.name in POINT_DATASETS:
        allowed = ("modes",)
    if config.eval.metrics is None:
        return list(allowed)
    names = [name.strip() for name in config.eval.metrics.split(",")]
    if not all(names) or any(name not in allowed for name in names):
        raise ConfigError(f"config key 'eval.metrics': got {config.eval.metrics!r} for data.name="
                          f"{config.data.name}; allowed: a comma-separated list of {', '.join(allowed)}, "
                          "or null for all of them")
    return names


# -- docs/CONFIG.md -------------------------------------------------------------------------------------
def config_reference() -> str:
    """docs/CONFIG.md: every key with its default, what it allows and what it means, from the schema."""
    root = config_model()
    lines = ["# Config keys", "",
             "Generated from the schema by `equilibria config --reference`; do not edit by hand (a test fails "
             "when this file is stale).", "",
             "A config is a YAML file; every key is optional and defaults as below. `--set key=value` overrides "
             "any key (the value is parsed as YAML). `equilibria config [FILE] [--set ...]` prints the resolved "
             "config. A wrong key, type or value stops the run before it starts, with the key, the value and what "
             "is allowed. Numbers may be written `1e-3`; `.inf` and `.nan` are refused; a key given twice is an "
             "error. A method's section switches it on with `enabled: true`. On `equilibria resume`, only "
             "`train.steps`, `log.*` and `eval.*` may change.", ""]
    scalars, sections = [], []
    for name, info in root.model_fields.items():
        base = _unwrap(info.annotation)[0]
        (sections if isinstance(base, type) and issubclass(base, BaseModel) else scalars).append((name, info))
    lines += ["## Top level", "", "| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    lines += [_row(name, info) for name, info in scalars]
    for name, info in sections:
        model = _unwrap(info.annotation)[0]
        lines += ["", f"## `{name}`", "", (model.__doc__ or "").strip().split("\n")[0].replace("``", "`"), "",
                  "| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
        lines += _rows(name, model)
    return "\n".join(lines) + "\n"


def _rows(prefix: str, model: type[BaseModel]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        base = _unwrap(info.annotation)[0]
        if isinstance(base, type) and issubclass(base, BaseModel):
            rows += _rows(f"{prefix}.{name}", base)
        else:
            rows.append(_row(f"{prefix}.{name}", info))
    return rows


def _row(key: str, info: FieldInfo) -> str:
    default = info.get_default(call_default_factory=True)
    shown = yaml.safe_dump(list(default) if isinstance(default, tuple) else default, default_flow_style=True)
    shown = shown.strip().removesuffix("...").strip()
    cells = [describe(info.annotation, info.metadata), info.description or ""]
    allowed, meaning = (cell.replace("|", "\\|") for cell in cells)
    return f"| `{key}` | `{shown}` | {allowed} | {meaning} |"
