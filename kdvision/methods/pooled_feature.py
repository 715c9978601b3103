"""The tap of a classifier's pooled feature (the input of its last linear layer), for the
embedding methods (RKD, PKT, CRD), which compare the vectors a classifier reads."""
from __future__ import annotations

from torch import nn

from kdvision.errors import UserError
from kdvision.taps import FeatureTaps


def pooled_feature_tap(model: nn.Module, given: str, owner: str) -> str:
    """``given`` (``method.<owner>_tap``) or "<last nn.Linear>:input" of the model."""
    if given:
        return given
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise UserError(f"method.{owner}_tap: the {owner} ({type(model).__name__}) has no nn.Linear classifier; "
                        f"name the module whose input (path:input) or output is the embedding")
    return f"{linear[-1]}:input"


def pooled_feature_taps(student: nn.Module, teacher: nn.Module, params) -> tuple[FeatureTaps, FeatureTaps]:
    """(student taps, teacher taps) of the pooled features, from ``params.student_tap`` / ``teacher_tap``."""
    return (FeatureTaps(student, [pooled_feature_tap(student, params.student_tap, "student")], "student"),
            FeatureTaps(teacher, [pooled_feature_tap(teacher, params.teacher_tap, "teacher")], "teacher"))
