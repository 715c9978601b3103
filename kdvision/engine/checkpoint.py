"""Atomic checkpoint writes and the run directory's layout."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from kdvision.errors import UserError

FORMAT = "kdvision-checkpoint"


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(state: dict, path: Path) -> None:
    state = {"format": FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot load checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a kdvision checkpoint")
    return state


class RunDir:
    """<out>/ config.yaml, checkpoints/{last,best}.pt, metrics.jsonl, tb/, pictures/, student.safetensors."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def student(self) -> Path:
        return self.root / "student.safetensors"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def pictures(self) -> Path:
        return self.root / "pictures"

    def create(self, resume: bool) -> None:
        """A new run needs a new (or empty) folder; ``resume`` needs one with a checkpoint."""
        if resume:
            if not self.root.is_dir():
                raise UserError(f"--resume: run directory not found: {self.root}")
            if not self.last.is_file():
                raise UserError(f"--resume: {self.root} has no checkpoint ({self.last} missing)")
            return
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise UserError(f"run directory {self.root} already exists; pass --resume to continue it, "
                            f"or choose another --out (nothing was overwritten)")
        self.root.mkdir(parents=True, exist_ok=True)
