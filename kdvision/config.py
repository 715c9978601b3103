"""YAML -> validated config objects.

A config file is YAML. It may start from presets with ``base: path.yaml`` (or a list of
paths, relative to the file, or names of packaged recipes such as ``digits/kd``; an existing
file wins), which are deep-merged under it. ``KEY=VALUE`` overrides use dotted keys
(``train.epochs=2``) and YAML values (``train.optimizer.lr=0.1``,
``train.schedule.milestones=[10,20]``). A section whose ``name`` changes (under ``base:`` or by
an override such as ``method.name=fitnet``) is replaced whole. Every error names the key and
the file.

Paths: ``base:`` and ``teacher.recipe`` are relative to the file that writes them (so packaged
recipes find each other inside the package); every other relative path (data roots, teacher
checkpoints, ``pretrained:``) is relative to the working directory (``kdvision train --root``).
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml

from kdvision.config_checks import (BatchSize, Betas, Device, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat,
                                     PositiveInt, Range, Seed, Workers, apply_constraints, check_choice)
from kdvision.config_yaml import base_paths, read_yaml_mapping
from kdvision.errors import UserError


# --------------------------------------------------------------------------- schema
@dataclass
class OptimizerConfig:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: PositiveFloat = 0.05
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 5e-4
    nesterov: bool = False
    betas: Betas = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class ScheduleConfig:
    name: Literal["multistep", "step", "cosine", "poly", "constant", "exponential"] = "multistep"
    milestones: list[NonNegativeInt] = field(default_factory=list)  # epochs, for multistep
    gamma: PositiveFloat = 0.1
    step_size: PositiveInt = 1  # epochs, for step
    power: NonNegativeFloat = 0.9  # for poly
    min_lr: NonNegativeFloat = 0.0  # for cosine
    warmup_epochs: NonNegativeFloat = 0.0
    warmup_start_factor: Fraction = 0.01  # for warmup: linear
    #: linear: start_factor -> 1 over warmup_epochs | gradual: (epoch + 1) / warmup_epochs
    warmup: Literal["linear", "gradual"] = "linear"
    by: Literal["epoch", "step"] = "epoch"  # when the schedule advances


@dataclass
class StageConfig:
    """One stage of a staged recipe: its epochs and the method parameters it changes."""

    name: str
    epochs: NonNegativeInt  # a stage of 0 epochs is skipped; the stages together need >= 1
    method: dict = field(default_factory=dict)


@dataclass
class DistributedConfig:
    """DDP settings, used when the run is launched with torchrun (kdvision/engine/distributed.py)."""

    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    timeout_s: PositiveFloat = 1800.0  # a rank silent this long (dead or hung) ends the job
    find_unused_parameters: bool = False  # for methods whose steps leave some parameters unused


@dataclass
class TrainConfig:
    #: 0 epochs would export an untrained student, so it is refused
    epochs: Annotated[int, Range(ge=1, why="to measure weights without training use 'kdvision eval'")] = 1
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    stages: list[StageConfig] = field(default_factory=list)
    eval_every: PositiveInt = 1
    log_every: PositiveInt = 20
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: engine/fast_defaults.py
    channels_last: Union[bool, Literal["auto"]] = "auto"  # auto: engine/fast_defaults.py
    compile_teacher: bool = False
    device: Device = "auto"  # auto | cpu | cuda | cuda:N | mps
    grad_clip: Optional[PositiveFloat] = None  # clip the gradients' global L2 norm (null: no clipping)
    grad_clip_value: Optional[PositiveFloat] = None  # clip every gradient element to [-v, v] (clip_grad_value_)
    max_steps_per_epoch: Optional[PositiveInt] = None
    deterministic: bool = False
    tensorboard: bool = True
    pictures_every: NonNegativeInt = 0  # epochs between task pictures (0: only at the end)
    checkpoint_every_steps: Optional[PositiveInt] = None  # also write last.pt every N steps inside an epoch
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


@dataclass
class TeacherConfig:
    """A frozen teacher: a model and where its weights come from.

    ``checkpoint`` is a kdvision run directory or checkpoint, a plain state dict or a
    safetensors file. If it does not exist and ``recipe`` names a config (a file relative to the
    config that writes it, or a packaged recipe's name), kdvision first trains that recipe into
    the checkpoint's path (or ``<run>/teachers/<name>``) and uses the result. ``overrides`` are
    ``KEY=VALUE`` items applied to the recipe; the command line's :data:`TEACHER_SECTIONS`
    overrides are appended to them (:func:`pass_overrides_to_teachers`).
    """

    model: dict
    checkpoint: Optional[str] = None
    recipe: Optional[str] = None
    overrides: list[str] = field(default_factory=list)
    domain: Optional[str] = None  # the data domain (e.g. a weather type) this teacher serves
    name: Optional[str] = None


@dataclass
class TeacherCacheConfig:
    """The augmentation-aware teacher-output cache (the ``kdvision.cache`` package)."""

    views: PositiveInt = 8  # augmented views recorded per training sample
    topk: Optional[PositiveInt] = None  # keep only the k largest logits per view (null: all)
    dtype: Literal["fp16", "bf16", "fp32"] = "fp16"  # how the logits are stored
    path: Optional[str] = None  # default: <run>/teacher_cache.safetensors
    rebuild: bool = False  # rebuild a stale cache instead of refusing it
    seed: Seed = 0  # seeds the recorded augmentations
    batch_size: BatchSize = 256  # teacher batch while building


@dataclass
class LoaderConfig:
    """The ``data`` keys the trainer reads itself; the rest go to the data set's builder,
    which checks them against its own signature (``call_with_config``)."""

    batch_size: BatchSize = 64
    eval_batch_size: Optional[BatchSize] = None  # default: 2 * batch_size
    workers: Workers = 0


@dataclass
class Config:
    data: dict
    student: dict
    task: str = "classification"
    seed: Seed = 0
    teacher: Optional[TeacherConfig] = None
    teachers: list[TeacherConfig] = field(default_factory=list)
    method: dict = field(default_factory=lambda: {"name": "student"})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: dict = field(default_factory=dict)
    teacher_cache: Optional[TeacherCacheConfig] = None  # replay recorded teacher outputs (logit methods)
    source: str = ""  # the file the config came from (set by load_config, not by users)

    def all_teachers(self) -> list[TeacherConfig]:
        return ([self.teacher] if self.teacher else []) + list(self.teachers)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d


# --------------------------------------------------------------------------- loading
def load_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    if path.resolve() in _chain:
        names = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise UserError(f"{path}: 'base' makes a cycle: {names}")
    data = read_yaml_mapping(path)
    bases = base_paths(data.pop("base"), path) if "base" in data else []
    merged: dict = {}
    for b in bases:
        base_file = base_path(path, b)
        base_data = load_yaml(base_file, (*_chain, path.resolve()))
        merged = deep_merge(merged, anchor_teacher_recipes(base_data, base_file.parent))
    return deep_merge(merged, data)


def base_path(config: Path, base: str) -> Path:
    """A ``base:`` entry: a file relative to ``config``'s folder, else a packaged recipe's name."""
    from kdvision.recipe_library import resolve_config

    return resolve_config(str(base), config.parent / str(base), where=f"{config}: base file")


def anchor_teacher_recipes(data: dict, folder: Path) -> dict:
    """Make the relative ``teacher.recipe`` paths of a base file absolute, relative to that file's
    folder, so that a config inheriting them (from elsewhere) still finds them."""
    teachers = [data.get("teacher")] + (data.get("teachers") if isinstance(data.get("teachers"), list) else [])
    for t in teachers:
        if isinstance(t, dict) and isinstance(t.get("recipe"), str) and not Path(t["recipe"]).is_absolute():
            t["recipe"] = os.path.abspath(folder / t["recipe"])
    return data


def deep_merge(base: dict, over: dict, _key: str = "") -> dict:
    """Merge ``over`` into ``base``; a section whose ``name`` changes (another method, model or
    data set) is replaced whole, since its options belong to the old name."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{_key}.{k}" if _key else k
        same_kind = not (isinstance(v, dict) and isinstance(out.get(k), dict) and "name" in v
                         and "name" in out[k] and v["name"] != out[k]["name"] and names_a_kind(key))
        if isinstance(v, dict) and isinstance(out.get(k), dict) and same_kind:
            out[k] = deep_merge(out[k], v, key)
        else:
            out[k] = copy.deepcopy(v)
    return out


def names_a_kind(section: str) -> bool:
    """Whether a section's ``name`` picks what it builds (method, model, data set, optimizer...);
    a teacher's ``name`` is only its label."""
    return section not in ("teacher",)


def apply_overrides(data: dict, overrides: list[str], source: str = "command line") -> dict:
    """Apply ``KEY=VALUE`` overrides. One that changes a section's ``name`` replaces the section
    (as under ``base:``); those apply first, so ``method.name=fitnet method.weight=100`` works in
    either order."""
    data = copy.deepcopy(data)
    parsed = [_parse_override(item, source) for item in overrides]
    renames = [len(p) > 1 and p[-1] == "name" and names_a_kind(".".join(p[:-1])) for _, p, _ in parsed]
    order = [i for i in range(len(parsed)) if renames[i]] + [i for i in range(len(parsed)) if not renames[i]]
    for i in order:
        item, parts, value = parsed[i]
        node = data
        for depth, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise UserError(f"override '{item}': '{'.'.join(parts[:depth + 1])}' is not a mapping")
            node = nxt
        if renames[i] and node.get("name", value) != value:
            node.clear()
        node[parts[-1]] = value
    return data


def _parse_override(item: str, source: str) -> tuple[str, list[str], Any]:
    if "=" not in item:
        raise UserError(f"override '{item}' ({source}) must look like KEY=VALUE, e.g. train.epochs=2")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return item, key.split("."), value


#: the sections whose command-line overrides also reach a teacher trained from its ``recipe``
#: (``kdvision train`` and ``bench accuracy`` alike); student, method, teacher and seed stay
#: the student's (a teacher keeps its recipe's seed, so students of every seed share it)
TEACHER_SECTIONS = ("train", "data")


def teacher_overrides(overrides: list[str]) -> list[str]:
    """The command-line overrides that a teacher trained from its recipe receives."""
    return [o for o in overrides if o.split("=", 1)[0].split(".")[0] in TEACHER_SECTIONS]


def pass_overrides_to_teachers(data: dict, overrides: list[str]) -> dict:
    """Append :func:`teacher_overrides` to each recipe teacher's own ``overrides`` (they come
    last, so the command line wins over the recipe's ``teacher.overrides``)."""
    passed = teacher_overrides(overrides)
    teachers = [data.get("teacher")] + (data.get("teachers") if isinstance(data.get("teachers"), list) else [])
    for t in teachers:
        if passed and isinstance(t, dict) and t.get("recipe"):
            own = t.get("overrides") or []
            if isinstance(own, list):  # anything else is reported by validation
                t["overrides"] = own + passed
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """A config file, or a packaged recipe by name (``digits/kd``), with overrides applied; the
    overrides of :data:`TEACHER_SECTIONS` also go to every teacher trained from a recipe."""
    from kdvision.recipe_library import resolve_config

    path = resolve_config(path)
    data = pass_overrides_to_teachers(apply_overrides(load_yaml(path), overrides or []), overrides or [])
    return config_from_dict(data, str(path))


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    data = dict(data)
    data.pop("source", None)
    cfg = from_dict(Config, data, prefix="", source=source)
    cfg.source = source
    if cfg.train.stages:
        cfg.train.epochs = sum(s.epochs for s in cfg.train.stages)
        if cfg.train.epochs < 1:  # a run of no epochs would export an untrained student
            raise UserError(f"{source}: 'train.stages' add up to 0 epochs; at least one stage needs epochs >= 1")
    loader_keys = {f.name for f in dataclasses.fields(LoaderConfig)}
    from_dict(LoaderConfig, {k: v for k, v in cfg.data.items() if k in loader_keys}, "data", source)
    sections = [("data", cfg.data), ("student", cfg.student), ("method", cfg.method)]
    if cfg.teacher:
        sections.append(("teacher.model", cfg.teacher.model))
    sections += [(f"teachers[{i}].model", t.model) for i, t in enumerate(cfg.teachers)]
    for key, section in sections:
        if "name" not in section:
            raise UserError(f"{source}: '{key}.name' is missing")
        coerce(section["name"], str, f"{key}.name", source)
    return cfg


# --------------------------------------------------------------------------- validation
def from_dict(cls, data: Any, prefix: str, source: str):
    """Build dataclass ``cls`` from a mapping, naming the key and the file on any error."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: '{prefix or 'config'}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        key = _join(prefix, unknown[0])
        known = ", ".join(sorted(n for n in names if n != "source"))
        raise UserError(f"{source}: unknown key '{key}' (known here: {known})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = _join(prefix, f.name)
        if f.name in data:
            kwargs[f.name] = coerce(data[f.name], hints[f.name], key, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{source}: required key '{key}' is missing")
    return cls(**kwargs)


def coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check ``value`` against a type annotation; ints are accepted where floats are expected.

    ``Literal[...]`` lists the allowed choices and ``Annotated[T, Range(...)]`` adds a range
    (kdvision/config_checks.py): the one mechanism for every constraint of the schema.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return apply_constraints(coerce(value, args[0], key, source), annotation.__metadata__, key, source)
    if origin is typing.Literal:
        return check_choice(value, args, key, source)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key, source)
            except UserError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise UserError(errors[0])
        lead = f"{source}: '{key}' "  # several alternatives: "must be true or false, ...; or must be one of auto"
        raise UserError(lead + "; or ".join(e[len(lead):] if e.startswith(lead) else e for e in errors))
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, key, source)
    if origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise UserError(f"{source}: '{key}' must be a list, got {_show(value)}")
        if args:
            return [coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
        return value
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise UserError(f"{source}: '{key}' must be a mapping, got {_show(value)}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{source}: '{key}' must be a number, got {_show(value)}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{source}: '{key}' must be an integer, got {_show(value)}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise UserError(f"{source}: '{key}' must be true or false, got {_show(value)}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise UserError(f"{source}: '{key}' must be a string, got {_show(value)}")
        return value
    return value


def call_with_config(fn, options: dict, prefix: str, source: str, **fixed):
    """Call ``fn(**fixed, **options)`` after checking option names and types against its signature."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = dict(fixed)
    for k, v in options.items():
        key = _join(prefix, k)
        if k not in sig.parameters or sig.parameters[k].kind is inspect.Parameter.VAR_KEYWORD:
            if accepts_any:
                kwargs[k] = v
                continue
            known = ", ".join(p for p in sig.parameters if p not in fixed and sig.parameters[p].kind
                              not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL))
            raise UserError(f"{source}: unknown key '{key}' (known here: {known})")
        kwargs[k] = coerce(v, hints.get(k, Any), key, source)
    return fn(**kwargs)


def params_from_dict(cls, options: dict, prefix: str, source: str):
    """Validate a method's ``Params`` dataclass from the ``method`` section (minus its name and its
    loss-term ``weights``, which ``kdvision.engine.build.method_params`` checks against the method's terms)."""
    return from_dict(cls, {k: v for k, v in options.items() if k not in ("name", "weights")}, prefix, source)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
