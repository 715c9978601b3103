"""How the public multi-weather data sets pair a degraded image with its ground truth.

Each layout is an entry of the restoration package's registry (``LAYOUTS`` in
``kdvision.data.restoration.paired_layouts``), named as in configs, with the weather type its
folders hold; the Allweather list files have a reader of their own (``allweather_pairs``).
Anything that cannot be paired is named in a one-line ``UserError``. What is assumed about
each layout (the usual distributions):

- Allweather (TransWeather, CVPR 2022): a text file listing input paths, one a line, relative
  to the data root (leading "/" or "./" allowed, e.g. ``/allweather/input/im_0001.png``); the
  ground truth is the same path with "input" replaced by "gt" (as TransWeather's loader does).
- CSD (Chen et al., ICCV 2021): ``<split>/Snow/x.tif`` <-> ``<split>/Gt/x.tif``, same names;
  ``split`` is e.g. ``train2500`` or ``test2000`` (or CSD's own ``Train`` / ``Test``).
- Snow100K (Liu et al., TIP 2018): ``synthetic/x.jpg`` <-> ``gt/x.jpg``, same names; the
  ``mask/`` folder beside them is not needed and not read.
- Rain100H / Rain100L (Yang et al., CVPR 2017): ``rain-XXX.png`` <-> ``norain-XXX.png``, found
  anywhere under the folder (one folder, or ``rain/`` and ``norain/`` sub-folders); the
  ``rain-XXXx2.png`` variant of some copies pairs with ``norain-XXX.png`` too.
- Rain13K (MPRNet's combined training set) and its test sets: ``input/x`` <-> ``target/x``.
- Rain1400 (Fu et al., CVPR 2017, "DDN-Data"): ``rainy_image/901_1.jpg`` .. ``901_14.jpg`` <->
  ``ground_truth/901.jpg``: paired on the number before the first "_".
- Outdoor-Rain (Li et al., CVPR 2019, heavy rain with fog): ``in/im_0001_s80_a04.png`` (or
  ``input/``) <-> ``gt/im_0001.png``: the target is the file whose stem is the input's stem or
  its first two "_" fields (``im_0001``).
- RainDrop (Qian et al., CVPR 2018): ``data/NN_rain.png`` (or ``input/``) <-> ``gt/NN_clean.png``:
  paired on the number before the first "_", or on identical names.
"""
from __future__ import annotations

import re
from pathlib import Path

from kdvision.data.restoration.images import IMAGE_SUFFIXES, list_images
from kdvision.data.restoration.paired_layouts import Pair, add_layout, paired_folder_pairs
from kdvision.errors import UserError


def allweather_pairs(root: str | Path, list_file: str | Path) -> list[Pair]:
    """TransWeather list file: input paths relative to ``root``; target = "input" -> "gt"."""
    root = Path(root)
    lf = Path(list_file)
    if not lf.is_absolute() and not lf.is_file():
        lf = root / lf
    if not lf.is_file():
        raise UserError(f"Allweather list file not found: {list_file} (looked in . and {root})")
    pairs = []
    for n, line in enumerate(lf.read_text().splitlines(), 1):
        rel = line.strip()
        if not rel:
            continue
        if "input" not in rel:
            raise UserError(f"{lf}:{n}: '{rel}' has no 'input' in its path, so no ground truth can be derived")
        inp = root / rel.lstrip("/").removeprefix("./")
        gt = root / rel.replace("input", "gt").lstrip("/").removeprefix("./")
        for p, what in ((inp, "input"), (gt, "ground truth")):
            if not p.is_file():
                raise UserError(f"{lf}:{n}: {what} image not found: {p}")
        pairs.append(Pair(inp, gt, inp.stem, inp.stem))
    if not pairs:
        raise UserError(f"{lf}: the list file names no images")
    return pairs


_RAIN100 = re.compile(r"^(no)?rain-(\d+)(x\d+)?$", re.IGNORECASE)


