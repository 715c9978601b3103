"""Two-stage knowledge learning with multi-contrastive regularisation (Chen et al., CVPR 2022,
"Learning Multiple Adverse Weather Removal via Two-stage Knowledge Learning and
Multi-contrastive Regularization: Toward a Unified Model").

K frozen teachers, one per weather type (teacher k serves ``teacher_domains[k]``), and one
student for all. Each teacher sees only the samples of its weather; the student sees them all.

Stage 1, Knowledge Collation (``collation: true``):
    L = L1(S(x), T_k(x)) + L_PFE + 0.05 L_PFV + 0.1 SCR
Stage 2, Knowledge Examination (``collation: false``):
    L = L1(S(x), y) + 0.2 HCR

CKT (collaborative knowledge transfer) per tap q: a progressive feature projector
PFP = conv3x3(c -> c/2) - ReLU - conv3x3(c/2 -> c/2) per teacher and one shared by the student,
an inverse projector IPFP_k = conv3x3(c/2 -> c) - ReLU - conv3x3(c -> c) per teacher (no bias,
Kaiming init, as in the official code); L_PFE and L_PFV in ``kdvision.losses.collaborative``.
The projected width is half the student's channels at the tap (teachers may be wider).

MCR (multi-contrastive regularisation, ``kdvision.losses.contrastive``), VGG-19 relu1_1..relu5_1:
- soft CR: positive = the teacher's restoration (paper; ``scr_positive: target`` = the official
  code's ground truth); negatives = inputs of the same weather in the batch, averaged
  (``scr_negatives: own`` = the official code's single negative, the sample's own input);
- hard CR: positive = ground truth; negatives = every input of the batch (all weather types),
  averaged as in the official code (``hcr_negatives: sum`` = the plain sum of the formula).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.losses.collaborative import pfe_loss, pfv_loss
from kdvision.losses.contrastive import VGG_LAYER_WEIGHTS, contrastive_regularization
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.models.restoration.vgg19_features import VGG19Features
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps
from kdvision.outputs import main_output


@dataclass
class TwoStageParams:
    collation: bool = True  # True: Knowledge Collation (stage 1); False: Knowledge Examination
    scr_positive: Literal["teacher", "target"] = "teacher"  # teacher (paper) | target (official code)
    scr_negatives: Literal["same_weather", "own"] = "same_weather"  # same_weather (paper) | own (official code)
    hcr_negatives: Literal["mean", "sum"] = "mean"  # mean over the batch's inputs (official code) | sum
    layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: model.stages
    vgg_weights: str = ""  # torchvision vgg19 state dict (local file)
    allow_untrained_vgg: bool = False
    vgg_normalize: bool = False  # ImageNet normalisation before VGG (official: none)
    require_all_domains: bool = True  # every weather type in every batch (official collate)


def projector(cin: int, cout: int) -> nn.Sequential:
    """conv3x3 -> ReLU -> conv3x3, no bias, Kaiming-normal (the official PFP / IPFP)."""
    p = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(),
                      nn.Conv2d(cout, cout, 3, padding=1, bias=False))
    for m in p:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return p


def inverse_projector(hidden: int, cout: int) -> nn.Sequential:
    """IPFP: conv3x3(hidden -> c) -> ReLU -> conv3x3(c -> c); the same shape as a projector."""
    return projector(hidden, cout)


def check_domains(teacher_domains: list, data_domains: list, data_name, where: str = "") -> None:
    """One teacher per weather type of the data, and no teacher for a type the data lacks."""
    dup = sorted({d for d in teacher_domains if teacher_domains.count(d) > 1})
    if dup:
        raise UserError(f"{where}teachers: more than one teacher serves '{dup[0]}'")
    for k, d in enumerate(teacher_domains):
        if d not in data_domains:
            raise UserError(f"{where}teachers[{k}].domain '{d}' is not a weather type of data '{data_name}' "
                            f"(it has: {', '.join(data_domains)})")
    unserved = [d for d in data_domains if d not in teacher_domains]
    if unserved:
        raise UserError(f"{where}data '{data_name}' has '{unserved[0]}' samples but no teacher serves them "
                        f"(teachers serve: {', '.join(teacher_domains)})")


@METHODS.register("tkl")
class TwoStageKnowledgeLearning(Method):
    """Two-stage knowledge learning (KC: teachers + CKT + soft CR; KE: ground truth + hard CR)."""

    Params = TwoStageParams
    teachers_required = "many"
    uses_task_loss = False
    # collation: L1 to the teacher's restoration + PFE + 0.05 PFV + 0.1 SCR; examination: L1 to GT + 0.2 HCR
    default_weights = {"l1_teacher": 1.0, "pfe": 1.0, "pfv": 0.05, "scr": 0.1, "l1": 1.0, "hcr": 0.2}
    renamed_params = {"teacher_l1": "l1_teacher", "pfe": "pfe", "pfv": "pfv", "scr": "scr", "gt_l1": "l1",
                      "hcr": "hcr"}

    def __init__(self, student, teachers=(), task_loss=None, params=None,
                 teacher_domains: list[str | None] | None = None):
        """``teacher_domains[k]``: the weather type teacher k serves (a run config's ``teachers[k].domain``)."""
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.teacher_domains = list(teacher_domains or [None] * len(self.teachers))
        for k, d in enumerate(self.teacher_domains):
            if not d:
                raise UserError(f"teachers[{k}].domain is missing: tkl needs the weather type each teacher serves")
        dup = {d for d in self.teacher_domains if self.teacher_domains.count(d) > 1}
        if dup:
            raise UserError(f"teachers: more than one teacher serves '{sorted(dup)[0]}'")
        self.pairs = [resolve_layer_pairs(params.layers, student, t, "stages") for t in self.teachers]
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs[0]], owner="student")
        self.teacher_taps = [FeatureTaps(t, [p[1] for p in pairs], owner=f"teacher {self.teacher_domains[k]}")
                             for k, (t, pairs) in enumerate(zip(self.teachers, self.pairs))]
        self.student_projectors = nn.ModuleList()
        self.teacher_projectors = nn.ModuleList()  # [k][q]
        self.inverse_projectors = nn.ModuleList()  # [k][q]
        self.perceptual: VGG19Features | None = None  # built in configure_weights when a CR term can be on
        self.domains: list[str] = []
        self.domain_to_teacher: dict[int, int] = {}

    # ------------------------------------------------------------------ building
    def configure_weights(self, weights):
        """The VGG-19 of the contrastive terms is built (and its weights checked) before training
        whenever SCR or HCR can be on: a nonzero weight or a schedule."""
        super().configure_weights(weights)
        can_be_on = [t for t in ("scr", "hcr")
                     if not self.configured_weights.get(t, self.weight_defaults[t]).always_zero]
        if can_be_on and self.perceptual is None:
            self._build_perceptual()

    def _build_perceptual(self) -> None:
        p = self.params
        self.perceptual = VGG19Features(p.vgg_weights or None, allow_untrained=p.allow_untrained_vgg,
                                        normalize_input=p.vgg_normalize)

    @classmethod
    def from_config(cls, cfg, student, teachers, task_loss, params):
        return cls(student, teachers, task_loss, params, teacher_domains=[t.domain for t in cfg.all_teachers()])

    @classmethod
    def validate(cls, cfg, dataset_info):
        """Before any teacher recipe trains: every teacher names a weather type of the data, one
        teacher per type, and every type of the data has its teacher."""
        teacher_domains = [t.domain for t in cfg.all_teachers()]
        for k, d in enumerate(teacher_domains):
            if not d:
                raise UserError(f"{cfg.source}: teachers[{k}].domain is missing: tkl needs the weather type "
                                f"each teacher serves")
        domains = dataset_info.get("domains")
        if not domains:
            raise UserError(f"{cfg.source}: data '{cfg.data.get('name')}' names no weather types (domains); "
                            f"tkl needs a multi-weather data set")
        check_domains(teacher_domains, list(domains), cfg.data.get("name"), f"{cfg.source}: ")

    def _resolve_routing(self, info) -> None:
        """Teacher k serves the samples whose ``domain`` index names its weather type in ``info["domains"]``."""
        data_name = info.get("data_name")
        domains = info.get("domains")
        if not domains:
            raise UserError(f"data '{data_name}': the data set names no weather types "
                            f"(domains); tkl needs a multi-weather data set")
        self.domains = list(domains)
        check_domains(self.teacher_domains, self.domains, data_name)
        self.domain_to_teacher = {self.domains.index(d): k for k, d in enumerate(self.teacher_domains)}

    @torch.no_grad()
    def setup(self, batch, info=None):
        self._resolve_routing(info or {})
        x = batch["input"]
        was_training = self.student.training
        self.student.eval()
        _, s_feats = self.student_taps.run(self.student, x[:1])
        self.student.train(was_training)
        device = x.device
        for k in range(len(self.teachers)):
            _, t_feats = self.teacher_taps[k].run(self.run_teacher, x[:1], k)
            tp, ip = nn.ModuleList(), nn.ModuleList()
            for (s_path, t_path), fs, ft in zip(self.pairs[k], s_feats, t_feats):
                if fs.shape[-2:] != ft.shape[-2:]:
                    raise UserError(f"tkl: student layer '{s_path}' ({tuple(fs.shape[-2:])}) and teacher "
                                    f"'{self.teacher_domains[k]}' layer '{t_path}' ({tuple(ft.shape[-2:])}) "
                                    f"differ in size")
                hidden = max(1, fs.shape[1] // 2)
                tp.append(projector(ft.shape[1], hidden))
                ip.append(inverse_projector(hidden, ft.shape[1]))
            self.teacher_projectors.append(tp.to(device))
            self.inverse_projectors.append(ip.to(device))
        for fs in s_feats:
            self.student_projectors.append(projector(fs.shape[1], max(1, fs.shape[1] // 2)).to(device))

    # ------------------------------------------------------------------ routing
    def route(self, domain: torch.Tensor) -> list[torch.Tensor]:
        """For each teacher k, the batch indices of the samples of its weather type."""
        if not self.domain_to_teacher:
            raise RuntimeError("tkl: setup(batch, info) must run before forward (it maps weather types to teachers)")
        ids = domain.view(-1).long()
        bad = [int(i) for i in ids.unique().tolist() if int(i) not in self.domain_to_teacher]
        if bad:
            raise UserError(f"tkl: a batch holds weather index {bad[0]}, which is not one of the data's "
                            f"{len(self.domains)} types ({', '.join(self.domains)})")
        groups = [torch.empty(0, dtype=torch.long, device=ids.device)] * len(self.teachers)
        for d, k in self.domain_to_teacher.items():
            groups[k] = (ids == d).nonzero().view(-1)
        if self.params.require_all_domains:
            for k, g in enumerate(groups):
                if g.numel() == 0:
                    raise UserError(f"tkl: a training batch has no '{self.teacher_domains[k]}' samples; every "
                                    f"weather type must be in each batch (use a multi-weather data set, whose "
                                    f"sampler mixes them, and a batch size >= {len(groups)})")
        return groups

    # ------------------------------------------------------------------ the step
    def compute(self, batch):
        if "domain" not in batch:
            raise UserError("tkl: the batches carry no 'domain' (weather type); use a multi-weather data set")
        if self.params.collation:
            return self.knowledge_collation(batch)
        return self.knowledge_examination(batch)

    def _perceptual(self) -> VGG19Features:
        if self.perceptual is None:
            self._build_perceptual()
            self.perceptual.to(next(self.student.parameters()).device)
        return self.perceptual

    def knowledge_collation(self, batch):
        p = self.params
        x, y = batch["input"], batch["target"]
        groups = self.route(batch["domain"])
        out, s_feats = self.student_taps.run(self.student, x)
        pred = main_output(out)
        teacher_pred = torch.zeros_like(pred)
        proj_parts = [[] for _ in s_feats]  # [q][k] projected teacher features
        rec_parts, feat_parts = [[] for _ in s_feats], [[] for _ in s_feats]
        for k, idx in enumerate(groups):
            if idx.numel() == 0:
                continue
            teacher_out, t_feats = self.teacher_taps[k].run(self.run_teacher, x[idx], k)
            teacher_pred[idx] = main_output(teacher_out).to(pred.dtype)
            for q, ft in enumerate(t_feats):
                projected = self.teacher_projectors[k][q](ft)
                proj_parts[q].append(projected)
                rec_parts[q].append(self.inverse_projectors[k][q](projected))
                feat_parts[q].append(ft)
        order = torch.cat([g for g in groups if g.numel()])
        inverse = torch.argsort(order)  # rows of the concatenated parts back to batch order
        losses = {}
        if self.active("l1_teacher"):
            losses["l1_teacher"] = F.l1_loss(pred.float(), teacher_pred.float())
        if self.active("pfe"):
            s_proj = [proj(fs) for proj, fs in zip(self.student_projectors, s_feats)]
            t_proj = [torch.cat(parts)[inverse] for parts in proj_parts]
            losses["pfe"] = pfe_loss(s_proj, t_proj)
        if self.active("pfv"):
            losses["pfv"] = pfv_loss(rec_parts, feat_parts)
        if self.active("scr"):
            positive = teacher_pred if p.scr_positive == "teacher" else y
            losses["scr"] = self.soft_cr(pred, positive, x, groups)
        return out, losses

    def soft_cr(self, pred, positive, x, groups):
        vgg = self._perceptual()
        if self.params.scr_negatives == "own":
            return contrastive_regularization(pred, positive, [x], vgg, VGG_LAYER_WEIGHTS)
        total = pred.new_zeros((), dtype=torch.float32)
        for idx in groups:
            n = idx.numel()
            if n == 0:
                continue
            negatives = [x[j:j + 1] for j in idx.tolist()]
            cr = contrastive_regularization(pred[idx], positive[idx], negatives, vgg, VGG_LAYER_WEIGHTS,
                                            negative_weights=[1.0 / n] * n)
            total = total + cr * (n / x.shape[0])
        return total

    def knowledge_examination(self, batch):
        p = self.params
        x, y = batch["input"], batch["target"]
        self.route(batch["domain"])  # checks the batch mixes all weather types
        out = self.student(x)
        pred = main_output(out)
        losses = {}
        if self.active("l1"):
            losses["l1"] = F.l1_loss(pred.float(), y.float())
        if self.active("hcr"):
            b = x.shape[0]
            negatives = [x[j:j + 1] for j in range(b)]
            c = [1.0 / b] * b if p.hcr_negatives == "mean" else None
            losses["hcr"] = contrastive_regularization(pred, y, negatives, self._perceptual(),
                                                               VGG_LAYER_WEIGHTS, negative_weights=c)
        return out, losses

    # ------------------------------------------------------------------ checkpoints
    def trainable_state_dict(self):
        return {k: v for k, v in super().trainable_state_dict().items() if not k.startswith("perceptual.")}

    def load_trainable_state_dict(self, state):
        own = {k: v for k, v in self.state_dict().items() if k.startswith("perceptual.")}
        super().load_trainable_state_dict({**state, **own})
