"""How restoration data sets on disk pair a degraded image with its ground truth: one
registry of layouts, ``LAYOUTS`` (name -> ``Layout``), used by the "paired" data sets here
and by the multi-weather sources (``kdvision.data.weather``).

A layout reads a folder and returns ``Pair`` records; any file that cannot be paired is
named in a one-line ``UserError``. The layouts of this module:

- ``nh_haze`` (NH-HAZE / NH-HAZE2 / Dense-HAZE): one folder, ``NN_hazy.png`` <-> ``NN_GT.png``.
- ``reside``: ``hazy/1_1_0.90179.png`` -> ``clear/1.png`` (ITS), ``hazy/1400_1.png`` ->
  ``gt/1400.png`` (SOTS indoor), ``hazy/0001_0.8_0.2.jpg`` -> ``gt/0001.png`` (SOTS outdoor):
  the target is the file whose stem is the input's prefix before the first "_"; several
  inputs may share one.
- ``paired_folder``: ``input/x.png`` <-> ``target/x.png`` (same file names).
- ``pattern``: any layout that two file-name templates describe (``pattern_pairs``).

A new layout is one ``add_layout`` call: a reader function ``read(root, **options)``, or an
existing reader with some options fixed (the weather package's ``csd`` is ``paired_folder``
with ``input_dir: Snow, target_dir: Gt``). Its other options become config keys.
"""
from __future__ import annotations

import bisect
import importlib
import inspect
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kdvision.data.restoration.images import IMAGE_SUFFIXES, list_images
from kdvision.errors import UserError
from kdvision.registry import Registry


@dataclass(frozen=True)
class Pair:
    input: Path
    target: Path
    name: str  # shown in reports and used for output file names
    group: str  # the scene: pairs of one group are never split between train and test


@dataclass(frozen=True)
class Layout:
    """A registered way of pairing files: ``read(root, **fixed, **options) -> [Pair]``."""

    name: str
    read: Callable[..., list[Pair]]
    fixed: dict[str, Any] = field(default_factory=dict)  # options this entry sets for its reader
    domain: str | None = None  # the weather type its folders hold (a weather source's default)

    def parameters(self) -> list[inspect.Parameter]:
        """The reader's options a config may set (all but ``root`` and the fixed ones)."""
        return [p for name, p in list(inspect.signature(self.read).parameters.items())[1:]
                if name not in self.fixed]

    def hints(self) -> dict[str, Any]:
        return {p.name: typing.get_type_hints(self.read).get(p.name, Any) for p in self.parameters()}

    def pairs(self, root: str | Path, options: dict | None = None, where: str = "data",
              other_keys: tuple[str, ...] = ()) -> list[Pair]:
        """The pairs of ``root``; ``options`` (config keys under ``where``) are checked by name
        and type first (``other_keys``: the caller's own keys, listed in the error)."""
        from kdvision.config import coerce

        options = dict(options or {})
        hints = self.hints()
        for key, value in options.items():
            if key not in hints:
                known = ", ".join([*other_keys, *hints]) or "none"
                raise UserError(f"unknown key '{where}.{key}' (known here, layout '{self.name}': {known})")
            options[key] = coerce(value, hints[key], f"{where}.{key}", where)
        return self.read(root, **self.fixed, **options)


#: layout name (as written in configs) -> Layout
LAYOUTS = Registry("layout")


def add_layout(name: str, read: Callable[..., list[Pair]], domain: str | None = None, doc: str | None = None,
               **fixed: Any) -> Layout:
    """Register ``read`` (with the ``fixed`` options) as the layout ``name``."""
    layout = Layout(name, read, fixed, domain)
    LAYOUTS.register(name, doc or read.__doc__)(layout)
    return layout


def get_layout(name: Any, where: str) -> Layout:
    """The layout ``name``; every data package's layouts are registered first."""
    importlib.import_module("kdvision.data")
    return LAYOUTS.get(str(name), where=where)


def nh_haze_pairs(root: str | Path, input_suffix: str = "_hazy", target_suffix: str = "_GT") -> list[Pair]:
    """NH-HAZE layout: ``NN_hazy.ext`` and ``NN_GT.ext`` side by side in ``root``."""
    inputs: dict[str, Path] = {}
    targets: dict[str, Path] = {}
    for p in list_images(root, "NH-HAZE folder"):
        stem = p.stem
        if stem.lower().endswith(input_suffix.lower()):
            key, side = stem[: -len(input_suffix)], inputs
        elif stem.lower().endswith(target_suffix.lower()):
            key, side = stem[: -len(target_suffix)], targets
        else:
            raise UserError(f"{p}: cannot be paired: NH-HAZE names are NN{input_suffix}.png and "
                            f"NN{target_suffix}.png")
        if key in side:
            raise UserError(f"{p}: cannot be paired: {side[key].name} has the same scene number")
        side[key] = p
    for key, p in sorted(inputs.items()):
        if key not in targets:
            raise UserError(f"{p}: cannot be paired: no {key}{target_suffix} image beside it")
    for key, p in sorted(targets.items()):
        if key not in inputs:
            raise UserError(f"{p}: cannot be paired: no {key}{input_suffix} image beside it")
    return [Pair(inputs[k], targets[k], k, k) for k in sorted(inputs)]


