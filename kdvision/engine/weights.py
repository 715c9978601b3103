"""Loading weights from what users have: kdvision runs and checkpoints, plain state dicts
(torchvision / timm ``.pth``), safetensors files, Hugging Face-style local folders. Nothing is
unpickled beyond tensors (``weights_only=True``), no code from a folder is executed, and dtypes
are checked as well as names and shapes."""
from __future__ import annotations

from pathlib import Path

import sys

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.safe_load import check_dtypes, read_torch_file

STUDENT_FILE = "student.safetensors"
#: the weights of a Hugging Face-style folder (beside its config.json), in order of preference
HF_FILES = ("model.safetensors", "pytorch_model.bin")
#: what a directory may hold, in order: a kdvision run, then a Hugging Face-style folder
DIRECTORY_FILES = (STUDENT_FILE, "checkpoints/best.pt", "checkpoints/last.pt") + HF_FILES


def weights_in_directory(p: Path) -> Path | None:
    """The weights file a run directory or a Hugging Face-style folder holds (None: none)."""
    return next((p / name for name in DIRECTORY_FILES if (p / name).is_file()), None)


def is_hf_folder(p: Path) -> bool:
    return p.is_dir() and any((p / name).is_file() for name in HF_FILES)


def resolve_weights_file(path: str | Path) -> Path:
    """A run directory -> its student.safetensors (or best/last checkpoint); a Hugging Face-style
    folder -> its model.safetensors or pytorch_model.bin; a file -> itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = weights_in_directory(p)
        if found is None:
            raise UserError(f"{p}: a directory without {STUDENT_FILE} or checkpoints/ (a kdvision run) or "
                            f"model.safetensors / pytorch_model.bin (a Hugging Face-style folder)")
        return found
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


def mismatch_report(own: dict, state: dict) -> str:
    """'' when ``state`` fits ``own`` key for key and shape, else what differs, by name."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"missing keys: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} ({len(missing)})")
    if unexpected:
        parts.append(f"unexpected keys: {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''} "
                     f"({len(unexpected)})")
    if shapes:
        parts.append(f"shape mismatch: {', '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    return "; ".join(parts)


def load_weights_into(model: nn.Module, path: str | Path, what: str) -> None:
    """Load ``path`` into ``model`` strictly, naming missing, unexpected and mis-shaped keys."""
    state = load_state_dict_file(path)
    problems = mismatch_report(model.state_dict(), state)
    if problems:
        raise UserError(f"{what}: {path} does not fit {type(model).__name__}: {problems}")
    check_dtypes(state, model.state_dict(), f"{what}: {path}")
    model.load_state_dict(state)


def classifier_head_keys(model: nn.Module, own: dict, state: dict, num_classes: int | None) -> list[str]:
    """Keys of the classifier layers whose class count differs between ``state`` and ``model``.

    A classifier layer is a Linear or convolution whose outputs are the ``num_classes``
    classes; in the file it has another count and otherwise the same shape.
    """
    if not num_classes:
        return []
    modules = dict(model.named_modules())
    keys = []
    for k, v in own.items():
        if k not in state or tuple(state[k].shape) == tuple(v.shape) or v.dim() == 0:
            continue
        layer = modules.get(k.rpartition(".")[0])
        if (isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)) and v.shape[0] == num_classes
                and state[k].shape[1:] == v.shape[1:]):
            keys.append(k)
    return keys


def load_pretrained_into(model: nn.Module, path: str | Path, what: str, num_classes: int | None = None,
                         new_head: bool = True) -> list[str]:
    """``pretrained: PATH``: load a state dict (file, kdvision run, Hugging Face-style folder).

    A classifier head made for another class count (an ImageNet head on a 10-class model) keeps
    its fresh initialisation, reported in one line; every other tensor must fit, else the
    mismatches are named. BatchNorm ``num_batches_tracked`` counters that old files lack are
    kept from the model. Returns the re-initialised keys.
    """
    try:
        state = load_state_dict_file(path)
    except UserError as e:
        raise UserError(f"{what}.pretrained: {e}") from None
    own = model.state_dict()
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    head = classifier_head_keys(model, own, state, num_classes)
    if head and not new_head:
        raise UserError(f"{what}.pretrained: {path} has a classifier for {state[head[0]].shape[0]} classes, the "
                        f"model {num_classes} ({', '.join(head)}); a teacher needs trained weights for its "
                        f"classes: give teacher.checkpoint")
    old = {int(state[k].shape[0]) for k in head}
    for k in head:
        state[k] = own[k]
    problems = mismatch_report(own, state)
    if problems:
        raise UserError(f"{what}.pretrained: {path} does not fit {type(model).__name__}: {problems}")
    check_dtypes(state, own, f"{what}.pretrained: {path}")
    model.load_state_dict(state)
    if head:
        print(f"kdvision: {what}.pretrained: classifier head re-initialised for {num_classes} classes "
              f"(the file has {', '.join(map(str, sorted(old)))}): {', '.join(head)}", file=sys.stderr, flush=True)
    return head
