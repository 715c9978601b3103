"""Value constraints of the config schema: one mechanism for every section.

A constraint rides on the type annotation of a config field, a method's ``Params`` field or a
builder's parameter, and ``kdvision.config.coerce`` applies it after the type check:

- choices are ``typing.Literal["sgd", "adam", "adamw"]``;
- ranges and patterns are ``typing.Annotated[float, Range(gt=0)]`` (aliases below), which
  also refuse NaN and infinity.

The error names the file, the key and what is allowed, e.g.
``my.yaml: 'train.optimizer.lr' must be a finite number > 0 (got -1)``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from kdvision.errors import UserError

#: the largest image side (pixels) a config may ask for: refuses e.g. a 100000-pixel
#: resolution before anything is allocated (8192^2 RGB floats are already 800 MB an image)
MAX_IMAGE_SIDE = 8192
#: the largest batch a config may ask for (beyond it Python's own indices overflow)
MAX_BATCH = 2 ** 31 - 1
#: data-loading worker processes: more is a typo, and each one is a process
MAX_WORKERS = 256
#: seeds are 64-bit: torch, numpy (seed % 2**32) and Python all accept [0, 2**63 - 1]
MAX_SEED = 2 ** 63 - 1


@dataclass(frozen=True)
class Range:
    """``ge <= value <= le`` (or strict with ``gt`` / ``lt``); numbers must also be finite."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None
    why: str = ""  # appended to the message: why the bound exists or what to do instead

    def holds(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self, integer: bool) -> str:
        kind = "an integer" if integer else "a finite number"
        low = (self.ge, "[") if self.ge is not None else (self.gt, "(") if self.gt is not None else None
        high = (self.le, "]") if self.le is not None else (self.lt, ")") if self.lt is not None else None
        if low and high:
            return f"{kind} in {low[1]}{_num(low[0])}, {_num(high[0])}{high[1]}"
        if low:
            return f"{kind} {'>=' if low[1] == '[' else '>'} {_num(low[0])}"
        if high:
            return f"{kind} {'<=' if high[1] == ']' else '<'} {_num(high[0])}"
        return kind

    def check(self, value, key: str, source: str):
        if not self.holds(value):
            why = f"; {self.why}" if self.why else ""
            raise UserError(f"{source}: '{key}' must be {self.describe(isinstance(value, int))} "
                            f"(got {_num(value)}){why}")
        return value


@dataclass(frozen=True)
class Pattern:
    """A string that matches ``regex`` in full; ``shown`` is what the message lists as allowed."""

    regex: str
    shown: str

    def check(self, value, key: str, source: str):
        if not re.fullmatch(self.regex, value):
            raise UserError(f"{source}: '{key}' must be one of {self.shown} (got {value!r})")
        return value


@dataclass(frozen=True)
class Length:
    """A list of exactly ``n`` items."""

    n: int

    def check(self, value, key: str, source: str):
        if len(value) != self.n:
            raise UserError(f"{source}: '{key}' must be a list of {self.n} items (got {len(value)}: {value!r})"[:200])
        return value


def check_choice(value: Any, choices: tuple, key: str, source: str):
    """The rule for ``Literal[...]`` annotations (called by ``coerce``)."""
    if not any(value == c and type(value) is type(c) for c in choices):
        shown = ", ".join(str(c) for c in choices)
        raise UserError(f"{source}: '{key}' must be one of {shown} (got {value!r})")
    return value


def apply_constraints(value, constraints, key: str, source: str):
    """Run the ``Annotated`` metadata that are constraints (objects with ``check``) on ``value``."""
    if value is None:
        return value
    for c in constraints:
        if hasattr(c, "check"):
            value = c.check(value, key, source)
    return value


def _num(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v) if isinstance(v, str) else str(v)


# --------------------------------------------------------------------------- aliases
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
FiniteFloat = Annotated[float, Range()]
Fraction = Annotated[float, Range(ge=0, le=1)]
Seed = Annotated[int, Range(ge=0, le=MAX_SEED)]
BatchSize = Annotated[int, Range(ge=1, le=MAX_BATCH)]
#: a random crop's side in pixels, 0: no crop (the whole image)
Crop = Annotated[int, Range(ge=0, le=MAX_IMAGE_SIDE)]
Workers = Annotated[int, Range(ge=0, le=MAX_WORKERS)]
#: an image side in pixels (crop, resolution, size)
ImageSide = Annotated[int, Range(ge=1, le=MAX_IMAGE_SIDE)]
#: Adam's (beta1, beta2)
Betas = Annotated[list[Annotated[float, Range(ge=0, lt=1)]], Length(2)]
Device = Annotated[str, Pattern(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N, mps")]
