"""Atomic checkpoint writes, checkpoint content checks and the run directory's layout."""
from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

import torch

from kdvision.errors import UserError

FORMAT = "kdvision-checkpoint"
TEMP_PREFIXES = (".last.pt.", ".best.pt.", ".student.safetensors.", ".config.yaml.")


def atomic_write(path: Path, write, file_object: bool = False) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file.

    The temporary file is created with mode 0666 minus the umask (``mkstemp`` would give 0600,
    and the rename would keep it). A full disk or an unwritable folder is one clear line.
    ``write`` gets the temporary path, or with ``file_object`` an open binary file (whose
    Python writes report the real errno).
    """
    path = Path(path)
    existed = path.is_file()
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            if file_object:
                write(f)
        if not file_object:
            write(str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        raise _write_error(e, path, existed) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_error(e: OSError, path: Path, existed: bool) -> UserError:
    kept = f"the previous {path.name} is intact" if existed else "nothing was written"
    if e.errno == errno.ENOSPC:
        return UserError(f"no space left on device writing {path}; {kept}")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {path}: the folder {path.parent} is not writable "
                         f"({os.strerror(e.errno).lower()}); {kept}")
    return UserError(f"cannot write {path}: {e.strerror or e}; {kept}")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete ``.last.pt.XXXX``-style files that a killed process left behind (under the run lock)."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and p.name.startswith(TEMP_PREFIXES):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def save_checkpoint(state: dict, path: Path) -> None:
    state = {"format": FORMAT, **state}
    atomic_write(path, lambda f: torch.save(state, f), file_object=True)


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)), file_object=True)


def load_checkpoint(path: Path) -> dict:
    """A kdvision checkpoint (weights-only loading), its ``model`` checked to be a state dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot load checkpoint {path} (weights-only loading): {load_error_text(e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a kdvision checkpoint")
    check_model_entry(state, path)
    return state


def load_error_text(e: Exception) -> str:
    """torch.load's error in one line, without its advice to retry with ``weights_only=False``
    (that would run whatever code the file holds)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    keep = [line for line in lines if "weights_only" not in line and "trust the source" not in line.lower()
            and not line.startswith(("(1)", "(2)", "Please file an issue", "Check the documentation"))]
    text = (keep[0] if keep else (lines[-1] if lines else type(e).__name__))
    text = text.split(" Please use")[0].replace("WeightsUnpickler error: ", "")
    if "weights_only" in text:
        text = "the file is not a plain tensor checkpoint"
    return text[:200]


def check_model_entry(state: dict, path: Path) -> None:
    model = state.get("model")
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        what = "missing" if model is None else f"a {type(model).__name__}, not a mapping of names to tensors"
        raise UserError(f"{path}: damaged kdvision checkpoint: its 'model' entry is {what}")


RESUME_KEYS = {"optimizer": dict, "epoch": int, "rng": dict}


def check_resumable(state: dict, path: Path) -> None:
    """What ``--resume`` reads besides the weights: optimiser state, position, RNG states."""
    for key, kind in RESUME_KEYS.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            what = "missing" if key not in state else f"a {type(state[key]).__name__}"
            raise UserError(f"{path}: cannot resume from this checkpoint: its '{key}' entry is {what}")
    if not isinstance(state["rng"].get("torch"), torch.Tensor):
        raise UserError(f"{path}: cannot resume from this checkpoint: its 'rng' entry has no torch state")


class RunDir:
    """<out>/ config.yaml, checkpoints/{last,best}.pt, metrics.jsonl, tb/, pictures/, student.safetensors."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

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
