"""How the public restoration data sets pair a degraded image with its ground truth.

Each function reads a folder tree and returns ``Pair`` records; any file that cannot be
paired is named in a one-line ``UserError``.

- NH-HAZE / NH-HAZE2 / Dense-HAZE: one folder, ``NN_hazy.png`` <-> ``NN_GT.png``.
- RESIDE: ``hazy/1_1_0.90179.png`` -> ``clear/1.png`` (ITS), ``hazy/1400_1.png`` -> ``gt/1400.png``
  (SOTS indoor), ``hazy/0001_0.8_0.2.jpg`` -> ``gt/0001.png`` (SOTS outdoor): the target is the
  file whose stem is the input's prefix before the first "_"; several inputs may share one.
- Generic paired folders: ``input/x.png`` <-> ``target/x.png`` (same file names).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdvision.data.restoration.images import list_images
from kdvision.errors import UserError


@dataclass(frozen=True)
class Pair:
    input: Path
    target: Path
    name: str  # shown in reports and used for output file names
    group: str  # the scene: pairs of one group are never split between train and test


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
