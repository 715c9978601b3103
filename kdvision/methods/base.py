"""The method interface every distillation method implements (DESIGN.md, "the flow of one step").

A method owns the student, its frozen teachers and any connectors (projection heads). A
subclass implements ``compute(batch) -> (student_output, {term: unweighted loss})``; the base
``forward(batch)`` multiplies each term by its weight (``method.weights: {term: value}``, a number
or a schedule of the training progress, ``kdvision.methods.loss_weights``; unset terms take the
method's ``default_weights``, else 1) and returns ``(student_output, {term: weighted loss})``,
keeping the unweighted values in ``raw_terms``. The trainer sums the weighted dict,
backpropagates, logs every term weighted and unweighted, and hands the method its progress
(``set_progress``) before each step. The trainer knows nothing of any method.

A method knows no task and no data set: it gets the task's supervised loss as a ``TaskLoss``
(anything with ``loss(output, batch) -> {term: tensor}``, e.g. a ``kdvision.tasks.Task``) or
as a plain callable ``(output, batch) -> {term: tensor} | tensor``, and the facts about the
training data (``num_classes``, ``domains``, ``num_samples``, ``labels``, ``data_name``) as the
``info`` of ``setup(batch, info)``. So a method runs in any training loop::

    method = METHODS.get("kd")(student, teacher, task_loss=lambda out, b: {"ce": F.cross_entropy(out, b["target"])})
    method.setup(first_batch)
    out, losses = method(batch)
    sum(losses.values()).backward()
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.methods.loss_weights import Weight, parse_weight
from kdvision.outputs import main_output


UNIT_WEIGHT = Weight(1.0)

#: the term a task loss returning one tensor (not a dict) is logged and weighted as
TASK_TERM = "task"


@runtime_checkable
class TaskLoss(Protocol):
    """The task's own supervised loss, as a method sees it (``kdvision.tasks.Task`` is one)."""

    def loss(self, output: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """{term: loss} of the student's output on a batch, e.g. {"ce": ...}."""
        ...


def as_task_loss(task_loss: TaskLoss | Callable | None) -> Callable[[Any, dict], dict[str, torch.Tensor]]:
    """A function ``(output, batch) -> {term: tensor}`` from a ``TaskLoss``, a callable returning a
    dict or one tensor (named ``"task"``), or None (a method that calls it then fails clearly)."""
    if task_loss is None:
        def missing(output, batch):
            raise TypeError("this method adds the task's own loss: build it with task_loss= (a callable "
                            "(output, batch) -> {term: tensor} or an object with .loss(output, batch))")
        return missing
    fn = task_loss.loss if isinstance(task_loss, TaskLoss) else task_loss
    if not callable(fn):
        raise TypeError(f"task_loss must be callable or have .loss(output, batch); got {type(task_loss).__name__}")

    def loss(output, batch):
        terms = fn(output, batch)
        return dict(terms) if isinstance(terms, Mapping) else {TASK_TERM: terms}

    return loss


@dataclass
class NoParams:
    pass


class Method(nn.Module):
    """Base class: student + frozen teachers + connectors.

    Subclasses set ``Params`` (a dataclass of the method's hyper-parameters, validated from
    the ``method`` config section), ``teachers_required`` ("none", "one" or "many") and
    implement ``compute`` (unweighted terms; ``default_weights`` names the method's own terms
    and their default weights, ``renamed_params`` its old weight keys). Connectors whose shapes
    depend on the data are built in ``setup`` from a first batch, before the optimiser is made.
    """

    Params = NoParams
    teachers_required = "none"
    #: True when the method only needs the teacher's final output (it can then replay cached
    #: teacher outputs instead of running the teacher).
    uses_teacher_logits_only = False
    #: the method's own loss terms and their default weights (paper / official code); the
    #: task's terms (``Task.loss_terms``, e.g. ce, ce_aux) default to 1 unless listed here
    default_weights: dict[str, Any] = {}
    #: whether ``compute`` returns the task's own terms (``task.loss``)
    uses_task_loss = True
    #: old config keys of weights -> their term in ``method.weights`` (one line names the new key)
    renamed_params: dict[str, str] = {}

    def __init__(self, student: nn.Module, teachers: nn.Module | Sequence[nn.Module] = (),
                 task_loss: TaskLoss | Callable | None = None, params=None):
        """``teachers``: one module or a list (frozen here); ``task_loss``: see ``as_task_loss``;
        ``params``: a ``Params`` instance (default: ``Params()``, the paper's defaults)."""
        super().__init__()
        self.student = student
        self.teachers = nn.ModuleList([teachers] if isinstance(teachers, nn.Module) else list(teachers))
        for t in self.teachers:
            t.requires_grad_(False)
            t.eval()
        self.task_loss = as_task_loss(task_loss)
        self.params = self.Params() if params is None else params
        self.progress = 0.0
        self.configured_weights: dict[str, Weight] = {}  # method.weights of the config
        self.loss_weights: dict[str, Weight] = {}  # those in force (the current stage's on top)
        self.weight_defaults = {k: parse_weight(v, f"default weight of {k}") for k, v in self.default_weights.items()}
        self.raw_terms: dict[str, torch.Tensor] = {}

    @classmethod
    def loss_terms(cls, task_cls=None) -> dict[str, Any]:
        """Every term this method may return, with its default weight (the keys of method.weights)."""
        terms = {}
        if cls.uses_task_loss and task_cls is not None:
            terms.update({t: 1.0 for t in getattr(task_cls, "loss_terms", ())})
        terms.update(cls.default_weights)
        return terms

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg, student: nn.Module, teachers: list[nn.Module], task_loss, params) -> "Method":
        """The method of a run config (``engine/build.py``); a method that needs more of the
        config than its ``method`` section (e.g. tkl: each teacher's ``domain``) overrides this."""
        return cls(student, teachers, task_loss, params)

    @classmethod
    def validate(cls, cfg, dataset_info: dict[str, Any]) -> None:
        """Check the config against the data before anything trains (no teacher is built yet).

        ``dataset_info`` is the task's facts about the training data (e.g. "num_classes",
        "domains"). Raise ``UserError`` naming the config key. Default: nothing to check.
        """

    def setup(self, batch: dict[str, Any], info: Mapping[str, Any] | None = None) -> None:
        """Build shape-dependent connectors from a first batch (default: nothing to build).

        ``info``: facts about the training data (``Task.method_info()``: "num_classes",
        "domains", "num_samples", "labels", "data_name"); a method that needs one names it in
        its error when it is missing."""

    def set_params(self, overrides: dict) -> None:
        """Stage switch: replace some hyper-parameters from the stage config; the stage's
        ``weights`` (already parsed to ``Weight``) apply on top of the config's ``method.weights``."""
        overrides = dict(overrides)
        stage_weights = overrides.pop("weights", None) or {}
        self.loss_weights = {**self.configured_weights, **stage_weights}
        if overrides:
            self.params = replace(self.params, **overrides)

    def configure_weights(self, weights: dict[str, Any]) -> None:
        """The config's ``method.weights`` ({term: Weight, number or schedule mapping}); the
        current weights become these."""
        weights = {k: w if isinstance(w, Weight) else parse_weight(w, f"method.weights.{k}")
                   for k, w in weights.items()}
        self.configured_weights = dict(weights)
        self.loss_weights = dict(weights)

    # -- loss weights ------------------------------------------------------------
    def set_progress(self, progress: float) -> None:
        """Training progress in epochs (epoch + step / steps_per_epoch), set by the trainer before each step."""
        self.progress = float(progress)

    def weight(self, term: str) -> float:
        """The weight of ``term`` at the current progress."""
        w = self.loss_weights.get(term) or self.weight_defaults.get(term) or UNIT_WEIGHT
        return w.at(self.progress)

    def active(self, term: str) -> bool:
        """False when ``term``'s weight is 0 now: the method may then skip computing it."""
        return self.weight(term) != 0.0

    def current_weights(self, terms) -> dict[str, float]:
        return {t: self.weight(t) for t in terms}

    def train(self, mode: bool = True):
        super().train(mode)
        for t in self.teachers:
            t.eval()
        return self

    # -- the step ----------------------------------------------------------------
    def compute(self, batch: dict[str, Any]) -> tuple[Any, dict[str, torch.Tensor]]:
        """(student output, {term: unweighted loss}); terms whose weight is 0 may be left out."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> tuple[Any, dict[str, torch.Tensor]]:
        """(student output, {term: weight * loss}) for the terms whose weight is not 0 now."""
        out, raw = self.compute(batch)
        weighted = {}
        for name, value in raw.items():
            w = self.weight(name)
            if w != 0.0:
                weighted[name] = w * value
        self.raw_terms = {k: v.detach() for k, v in raw.items()}
        if not weighted:
            raise UserError(f"method.weights: every loss term ({', '.join(raw) or 'none'}) has weight 0 at "
                            f"epoch {self.progress:.3g}; nothing would train")
        return out, weighted

    @property
    def teacher(self) -> nn.Module:
        return self.teachers[0]

    @torch.no_grad()
    def run_teacher(self, x: torch.Tensor, index: int = 0):
        """The frozen teacher's output: no autograd, eval mode."""
        return self.teachers[index](x)

    def teacher_logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """The teacher's main output: replayed from the teacher-output cache when the batch
        carries ``teacher_logits``, else a frozen forward of teacher 0."""
        cached = batch.get("teacher_logits")
        if cached is not None:
            return cached
        return main_output(self.run_teacher(batch["input"]))

    # -- what the trainer needs ----------------------------------------------------
    def param_groups(self) -> list[dict]:
        """Parameter groups for the main optimiser: everything trainable except the teachers.

        A group may carry ``lr_mult``; the schedule scales it. A student with a ``backbone``
        and a ``head_lr_mult`` (the segmentation networks) gets its backbone at 1x and
        everything else (heads, connectors) at ``head_lr_mult`` (PSPNet/APD recipes: 10x).
        """
        teacher_ids = {id(p) for t in self.teachers for p in t.parameters()}
        extra_ids = {id(p) for opt in self.extra_optimizers() for g in opt.param_groups for p in g["params"]}
        params = [p for p in self.parameters()
                  if p.requires_grad and id(p) not in teacher_ids and id(p) not in extra_ids]
        backbone = getattr(self.student, "backbone", None)
        mult = float(getattr(self.student, "head_lr_mult", 1.0))
        if backbone is None or mult == 1.0:
            return [{"params": params}]
        ids = {id(p) for p in backbone.parameters()}
        return [{"params": [p for p in params if id(p) in ids], "lr_mult": 1.0},
                {"params": [p for p in params if id(p) not in ids], "lr_mult": mult}]

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers the method owns for parts trained by their own rule (e.g. APD's teacher
        projector). The trainer steps, zeroes and checkpoints them alongside the main one."""
        return []

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the teachers (student, connectors, self-teachers): what a checkpoint holds."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teachers.")}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("teachers.")]
        if missing or unexpected:
            raise RuntimeError(f"checkpoint does not fit the method: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
