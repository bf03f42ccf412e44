"""Typed, validated run configuration, read from YAML with a safe loader.

Every field carries its constraint in ``metadata``; a wrong key, type or value raises
``ConfigError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration key, value or file that is not allowed."""


def _choice(*allowed: str, default: Any) -> Any:
    return field(default=default, metadata={"choices": allowed})


def _range(default: Any, low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False) -> Any:
    return field(default=default, metadata={"low": low, "high": high, "open_low": open_low, "open_high": open_high})


@dataclass
class DataConfig:
    name: str = _choice("digits", "mnist", "stacked_mnist", "ring", "grid", "cifar10", "folder", default="digits")
    root: str | None = None  # data directory; default: $EQUILIBRIA_DATA, else ./data
    split: str = _choice("train", "test", "all", default="train")
    image_size: int | None = _range(None, 4)
    num_samples: int | None = _range(None, 1)


@dataclass
class GeneratorConfig:
    arch: str = _choice("mlp", "dcgan8", "advas_mnist", "icr_mnist", "dcgan32", default="dcgan8")
    width: int | None = _range(None, 1)  # None: the paper's width
    latent_dim: int | None = _range(None, 1)  # None: the paper's latent size
    init: str = _choice("default", "dcgan", "xavier", default="default")


@dataclass
class DiscriminatorConfig:
    arch: str | None = _choice("mlp", "dcgan8", "advas_mnist", "icr_mnist", "dcgan32", default=None)  # None: generator's
    width: int | None = _range(None, 1)
    init: str = _choice("default", "dcgan", "xavier", default="default")
    spectral_norm: bool = False


@dataclass
class OptimizerConfig:
    name: str = _choice("adam", "rmsprop", "sgd", default="adam")
    lr: float = _range(2e-4, 0.0, open_low=True)
    betas: tuple[float, float] = (0.5, 0.999)  # adam
    eps: float = _range(1e-8, 0.0, open_low=True)  # adam, rmsprop
    alpha: float = _range(0.99, 0.0, 1.0)  # rmsprop smoothing constant
    momentum: float = _range(0.0, 0.0, 1.0)  # sgd, rmsprop
    weight_decay: float = _range(0.0, 0.0)


@dataclass
class JointOptimizerConfig:
    """``optim.joint``: the optimizer of ``train.update: joint`` (the generator minimises f = -L_adv)."""

    name: str = _choice("acgd", "cgd", default="acgd")
    lr: float = _range(1e-4, 0.0, open_low=True)  # ACGD's alpha (ICR: 1e-4); CGD's step size
    lr_generator: float | None = _range(None, 0.0, open_low=True)  # the generator's; null: lr
    lr_adversary: float | None = _range(None, 0.0, open_low=True)  # the adversary's; null: lr
    beta: float = _range(0.99, 0.0, 1.0, open_high=True)  # acgd: beta2 of the second-moment estimate
    eps: float = _range(1e-5, 0.0, open_low=True)  # acgd
    solver: str = _choice("cg", "gmres", default="cg")
    tol: float = _range(1e-6, 0.0)  # relative residual of the linear solve
    atol: float = _range(1e-10, 0.0)  # absolute residual of the linear solve
    max_iter: int | None = _range(None, 1)  # solver iterations per step; null: no cap
    restart: int = _range(30, 1)  # gmres
    warm_start: bool = True  # start the solver from the previous step's solution


@dataclass
class OptimConfig:
    generator: OptimizerConfig = field(default_factory=OptimizerConfig)
    adversary: OptimizerConfig = field(default_factory=OptimizerConfig)
    joint: JointOptimizerConfig = field(default_factory=JointOptimizerConfig)  # train.update: joint (CGD, ACGD)


@dataclass
class PenaltyConfig:
    gradient_penalty: float = _range(0.0, 0.0)  # weight of the WGAN-GP term (10 in the paper); 0 = off
    gradient_penalty_center: float = _range(1.0, 0.0)  # 1: WGAN-GP's one-centred penalty; 0: zero-centred
    r1: float = _range(0.0, 0.0)  # gamma of the R1 penalty; 0 = off
    l2: float = _range(0.0, 0.0)  # weight of the L2 weight penalty; 0 = off
    weight_clip: float = _range(0.0, 0.0)  # clip the adversary's weights to [-c, c] after each step; 0 = off


@dataclass
class TrainConfig:
    steps: int = _range(3000, 1)  # generator updates
    batch_size: int = _range(64, 1)
    n_adv: int = _range(1, 1)  # adversary updates per generator update
    update: str = _choice("alternating", "simultaneous", "joint", default="alternating")
    ema: float = _range(0.0, 0.0, 1.0, open_high=True)  # decay of the generator's weight average; 0 = off


