"""From a validated config to the task, the student, the frozen teachers and the method."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from kdvision.config import Config, TeacherConfig, coerce, params_from_dict
from kdvision.engine.weights import STUDENT_FILE, is_hf_folder, load_weights_into
from kdvision.errors import UserError
from kdvision.methods import METHODS, Method
from kdvision.methods.loss_weights import check_renamed, parse_weights
from kdvision.tasks import TASKS, Task


def build_task(cfg: Config) -> Task:
    return TASKS.get(cfg.task, where=f"{cfg.source}: task")(cfg)


def method_class(cfg: Config) -> type[Method]:
    return METHODS.get(cfg.method["name"], where=f"{cfg.source}: method.name")


def check_teacher_count(cfg: Config, cls: type[Method]) -> None:
    n = len(cfg.all_teachers())
    need = cls.teachers_required
    name = cfg.method["name"]
    if need == "none" and n:
        raise UserError(f"{cfg.source}: method '{name}' uses no teacher, but the config lists {n}")
    if need == "one" and n != 1:
        raise UserError(f"{cfg.source}: method '{name}' needs exactly one teacher ('teacher:'), the config lists {n}")
    if need == "many" and n < 1:
        raise UserError(f"{cfg.source}: method '{name}' needs teachers ('teachers:'), the config lists none")


def teacher_name(t: TeacherConfig, index: int) -> str:
    return t.name or t.domain or f"teacher{index}"


def teacher_weights(t: TeacherConfig, index: int, cfg: Config, run_root: Path | None, train_recipe) -> Path:
    """Where teacher ``index`` gets its weights; trains its recipe first when they do not exist yet.

    With ``checkpoint`` set, the recipe (if any) trains into that path when it is missing, so
    several student runs can share one teacher. Without it, the teacher trains into
    ``<run>/teachers/<name>``.
    """
    key = "teacher" if cfg.teacher is t else f"teachers[{index - (1 if cfg.teacher else 0)}]"
    if t.checkpoint:
        path = Path(t.checkpoint).expanduser()
        if path.is_file() or (path / STUDENT_FILE).is_file() or is_hf_folder(path):
            return path
        if not t.recipe:
            raise UserError(f"{cfg.source}: {key}.checkpoint not found: {path}")
        target = path
    elif t.recipe:
        if run_root is None:
            raise UserError(f"{cfg.source}: {key} has a recipe but no checkpoint; train the student first")
        target = run_root / "teachers" / teacher_name(t, index)
    else:
        raise UserError(f"{cfg.source}: {key} needs 'checkpoint' (a weights file or run), 'recipe' (a config) "
                        f"or 'model.pretrained' (a weights file for its classes)")
    recipe = teacher_recipe_path(cfg.source, t.recipe, f"{cfg.source}: {key}.recipe")
    if (target / STUDENT_FILE).is_file():
        return target
    train_recipe(recipe, t.overrides, target)
    return target


def teacher_recipe_path(config: str | Path, recipe: str, where: str) -> Path:
    """A teacher's ``recipe``: a file relative to the config's folder, else a packaged recipe's name."""
    from kdvision.recipe_library import resolve_config

    path = Path(recipe)
    return resolve_config(recipe, path if path.is_absolute() else Path(config).parent / path, where=where)


def build_teachers(cfg: Config, task: Task, run_root: Path | None, train_recipe) -> list[nn.Module]:
    """The frozen teachers with their weights: ``checkpoint`` / ``recipe``, or else the model's own
    ``pretrained`` file, which must then fit the data's classes as it is."""
    teachers = []
    for i, t in enumerate(cfg.all_teachers()):
        where = "teacher.model" if cfg.teacher is t else f"teachers[{i}].model"
        if not t.checkpoint and not t.recipe and t.model.get("pretrained"):
            teachers.append(task.create_model(t.model, where, load_pretrained=True, new_head=False))
            continue
        model = task.create_model(t.model, where)
        path = teacher_weights(t, i, cfg, run_root, train_recipe)
        load_weights_into(model, path, f"{where} ({t.model['name']})")
        teachers.append(model)
    return teachers


def method_params(cfg: Config, cls: type[Method]):
    """(Params, parsed method.weights) from the ``method`` section; an old weight key
    (e.g. ``kd_weight``) is one line naming its place in ``method.weights``."""
    options = {k: v for k, v in cfg.method.items() if k != "weights"}
    check_renamed(options, cls.renamed_params, "method", cfg.source)
    params = params_from_dict(cls.Params, options, "method", cfg.source)
    terms = cls.loss_terms(TASKS.get(cfg.task, where=f"{cfg.source}: task"))
    return params, parse_weights(cfg.method.get("weights"), terms, "method.weights", cfg.source)


def build_method(cfg: Config, task: Task, teachers: list[nn.Module]) -> Method:
    cls = method_class(cfg)
    check_teacher_count(cfg, cls)
    params, weights = method_params(cfg, cls)
    student = task.create_model(cfg.student, "student", load_pretrained=True)
    method = cls.from_config(cfg, student, teachers, task, params)
    method.configure_weights(weights)
    return method


def stage_overrides(cfg: Config, cls: type[Method], index: int) -> dict:
    """``train.stages[index].method`` with its ``weights`` parsed (for ``Method.set_params``)."""
    stage = cfg.train.stages[index]
    key = f"train.stages[{index}].method"
    check_renamed(stage.method, cls.renamed_params, key, cfg.source)
    out = dict(stage.method)
    if "weights" in out:
        terms = cls.loss_terms(TASKS.get(cfg.task, where=f"{cfg.source}: task"))
        out["weights"] = parse_weights(out["weights"], terms, f"{key}.weights", cfg.source)
    return out


def validate_method(cfg: Config, cls: type[Method], dataset_info: dict | None = None) -> None:
    """Teacher count, method parameters and stage overrides: checked before anything trains;
    with the data's facts (``Task.dataset_info()``), also the method's own ``validate``."""
    check_teacher_count(cfg, cls)
    method_params(cfg, cls)
    validate_stages(cfg, cls)
    if dataset_info is not None:
        cls.validate(cfg, dataset_info)


def validate_stages(cfg: Config, cls: type[Method]) -> None:
    """Each stage may only change fields of the method's Params and its ``weights``, to values they allow."""
    import dataclasses
    import typing

    known = {f.name for f in dataclasses.fields(cls.Params)} | {"weights"}
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    for i, stage in enumerate(cfg.train.stages):
        stage_overrides(cfg, cls, i)
        for k, v in stage.method.items():
            if k not in known:
                raise UserError(f"{cfg.source}: unknown key 'train.stages[{i}].method.{k}' "
                                f"(method '{cfg.method['name']}' has: {', '.join(sorted(known)) or 'no parameters'})")
            if k in hints:  # 'weights' was checked by stage_overrides
                stage.method[k] = coerce(v, hints[k], f"train.stages[{i}].method.{k}", cfg.source)
