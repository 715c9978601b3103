"""Knowledge-transfer dehazing: KTDN (Wu et al., "Knowledge Transfer Dehazing Network for
NonHomogeneous Dehazing", CVPRW 2020) and SRKTDN (its super-resolution variant, NTIRE 2021
NonHomogeneous Dehazing Challenge; official code Errno1024/SRKT-ntire2021).

Two stages in one config:
1. the teacher, an autoencoder of clear images, is trained first (the teacher's ``recipe``:
   method ``student`` on data with ``autoencoder: true``, i.e. clear -> clear);
2. the dehazing student is trained on hazy inputs with the task's reconstruction losses plus
   the knowledge-transfer term

       L_KT = || f_S(hazy) - f_T(clear) ||_1

   between the student's bottleneck feature (its ``mid`` DehazeBlock) and the frozen teacher's
   feature of the matching clear image (reference weight 1).

The feature taps default to each model's ``feature_tap`` attribute ("mid" for the kdvision
KTDN models); name others with ``student_tap`` / ``teacher_tap`` (module paths).

``eval_mode_after_epoch: N`` trains the student in eval mode (frozen batch-norm statistics, no
dropout) from epoch N + 1 on, as the official SRKTDN script does with ``train_mode = 100``
(Errno1024/SRKT-ntire2021 src/train.py: ``model.train()`` while the 0-based epoch < 100, else
``model.eval()``). 0 (default): train mode throughout.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from kdvision.config_checks import NonNegativeInt
from kdvision.errors import UserError
from kdvision.losses.restoration import feature_transfer_l1
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import feature_tap
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@dataclass
class KTDNParams:
    student_tap: str = ""  # module path; default: student.feature_tap
    teacher_tap: str = ""  # module path; default: teacher.feature_tap
    eval_mode_after_epoch: NonNegativeInt = 0  # > 0: the student trains in eval mode after this many epochs (official: 100)


@METHODS.register("ktdn")
class KTDN(Method):
    """total = task reconstruction losses (L1, Laplacian, Lab) + weights.kt * L1(f_S(x), f_T(gt))."""

    Params = KTDNParams
    teachers_required = "one"
    default_weights = {"kt": 1.0}  # L1(student feature, teacher feature of the clear image)
    renamed_params = {"kt_weight": "kt"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_path = feature_tap(student, params.student_tap, "student", "mid")
        self.teacher_path = feature_tap(self.teacher, params.teacher_tap, "teacher", "mid")
        self.student_taps = FeatureTaps(student, [self.student_path], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [self.teacher_path], owner="teacher")

    def student_in_eval_mode(self) -> bool:
        n = self.params.eval_mode_after_epoch
        return n > 0 and self.progress >= n

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.student_in_eval_mode():
            self.student.eval()
        return self

    def set_progress(self, progress: float) -> None:
        super().set_progress(progress)
        if self.training and self.student_in_eval_mode():
            self.student.eval()

    @torch.no_grad()
    def setup(self, batch, info=None):
        """Check on a first batch that the two transferred features have one shape."""
        was_training = self.student.training
        self.student.eval()
        _, (s,) = self.student_taps.run(self.student, batch["input"][:1])
        _, (t,) = self.teacher_taps.run(self.run_teacher, batch["target"][:1])
        self.student.train(was_training)
        if s.shape != t.shape:
            raise UserError(f"method ktdn: student tap '{self.student_path}' gives {tuple(s.shape[1:])} but "
                            f"teacher tap '{self.teacher_path}' gives {tuple(t.shape[1:])}; build the teacher "
                            f"with the student's bottleneck width (teacher.model.student_width)")

    def compute(self, batch):
        if not self.active("kt"):
            out = self.student(batch["input"])
            return out, self.task_loss(out, batch)
        out, (f_student,) = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        # the teacher sees the matching CLEAR image
        _, (f_teacher,) = self.teacher_taps.run(self.run_teacher, batch["target"])
        losses["kt"] = feature_transfer_l1(f_student, f_teacher)
        return out, losses


@METHODS.register("srktdn")
class SRKTDN(KTDN):
    """KTDN's objective for the SRKTDN student (the model carries the super-resolution branch):
    total = L1 + 0.3 Laplacian + 0.5 Lab MSE (task) + weights.kt * L1(f_S(x), f_T(gt))."""