def _optimizer(lr: float, betas: tuple[float, float] = (0.5, 0.999), eps: float = 1e-8) -> Any:
    return field(default_factory=lambda: OptimizerConfig(lr=lr, betas=betas, eps=eps))


@dataclass
class LensConfig:
    """The lens of tempered adversarial networks (equilibria/methods/lens.py)."""

    enabled: bool = False
    width: int = _range(32, 1)  # channels inside the lens
    blocks: int = _range(8, 1)  # residual blocks (Appendix A.2: 8)
    lam: float | None = _range(None, 0.0)  # fixed lambda; None: the schedule of Appendix A.3
    anneal_steps: int = _range(100_000, 1)  # K of the schedule (the paper's 1e5)
    switch_off: bool = False  # stop running the lens once lambda is 0 and it is the identity
    switch_off_tol: float = _range(1e-6, 0.0, open_low=True)  # reconstruction error per pixel
    reconstruction: str = _choice("sum", "mean", default="sum")  # L_R per sample: squared norm, or per pixel
    optim: OptimizerConfig = _optimizer(1e-4)


@dataclass
class MetaConfig:
    """Meta-discriminators (equilibria/methods/meta.py)."""

    enabled: bool = False
    variant: str = _choice("variance", "lipschitz", default="variance")  # R and F (Eq. 8-10) or M (Eq. 13)
    mu_real: float = 1.0  # mean of N(mu_r, 1) for the outputs on real data
    mu_fake: float = -1.0  # mean of N(mu_f, 1) for the outputs on generated data
    mean_subtraction: bool = False  # centre the outputs on generated data by their batch mean
    order: str = _choice("sorted", "ordered", default="sorted")  # sorted: permutation-invariant
    hidden: int = _range(28, 1)  # hidden units (Section 4.1: 28)
    weight: float = _range(1.0, 0.0)  # weight of the meta terms in L_adv
    lipschitz_k: float = _range(1.0, 0.0, open_low=True)  # K of the lipschitz variant
    lipschitz_sigma: float = _range(0.1, 0.0, open_low=True)
    optim: OptimizerConfig = _optimizer(1e-4, eps=3e-6)  # Algorithm 1's Adam


@dataclass
class AdvAsConfig:
    """The Adversary's Assistant (equilibria/methods/advas.py, docs/ADVAS.md)."""

    enabled: bool = False
    lam: float | None = _range(None, 0.0)  # None: the heuristic of Eq. 11
    mode: str = _choice("auto", "exact", "hvp", default="auto")  # how grad_theta r is computed
    difference: str = _choice("forward", "central", default="forward")  # hvp mode
    eps_scale: float | None = _range(None, 0.0, open_low=True)  # hvp step scale c; None: by dtype
    estimator: str = _choice("biased", "unbiased", default="biased")  # Eq. 10, or Appendix B
    hinge_truncation: bool = False  # compute r with the hinge's truncation (Section 5: without)
    r_only: bool = False  # the generator minimises lambda r alone (Appendix C.3)
    chunk_size: int | None = _range(8, 1)  # unbiased: samples per vmap call; None: all


@dataclass
class EvalConfig:
    """Evaluation during training (equilibria/metrics/evaluation.py)."""

    every: int = _range(0, 0)  # evaluate every N steps and at the last step; 0 = off
    num_samples: int = _range(5000, 2)  # generated samples per evaluation (the same latent codes each time)
    metrics: str | None = None  # comma-separated of fid, is, kid, pr, modes; null: all that apply to data.name
    extractor: str | None = _choice("classifier", "inception", default=None)  # null: the dataset's default
    reference_size: int | None = _range(None, 2)  # reference images; null: all, at most 10000
    batch_size: int = _range(64, 1)
    seed: int = _range(0, 0)  # latent codes and KID subsets
    kid_subset_size: int = _range(1000, 2)


@dataclass
class LogConfig:
    every: int = _range(50, 1)  # metrics every N steps
    sample_every: int = _range(500, 1)  # sample grid every N steps
    checkpoint_every: int = _range(1000, 1)
    keep_checkpoints: int = _range(3, 1)
    num_samples: int = _range(64, 1)  # images in a sample grid (points in a 2-D scatter: x 16)
    tensorboard: bool = True
    progress: bool = True


