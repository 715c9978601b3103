"""The recipes shipped inside the package (``kdvision/recipes/``), by name.

A recipe's name is its path under ``kdvision/recipes/`` without ``.yaml``, e.g.
``cifar100/kd/resnet56_resnet20`` (in a checkout, ``configs/`` links to that folder). Its
description is the first comment line of the file. Wherever a config path is expected
(``kdvision train``, ``base:``), an existing file wins over a recipe of the same name.
"""
from __future__ import annotations

import difflib
from pathlib import Path

from kdvision.errors import UserError

RECIPES = Path(__file__).resolve().parent / "recipes"


def recipe_names() -> list[str]:
    """Every shipped recipe's name, sorted (presets such as ``cifar100/base`` included)."""
    return sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml"))


def recipe_path(name: str) -> Path | None:
    """The packaged file for ``name`` (with or without ``.yaml``), or None if there is none."""
    stem = name.removesuffix(".yaml").strip("/")
    if not stem or ".." in Path(stem).parts or Path(stem).is_absolute():
        return None
    path = RECIPES / f"{stem}.yaml"
    return path if path.is_file() else None


def description(path: Path) -> str:
    """The first comment line of a recipe, without its ``#``."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
        if line.strip():
            break
    return ""


def close_names(name: str, n: int = 3) -> list[str]:
    names = recipe_names()
    stem = name.removesuffix(".yaml").strip("/")
    found = difflib.get_close_matches(stem, names, n=n, cutoff=0.6)
    # a file name alone (kd/resnet56_resnet20, resnet56_resnet20) matches the recipes ending in it
    found += [r for r in names if r.endswith("/" + stem) and r not in found]
    return found[:n]


def resolve_config(given: str | Path, local: Path | None = None, where: str = "config file") -> Path:
    """The file ``local`` (default: ``given`` itself) if it exists, else the packaged recipe named
    ``given``; else one clear error suggesting close names."""
    path = Path(local if local is not None else given).expanduser()
    if path.is_file():
        return path
    packaged = recipe_path(str(given))
    if packaged is not None:
        return packaged
    close = close_names(str(given))
    hint = f"close names: {', '.join(close)}; " if close else ""
    raise UserError(f"{where} not found: {path} (nor a packaged recipe '{given}'; {hint}"
                    f"`kdvision recipes` lists them)")
