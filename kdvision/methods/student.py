"""The student trained alone on the task's own loss: the baseline every method is compared to."""
from __future__ import annotations

from kdvision.methods.base import Method
from kdvision.registry import METHODS


@METHODS.register("student")
class StudentOnly(Method):
    """No teacher: the task loss only (CE for classification). Also used to train teachers."""

    def compute(self, batch):
        out = self.student(batch["input"])
        return out, self.task_loss(out, batch)