@dataclass
class Config:
    seed: int = _range(0, 0)
    device: str = "cpu"
    threads: int | None = _range(None, 1)  # torch intra-op threads; None: PyTorch's default
    run_dir: str | None = None  # default: runs/<time>-<data>-<arch>
    objective: str = _choice("minimax", "nonsaturating", "wgan", "lsgan", "hinge", "vral", "vral_lsq",
                             default="nonsaturating")
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    penalties: PenaltyConfig = field(default_factory=PenaltyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lens: LensConfig = field(default_factory=LensConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    advas: AdvAsConfig = field(default_factory=AdvAsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _describe(hint: Any, meta: typing.Mapping[str, Any]) -> str:
    """What a field allows, in words."""
    if "choices" in meta:
        allowed = "one of " + ", ".join(meta["choices"])
        return allowed + (" or null" if _optional(hint) else "")
    base = _optional(hint) or hint
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(base)
    if words is None and typing.get_origin(base) is tuple:
        words = f"a list of {len(typing.get_args(base))} numbers"
    words = words or str(base)
    low, high = meta.get("low"), meta.get("high")
    if low is not None:
        words += f" {'>' if meta.get('open_low') else '>='} {low}"
    if high is not None:
        words += f"{' and' if low is not None else ''} {'<' if meta.get('open_high') else '<='} {high}"
    return words + (", or null" if _optional(hint) else "")


def _optional(hint: Any) -> Any:
    """T for ``T | None``, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _convert(key: str, value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    given = value

    def fail() -> typing.NoReturn:
        raise ConfigError(f"config key {key!r}: got {given!r}; allowed: {_describe(hint, meta)}")

    inner = _optional(hint)
    if inner is not None:
        return None if value is None else _convert(key, value, inner, meta)
    if hint is bool:
        if not isinstance(value, bool):
            fail()
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            fail()
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            fail()
        value = tuple(_convert(f"{key}[{i}]", v, a, {}) for i, (v, a) in enumerate(zip(value, args)))
    if "choices" in meta and value not in meta["choices"]:
        fail()
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("open_low") and value == low)):
        fail()
    if high is not None and (value > high or (meta.get("open_high") and value == high)):
        fail()
    return value


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, validating every key and value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<root>'!r}: got {data!r}; allowed: a mapping of keys")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown config key {prefix + str(key)!r}{hint}; allowed here: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = from_dict(hint, data[name], f"{prefix}{name}.")
        else:
            values[name] = _convert(prefix + name, data[name], hint, f.metadata)
    return cls(**values)


def to_dict(config: Any) -> dict:
    """The config as plain YAML-able data (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


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


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML config (or the defaults), apply ``key=value`` overrides and validate."""
    data: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from None
    for assignment in overrides:
        set_key(data, assignment)
    config = from_dict(Config, data)
    check(config)
    return config


def check(config: Config) -> None:
    """Constraints between keys."""
    if config.advas.enabled and config.train.update == "joint":
        raise ConfigError("config key 'advas.enabled': got true with train.update=joint; allowed: false (AdvAs "
                          "changes the generator's own step, which a joint update does not take)")
    if config.train.update in ("simultaneous", "joint") and config.train.n_adv != 1:
        raise ConfigError(f"config key 'train.n_adv': got {config.train.n_adv} with train.update="
                          f"{config.train.update}; allowed: 1 (simultaneous and joint updates take one step of "
                          "each player)")
    if config.train.update == "joint" and config.objective.startswith("vral"):
        raise ConfigError(f"config key 'objective': got {config.objective!r} with train.update=joint; allowed: a "
                          "zero-sum objective (minimax, nonsaturating, wgan, lsgan, hinge)")
    points = config.data.name in ("ring", "grid")
    for key, arch in (("generator.arch", config.generator.arch), ("discriminator.arch", config.discriminator.arch)):
        if arch is not None and (arch == "mlp") != points:
            allowed = "mlp" if points else "an image architecture (dcgan8, advas_mnist, icr_mnist, dcgan32)"
            raise ConfigError(f"config key {key!r}: got {arch!r} for data.name={config.data.name}; allowed: {allowed}")
    if config.objective.startswith("vral") and not (config.meta.enabled and config.meta.variant == "variance"):
        raise ConfigError(f"config key 'objective': got {config.objective!r} without meta-discriminators; "
                          "allowed with meta.enabled=true and meta.variant=variance (VRAL trains the "
                          "adversary through them alone)")
    if config.lens.enabled and points:
        raise ConfigError(f"config key 'lens.enabled': got true for data.name={config.data.name}; allowed: images only")
    if config.eval.metrics is not None:
        allowed = {"ring": ("modes",), "grid": ("modes",),
                   "stacked_mnist": ("fid", "is", "kid", "pr", "modes")}.get(config.data.name, ("fid", "is", "kid", "pr"))
        names = [name.strip() for name in config.eval.metrics.split(",")]
        if not all(names) or any(name not in allowed for name in names):
            raise ConfigError(f"config key 'eval.metrics': got {config.eval.metrics!r} for data.name="
                              f"{config.data.name}; allowed: a comma-separated list of {', '.join(allowed)}, "
                              "or null for all of them")
    if points and config.eval.extractor is not None:
        raise ConfigError(f"config key 'eval.extractor': got {config.eval.extractor!r} for 2-D data; allowed: null")
    if points and config.data.image_size is not None:
        raise ConfigError(f"config key 'data.image_size': got {config.data.image_size} for 2-D data; allowed: null")
