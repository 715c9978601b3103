"""Tasks: what differs between classification, segmentation and restoration."""
from kdvision.registry import TASKS, import_submodules
from kdvision.outputs import main_output
from kdvision.tasks.base import Task

import_submodules(__name__, __path__)

__all__ = ["Task", "TASKS", "main_output"]
