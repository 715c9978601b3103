"""What differs by task: datasets, the task's own supervised loss, metrics, pictures.

The trainer is the same for every task; it asks the task for these and never branches on
the task's name.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from kdvision.config import Config, call_with_config
from kdvision.errors import UserError
from kdvision.outputs import main_output  # noqa: F401  (re-exported: kdvision.tasks.base.main_output)
import kdvision.data  # noqa: F401  (registers the data sets)
import kdvision.models  # noqa: F401  (registers the models)
from kdvision.registry import DATASETS

#: data options the trainer reads itself; the rest go to the dataset builder.
LOADER_KEYS = ("name", "batch_size", "eval_batch_size", "workers", "device_resident")


class Task:
    """Base class. Subclasses set ``metric`` (the key that picks the best checkpoint)."""

    metric = "acc"
    higher_is_better = True
    metric_unit = ""  # the unit ``metric`` is reported in (benchmark tables): "%", "dB"; "" for none
    secondary_metric: str | None = None  # a metric reported beside it where evaluate() gives it
    loss_terms: tuple[str, ...] = ()  # the names ``loss`` returns (keys of ``method.weights``)
    #: what a batch's "target" must be for this task: (dimensions, floating point, in words);
    #: None: not checked
    target_kind: tuple[int, bool, str] | None = None

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._datasets: dict[str, Dataset] | None = None

    # -- data ----------------------------------------------------------------------
    def datasets(self) -> dict[str, Dataset]:
        """{"train", "val", "test"} datasets from ``cfg.data``; "val" may be the test set."""
        if self._datasets is None:
            builder = DATASETS.get(self.cfg.data["name"], where=f"{self.cfg.source}: data.name")
            options = {k: v for k, v in self.cfg.data.items() if k not in LOADER_KEYS}
            self._datasets = call_with_config(builder, options, "data", self.cfg.source,
                                              seed=self.cfg.seed)
        return self._datasets

    def dataset_info(self) -> dict[str, Any]:
        """Facts models need from the data, e.g. {"num_classes": 100}."""
        train = self.datasets()["train"]
        return {k: getattr(train, k) for k in ("num_classes", "domains") if hasattr(train, k)}

    def check_batch(self, batch: dict[str, Any]) -> None:
        """Refuse a batch this task cannot learn from, e.g. segmentation masks under task classification."""
        target = batch.get("target")
        if self.target_kind is None or not isinstance(target, torch.Tensor):
            return
        dims, floating, words = self.target_kind
        if target.dim() != dims or target.is_floating_point() != floating:
            raise UserError(f"{self.cfg.source}: task '{self.cfg.task}' learns from {words}, but data "
                            f"'{self.cfg.data['name']}' gives {str(target.dtype)[6:]} targets of shape "
                            f"{list(target.shape)}; is 'task' right for this data set?")

    def method_info(self) -> dict[str, Any]:
        """The facts a method's ``setup(batch, info)`` may read: ``dataset_info()`` plus
        "num_samples" (training-set size), "data_name" and, when the training set lists them,
        "labels" (every sample's class in index order, a long tensor)."""
        train = self.datasets()["train"]
        info = {**self.dataset_info(), "num_samples": len(train), "data_name": self.cfg.data.get("name")}
        labels = listed_labels(train)
        if labels is not None:
            info["labels"] = labels
        return info

    # -- models --------------------------------------------------------------------
    def create_model(self, spec: dict, where: str, load_pretrained: bool = False, new_head: bool = True) -> nn.Module:
        """The model ``spec`` names, given the data's facts (``kdvision.model_build.build_model``);
        ``load_pretrained`` loads its ``pretrained: PATH`` (training does, rebuilt runs do not)."""
        from kdvision.model_build import build_model

        return build_model(spec, where, self.cfg.source, self.cfg.task, self.dataset_info(),
                           load_pretrained=load_pretrained, new_head=new_head)

    # -- training and evaluation ----------------------------------------------------
    def loss(self, output: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The task's own supervised terms, named and weighted (e.g. {"ce": ...})."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device, autocast) -> dict[str, float]:
        raise NotImplementedError

    def pictures(self, model: nn.Module, batch: dict[str, Any]) -> np.ndarray | None:
        """An HxWx3 uint8 grid that shows what the model does on a batch (None: no pictures)."""
        return None


def listed_labels(dataset) -> torch.Tensor | None:
    """Every sample's class in data-set index order, when the data set lists them ("labels", or
    "samples" of (path, class) pairs); None otherwise."""
    labels = getattr(dataset, "labels", None)
    if labels is None and hasattr(dataset, "samples"):
        labels = [label for _, label in dataset.samples]
    return None if labels is None else torch.as_tensor(labels, dtype=torch.long)