def reside_pairs(root: str | Path, input_dir: str = "hazy", target_dir: str = "") -> list[Pair]:
    """RESIDE layout: ``root/hazy`` and ``root/clear`` (ITS) or ``root/gt`` (SOTS).

    ``target_dir`` empty: whichever of "clear" and "gt" exists. Every hazy image must find its
    target; a target that no hazy image uses is allowed (subsets of ITS keep all 1399 clear
    images).
    """
    root = Path(root)
    if not target_dir:
        found = [d for d in ("clear", "gt") if (root / d).is_dir()]
        if len(found) != 1:
            raise UserError(f"{root}: a RESIDE folder holds '{input_dir}/' and one of 'clear/' or 'gt/' "
                            f"(found: {', '.join(found) or 'neither'})")
        target_dir = found[0]
    targets: dict[str, Path] = {}
    for p in list_images(root / target_dir, "RESIDE target folder"):
        if p.stem in targets:
            raise UserError(f"{p}: cannot be paired: {targets[p.stem].name} has the same name")
        targets[p.stem] = p
    pairs = []
    for p in list_images(root / input_dir, "RESIDE hazy folder"):
        prefix = p.stem.split("_", 1)[0]
        if prefix not in targets:
            raise UserError(f"{p}: cannot be paired: no {target_dir}/{prefix}.* for the prefix '{prefix}'")
        pairs.append(Pair(p, targets[prefix], p.stem, prefix))
    return pairs


def paired_folder_pairs(root: str | Path, input_dir: str = "input", target_dir: str = "target") -> list[Pair]:
    """Generic layout: ``root/input/x.png`` <-> ``root/target/x.png`` (identical file names)."""
    root = Path(root)
    inputs = {p.name: p for p in list_images(root / input_dir, f"'{input_dir}' folder")}
    targets = {p.name: p for p in list_images(root / target_dir, f"'{target_dir}' folder")}
    for name, p in sorted(inputs.items()):
        if name not in targets:
            raise UserError(f"{p}: cannot be paired: no {target_dir}/{name}")
    for name, p in sorted(targets.items()):
        if name not in inputs:
            raise UserError(f"{p}: cannot be paired: no {input_dir}/{name}")
    return [Pair(inputs[n], targets[n], Path(n).stem, Path(n).stem) for n in sorted(inputs)]


def _template_regex(template: str, key: str, id_pattern: str = r"(?P<id>[^/]+?)") -> re.Pattern:
    """``{id}`` -> the shared part (the shortest that fits), ``*`` / ``?`` -> any characters /
    one character within a name; everything else literal. Matched against whole relative paths."""
    if template.count("{id}") != 1 or re.search(r"[{}]", template.replace("{id}", "")):
        raise UserError(f"pattern layout: {key} '{template}' must hold {{id}} once (the part input and "
                        f"target share) and no other {{...}}")
    parts = []
    for piece in re.split(r"(\{id\}|\*|\?)", template):
        parts.append({"{id}": id_pattern, "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece)))
    return re.compile("".join(parts))


def pattern_pairs(root: str | Path, input: str, target: str) -> list[Pair]:
    """Pairs from two file-name templates relative to ``root``, e.g. ``input: "hazy/{id}_*.png"``,
    ``target: "clear/{id}.png"`` (BasicSR's ``filename_tmpl`` idea, both sides templated).

    ``{id}`` is the part an input and its target share; in the input it matches the shortest
    text that fits (so ``{id}_*`` stops at the first "_"). ``*`` matches any characters and ``?``
    one character, within one file or folder name; matching is case-sensitive. Every image file
    under ``root`` whose path fits ``input`` is an input (other files are not read); each must
    find exactly one file that fits ``target`` with its id. Several inputs may share a target
    (a target no input uses is allowed). A pair's group (the scene kept whole in splits) is its
    id; its name (reports, output files) is the id where ``input`` has no wildcard, else the
    input's file stem.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"pattern layout: folder not found: {root}")
    input_rx = _template_regex(input, "input")
    _template_regex(target, "target")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    found = [(rel, m.group("id")) for rel in files if (m := input_rx.fullmatch(rel))
             and Path(rel).suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise UserError(f"{root}: no image matches the input pattern '{input}'")
    by_id = not re.search(r"[*?]", input)  # one input per id: name the pair by it
    pairs = []
    for rel, key in found:
        hits = _fitting(files, target, key)
        p = root / rel
        if not hits:
            raise UserError(f"{p}: cannot be paired: no {target.replace('{id}', key)} under {root}")
        if len(hits) > 1:
            raise UserError(f"{p}: cannot be paired: {hits[0]} and {hits[1]} both fit the target pattern "
                            f"'{target}'")
        pairs.append(Pair(p, root / hits[0], key if by_id else Path(rel).stem, key))
    return pairs


def _fitting(files: list[str], template: str, key: str) -> list[str]:
    """The paths of the sorted ``files`` that fit ``template`` with ``{id}`` = ``key``; only
    those sharing the template's literal start are tried (ITS: 14k inputs, 14k files)."""
    rx = _template_regex(template, "target", re.escape(key))
    prefix = re.split(r"[*?]", template.replace("{id}", key), maxsplit=1)[0]
    hits = []
    for rel in files[bisect.bisect_left(files, prefix):]:
        if not rel.startswith(prefix):
            break
        if rx.fullmatch(rel):
            hits.append(rel)
    return hits


add_layout("nh_haze", nh_haze_pairs, "haze")
add_layout("reside", reside_pairs, "haze")
add_layout("paired_folder", paired_folder_pairs)
add_layout("pattern", pattern_pairs)
