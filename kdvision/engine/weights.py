"""Loading weights from what users have: kdvision runs and checkpoints, plain state dicts,
safetensors files. Nothing is unpickled beyond tensors (``weights_only=True``); dtypes are
checked as well as names and shapes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.safe_load import check_dtypes, read_torch_file  # noqa: F401  (check_dtypes: for pretrained loading too)

STUDENT_FILE = "student.safetensors"


def resolve_weights_file(path: str | Path) -> Path:
    """A run directory -> its student.safetensors (or best/last checkpoint); a file -> itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        for candidate in (p / STUDENT_FILE, p / "checkpoints" / "best.pt", p / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise UserError(f"{p}: a directory without {STUDENT_FILE} or checkpoints/ (is it a kdvision run?)")
    if not p.is_file():
        raise UserError(f"weights file not found: {p}")
    return p


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict stored at ``path`` (any supported format), on the CPU."""
    p = resolve_weights_file(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except Exception as e:  # safetensors raises its own error type for corrupt headers
            raise UserError(f"cannot read safetensors file {p}: {e}") from None
    return extract_state_dict(read_torch_file(p), p)


def extract_state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and obj.get("format") == "kdvision-checkpoint":
        from kdvision.engine.checkpoint import check_model_entry

        check_model_entry(obj, path)
        model = obj["model"]
        return {k[len("student."):]: v for k, v in model.items() if k.startswith("student.")}
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "net", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: no state dict found (expected a mapping of parameter names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_weights_into(model: nn.Module, path: str | Path, what: str) -> None:
    """Load ``path`` into ``model`` strictly, naming missing, unexpected and mis-shaped keys."""
    state = load_state_dict_file(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} ({len(missing)})")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''} "
                         f"({len(unexpected)})")
        if shapes:
            parts.append(f"shape mismatch: {', '.join(shapes[:3])}")
        raise UserError(f"{what}: {path} does not fit {type(model).__name__}: {'; '.join(parts)}")
    check_dtypes(state, own, f"{what}: {path}")
    model.load_state_dict(state)
