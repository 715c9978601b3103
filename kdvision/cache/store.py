"""The teacher cache file: one safetensors file, its header (metadata) and its tensors.

Tensors: ``params`` [N, V, P] (each view's augmentation parameters) and either ``logits``
[N, V, C, ...] or, with ``topk: k``, ``topk_values`` and ``topk_indices`` [N, V, k, ...] plus
``logsumexp`` [N, V, ...] of the full logits. Header: format, version, the digests of teacher,
data and augmentation, views, topk, dtype, the parameter types, and how it was made.

Top-k: FKD stores the top-k soft labels; here the top-k logits and the log-sum-exp of all of
them are kept, and the other classes share the remaining probability equally, so at T = 1 the
rebuilt softmax equals the teacher's on the top-k classes and on their total; at other
temperatures the tail is an approximation.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from kdvision.engine.checkpoint import atomic_write
from kdvision.errors import UserError

FORMAT = "kdvision-teacher-cache"
VERSION = "1"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
#: header fields that must match the current run, and how to name them in an error
CHECKED = (("teacher", "teacher weights"), ("data", "training data"), ("augment", "augmentation"))


class TeacherCache:
    def __init__(self, header: dict, tensors: dict[str, torch.Tensor]):
        self.header = header
        self.tensors = tensors
        self.views = int(header["views"])
        self.topk = int(header["topk"]) if header.get("topk") not in (None, "null") else None
        self.param_types = list(header["param_types"])
        self.params = tensors["params"]
        self.num_samples = self.params.shape[0]
        self._params = self.params.numpy()  # fast scalar reads while replaying
        self._cast = [{"bool": bool, "int": int, "float": float}[t] for t in self.param_types]

    # ------------------------------------------------------------------ replay
    def params_of(self, i: int, v: int) -> tuple:
        row = self._params[i, v]
        return tuple(cast(x.item()) for cast, x in zip(self._cast, row))

    def logits_of(self, i: int, v: int) -> torch.Tensor:
        """The teacher's logits for view v of sample i, as float32 (rebuilt from top-k if needed)."""
        return self.logits_at(torch.tensor([i]), torch.tensor([v]))[0]

    def logits_at(self, index: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """[B, C, ...] float32 logits for views ``view`` of samples ``index`` (both [B]); from top-k,
        the classes not kept share the remaining probability mass equally."""
        if self.topk is None:
            return self.tensors["logits"][index, view].float()
        values = self.tensors["topk_values"][index, view].float()
        top = self.tensors["topk_indices"][index, view].long()
        lse = self.tensors["logsumexp"][index, view].float()
        classes = int(self.header["num_classes"])
        rest = classes - values.shape[1]
        if rest == 0:
            return torch.zeros(values.shape[0], classes, *values.shape[2:]).scatter_(1, top, values)
        remaining = (1.0 - torch.exp(values - lse.unsqueeze(1)).sum(1)).clamp_min(1e-12)
        fill = (lse + torch.log(remaining / rest)).unsqueeze(1)
        return fill.expand(values.shape[0], classes, *values.shape[2:]).clone().scatter_(1, top, values)

    # ------------------------------------------------------------------ files
    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        meta = {k: (str(v) if k in ("format", "version") else json.dumps(v)) for k, v in self.header.items()}
        tensors = {k: v.contiguous() for k, v in self.tensors.items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    @staticmethod
    def read_header(path: Path) -> dict:
        """The header of a cache file; UserError for anything that is not a kdvision cache."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # not a safetensors file at all
            raise UserError(f"teacher_cache.path: {path} is not a kdvision teacher cache ({e})") from None
        if meta.get("format") != FORMAT:
            raise UserError(f"teacher_cache.path: {path} is not a kdvision teacher cache (no '{FORMAT}' header)")
        if meta.get("version") != VERSION:
            raise UserError(f"teacher_cache.path: {path} has cache version {meta.get('version')}, this kdvision "
                            f"reads version {VERSION}; rebuild it (teacher_cache.rebuild=true)")
        try:
            return {k: (v if k in ("format", "version") else json.loads(v)) for k, v in meta.items()}
        except json.JSONDecodeError:
            raise UserError(f"teacher_cache.path: {path} has a damaged header; delete it to rebuild") from None

    @classmethod
    def load(cls, path: Path) -> "TeacherCache":
        from safetensors.torch import load_file

        header = cls.read_header(path)
        return cls(header, load_file(str(path)))


def mismatches(header: dict, expected: dict) -> list[str]:
    """Why a cache's header does not fit the current run (empty: it fits)."""
    reasons = []
    for key in ("views", "topk", "dtype"):
        if header.get(key) != expected[key]:
            reasons.append(f"{key} {header.get(key)} (the config asks for {expected[key]})")
    for key, what in CHECKED:
        if header.get(key) != expected[key]:
            reasons.append(f"other {what}")
    if header.get("num_samples") != expected["num_samples"]:
        reasons.append(f"{header.get('num_samples')} samples (the training set has {expected['num_samples']})")
    return reasons


def compress_logits(logits: torch.Tensor, topk: int | None, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Logits [B, C, ...] (float32) -> the tensors stored for them."""
    if topk is None:
        return {"logits": logits.to(dtype)}
    k = min(topk, logits.shape[1])
    values, index = logits.topk(k, dim=1)
    index_dtype = torch.int16 if logits.shape[1] <= 32767 else torch.int32
    return {"topk_values": values.to(dtype), "topk_indices": index.to(index_dtype),
            "logsumexp": torch.logsumexp(logits, dim=1)}


def check_settings(views: int, topk: int | None, dtype: str) -> None:
    if views < 1:
        raise UserError(f"teacher_cache.views must be at least 1, got {views}")
    if topk is not None and topk < 1:
        raise UserError(f"teacher_cache.topk must be null or at least 1, got {topk}")
    if dtype not in DTYPES:
        raise UserError(f"teacher_cache.dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