def rain100_pairs(root: str | Path) -> list[Pair]:
    """Rain100H/L: ``rain-XXX`` <-> ``norain-XXX`` anywhere under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"Rain100 folder not found: {root}")
    rainy: dict[str, Path] = {}
    clean: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _RAIN100.match(p.stem)
        if not m:
            raise UserError(f"{p}: cannot be paired: Rain100 names are rain-XXX and norain-XXX")
        key = str(int(m.group(2)))
        side = clean if m.group(1) else rainy
        if key in side:
            raise UserError(f"{p}: cannot be paired: {side[key]} has the same number")
        side[key] = p
    for key, p in rainy.items():
        if key not in clean:
            raise UserError(f"{p}: cannot be paired: no norain-{key} under {root}")
    if not rainy:
        raise UserError(f"{root}: no rain-XXX images found")
    return [Pair(rainy[k], clean[k], rainy[k].stem, k) for k in sorted(rainy, key=int)]


def _first_dir(root: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        if (root / n).is_dir():
            return root / n
    raise UserError(f"{root}: no {what} folder (looked for {', '.join(n + '/' for n in names)})")


def _prefix_pairs(root: Path, input_names: tuple[str, ...], keys, what: str,
                  gt_names: tuple[str, ...] = ("gt", "GT", "target")) -> list[Pair]:
    """Inputs paired with the ``gt/`` file whose stem is one of ``keys(input_stem)``, in order."""
    inp_dir = _first_dir(root, input_names, f"{what} input")
    gt_dir = _first_dir(root, gt_names, f"{what} ground-truth")
    targets = {p.stem: p for p in list_images(gt_dir, f"{what} ground-truth folder")}
    pairs = []
    for p in list_images(inp_dir, f"{what} input folder"):
        found = next((k for k in keys(p.stem) if k in targets), None)
        if found is None:
            raise UserError(f"{p}: cannot be paired: no {gt_dir.name}/{' or '.join(keys(p.stem))}.*")
        pairs.append(Pair(p, targets[found], p.stem, found))
    return pairs


def outdoor_rain_pairs(root: str | Path) -> list[Pair]:
    """Outdoor-Rain: ``in/im_0001_s80_a04`` <-> ``gt/im_0001`` (or identical names)."""
    def keys(stem: str) -> list[str]:
        return [stem, "_".join(stem.split("_")[:2])]
    return _prefix_pairs(Path(root), ("in", "input"), keys, "Outdoor-Rain")


def raindrop_pairs(root: str | Path) -> list[Pair]:
    """RainDrop: ``data/NN_rain`` <-> ``gt/NN_clean`` (or identical names)."""
    def keys(stem: str) -> list[str]:
        number = stem.split("_")[0]
        return [stem, f"{number}_clean", number]
    return _prefix_pairs(Path(root), ("data", "input"), keys, "RainDrop")


def rain1400_pairs(root: str | Path) -> list[Pair]:
    """Rain1400 (DDN-Data): ``rainy_image/901_1.jpg`` <-> ``ground_truth/901.jpg`` (14 rainy
    versions of each clean image, numbered after the "_")."""
    def keys(stem: str) -> list[str]:
        return [stem, stem.split("_")[0]]
    return _prefix_pairs(Path(root), ("rainy_image", "input"), keys, "Rain1400", ("ground_truth", "gt", "target"))


add_layout("csd", paired_folder_pairs, "snow", "CSD split folder: Snow/x <-> Gt/x.",
           input_dir="Snow", target_dir="Gt")
add_layout("snow100k", paired_folder_pairs, "snow", "Snow100K folder: synthetic/x <-> gt/x (mask/ ignored).",
           input_dir="synthetic", target_dir="gt")
add_layout("rain13k", paired_folder_pairs, "rain", "Rain13K (and MPRNet's test sets): input/x <-> target/x.",
           input_dir="input", target_dir="target")
add_layout("rain100", rain100_pairs, "rain")
add_layout("rain1400", rain1400_pairs, "rain")
add_layout("outdoor_rain", outdoor_rain_pairs, "rain_fog")
add_layout("raindrop", raindrop_pairs, "raindrop")
