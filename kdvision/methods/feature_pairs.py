"""Shared plumbing for feature-based methods: which student/teacher layers are paired."""
from __future__ import annotations

from torch import nn

from kdvision.errors import UserError


def resolve_layer_pairs(pairs: list, student: nn.Module, teacher: nn.Module, default_attr: str,
                        key: str = "method.layers") -> list[tuple[str, str]]:
    """[(student_path, teacher_path), ...] from the config, or the models' documented defaults.

    ``default_attr`` is "stages" (all stage outputs, paired in order) or "feature_tap" (the
    last conv stage before pooling).
    """
    if pairs:
        out = []
        for i, pair in enumerate(pairs):
            if isinstance(pair, str):
                pair = [pair, pair]
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise UserError(f"{key}[{i}] must be [student_module, teacher_module], got {pair!r}")
            out.append((pair[0], pair[1]))
        return out
    s, t = getattr(student, default_attr, None), getattr(teacher, default_attr, None)
    if s is None or t is None:
        who = "student" if s is None else "teacher"
        model = student if s is None else teacher
        raise UserError(f"{key}: the {who} ({type(model).__name__}) documents no '{default_attr}'; "
                        f"name the layers, e.g. {key}=[[layer3, layer3]]")
    if isinstance(s, str):
        return [(s, t)]
    if len(s) != len(t):
        raise UserError(f"{key}: student has {len(s)} stages ({', '.join(s)}) but teacher has {len(t)} "
                        f"({', '.join(t)}); name the pairs explicitly")
    return list(zip(s, t))


def feature_tap(model: nn.Module, given: str, owner: str, example: str = "") -> str:
    """The module path to tap: ``given`` (``method.<owner>_tap``) or the model's ``feature_tap``."""
    path = given or getattr(model, "feature_tap", "")
    if not path:
        hint = f", e.g. method.{owner}_tap={example}" if example else ""
        raise UserError(f"method.{owner}_tap: the {owner} ({type(model).__name__}) documents no 'feature_tap'; "
                        f"name the module to tap{hint}")
    return path
