"""Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020).

    L = w_ce * CE + w_crd * (L_NCE(student anchor) + L_NCE(teacher anchor))     (Eq. 18-19)

The pooled features the classifiers read go through linear embeddings (to 128-d, L2-normalised;
the teacher's embedding trains too, the teacher does not), and each sample is contrasted against
N negatives held in a memory bank of every training sample's embedding (``kdvision.losses.crd``).
The method owns its bank (buffers: checkpointed with it, never exported) and reads each sample's
data-set index from ``batch["index"]``; the trainer knows nothing of it. Defaults of the official
code (HobbitLong/RepDistiller ``train_student.py`` / mdistiller ``engine/cfg.py``): N = 16384,
tau = 0.07, momentum 0.5, weight 0.8, CE 1, negatives drawn from the other classes ("exact"
mode; ``negatives: relax`` draws from all samples).

Under DDP each rank updates its own bank from its own shard (the official code runs on one GPU).
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.config_checks import PositiveFloat, PositiveInt, Range
from kdvision.errors import UserError
from kdvision.losses.crd import ContrastMemory, nce_loss
from kdvision.methods.base import Method
from kdvision.methods.pooled_feature import pooled_feature_taps
from kdvision.registry import METHODS

NegativeMode = Literal["exact", "relax"]


class Embed(nn.Module):
    """Linear projection to the contrast space, L2-normalised (RepDistiller ``crd/criterion.py`` Embed)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return F.normalize(self.linear(x.flatten(1).float()), dim=1)


class NegativeSampler(nn.Module):
    """Draws N negatives per sample: uniformly from the other classes ("exact") or from all ("relax")."""

    def __init__(self, labels: torch.Tensor, mode: str):
        super().__init__()
        self.mode = mode
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("start", torch.cumsum(counts, 0) - counts, persistent=False)
        self.register_buffer("count", counts, persistent=False)

    def forward(self, index: torch.Tensor, k: int) -> torch.Tensor:
        n = self.labels.numel()
        if self.mode == "relax":
            neg = torch.randint(0, n, (index.numel(), k), device=index.device)
        else:
            cls = self.labels[index]
            size, start = self.count[cls].unsqueeze(1), self.start[cls].unsqueeze(1)
            r = (torch.rand(index.numel(), k, device=index.device) * (n - size)).long()
            neg = self.order[r + size * (r >= start)]  # skip the anchor's own class block
        return torch.cat([index.unsqueeze(1), neg], dim=1)


@METHODS.register("crd")
class CRD(Method):
    """CE + 0.8 * symmetric NCE against a memory bank of 16384 negatives (official defaults)."""

    @dataclass
    class Params:
        student_tap: str = ""  # default: the input of the student's last nn.Linear
        teacher_tap: str = ""
        feat_dim: PositiveInt = 128
        num_negatives: PositiveInt = 16384
        temperature: PositiveFloat = 0.07
        momentum: Annotated[float, Range(ge=0, lt=1)] = 0.5
        negatives: NegativeMode = "exact"

    teachers_required = "one"
    default_weights = {"ce": 1.0, "crd": 0.8}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_taps, self.teacher_taps = pooled_feature_taps(student, self.teacher, params)
        self.sampler: NegativeSampler | None = None  # built in setup from the data's labels

    @torch.no_grad()
    def setup(self, batch, info=None):
        labels = (info or {}).get("labels")
        if labels is None:
            raise UserError("method crd: the training set does not list its labels ('labels' or 'samples'), "
                            "which CRD's memory bank needs (setup's info['labels'])")
        labels = torch.as_tensor(labels, dtype=torch.long)
        self.sampler = NegativeSampler(labels, self.params.negatives).to(batch["input"].device)
        self.n_data = labels.numel()
        x = batch["input"]
        was_training = self.student.training
        self.student.eval()  # shapes only: no BN statistics from this pass
        _, (fs,) = self.student_taps.run(self.student, x)
        self.student.train(was_training)
        _, (ft,) = self.teacher_taps.run(self.run_teacher, x)
        dim = self.params.feat_dim
        device = x.device
        self.embed_student = Embed(fs.flatten(1).shape[1], dim).to(device)
        self.embed_teacher = Embed(ft.flatten(1).shape[1], dim).to(device)
        self.memory = ContrastMemory(dim, self.n_data, self.params.temperature, self.params.momentum).to(device)

    def compute(self, batch):
        out, (fs,) = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("crd"):
            _, (ft,) = self.teacher_taps.run(self.run_teacher, batch["input"])
            index = batch.get("index")
            if index is None:
                raise UserError("method crd: the training batches carry no 'index' (the sample's position in the "
                                "data set), which the memory bank needs")
            index = torch.as_tensor(index, device=fs.device)
            es, et = self.embed_student(fs), self.embed_teacher(ft)
            contrast = self.sampler(index, self.params.num_negatives)
            out_s, out_t = self.memory.scores(es, et, contrast)
            losses["crd"] = nce_loss(out_s, self.n_data) + nce_loss(out_t, self.n_data)
            self.memory.update(es, et, index)
        return out, losses
