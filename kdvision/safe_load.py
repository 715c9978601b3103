"""Reading files a user hands over without letting them run code.

- ``read_torch_file``: ``torch.load(weights_only=True)``; a refusal is one line naming the file,
  never torch's advice to retry with ``weights_only=False``.
- ``check_dtypes``: tensors must be of the dtype kind of the parameters they load into.
- ``load_restricted_pickle``: plain pickles (the official CIFAR batches) through an unpickler
  that admits only the globals those files hold.
"""
from __future__ import annotations

import pickle
import re
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from kdvision.errors import UserError


def read_torch_file(path: str | Path, what: str = "weights"):
    """``torch.load`` with ``weights_only=True`` (no code can run); any failure is one line that
    names the file and never passes on torch's advice to retry with ``weights_only=False``."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise for a user
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt file, or pickled code that weights-only loading refuses
        raise UserError(f"cannot load {path} as {what}: {torch_load_reason(e)}") from None


def torch_load_reason(error: BaseException) -> str:
    """Why ``torch.load`` failed, in one line, without its advice to re-run with
    ``weights_only=False`` or to allowlist globals."""
    text = str(error)
    if "weights_only" in text or "Weights only" in text:
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        operand = re.search(r"Unsupported operand \d+", text)
        detail = f" (it holds the global {refused.group(1)})" if refused else f" ({operand.group(0)})" if operand else ""
        return f"not a plain weights file{detail}; kdvision loads only tensors and never runs pickled code"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"not a readable torch file ({type(error).__name__}: {first})"


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    if dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        return "int"
    return str(dtype)  # quantized and other exotic dtypes match only themselves


def check_dtypes(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], source: str) -> None:
    """Refuse tensors whose dtype is of another kind than the model's (an int8 or bool tensor for a
    float parameter would be cast silently and give meaningless results). Float precisions may
    differ (a float16 file loads into float32 parameters). ``source`` names the file in the message."""
    for k, v in own.items():
        if k in state and isinstance(state[k], torch.Tensor) and _kind(state[k].dtype) != _kind(v.dtype):
            raise UserError(f"{source}: key {k} is {str(state[k].dtype).removeprefix('torch.')} in the file but "
                            f"{str(v.dtype).removeprefix('torch.')} in the model")


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the admitted set (it could run code)."""


def _latin1_encode(text, encoding="latin1"):
    # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1")
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise RefusedGlobal(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


@lru_cache(maxsize=1)
def _admitted() -> dict[tuple[str, str], object]:
    import numpy as np
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric

    admitted = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy._core", "numpy.core"):  # numpy 2 writes numpy._core, the official files numpy.core
        admitted[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        admitted[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        admitted[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return admitted


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, tuples, bytes, str, numbers and numpy arrays/scalars: every other
    global (``os.system``, ``builtins.eval``, any class) is refused before it is looked up."""

    def find_class(self, module: str, name: str):
        found = _admitted().get((module, name))
        if found is None:
            raise RefusedGlobal(f"{module}.{name}")
        return found


def load_restricted_pickle(path: Path, what: str = "pickle"):
    """The object pickled in ``path`` (``encoding="bytes"``, as the Python 2 CIFAR files need)."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="bytes").load()
    except RefusedGlobal as e:
        raise UserError(f"{path}: refused to unpickle the global {e} (a {what} holds only dicts, lists, bytes, "
                        f"str, numbers and numpy arrays; this file could run code)") from None
    except Exception as e:  # noqa: BLE001 - corrupt or truncated pickle
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"cannot read {what} {path}: {type(e).__name__}{': ' + reason if reason else ''}") from None
