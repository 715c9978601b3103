"""Paired restoration data sets read from disk: "paired" (any layout of
``kdvision.data.restoration.paired_layouts``, named by ``data.layout``) and the presets
"nh_haze", "reside" and "paired_folder" (that layout fixed).

Each builder takes the folder (``root``), the training crop size and split options, checks
every pair up front (both files decodable headers, equal sizes, at least the crop) and
returns {"train", "val", "test"}. The test split is ``test_root`` when given (e.g. SOTS next
to ITS), else the scenes named in ``test_ids``, else the last ``test_count`` scenes of
``root``; "val" is the test split (the public sets have no separate validation ground truth).
Test items are whole images (evaluate with ``data.eval_batch_size: 1`` when sizes differ).

``autoencoder: true`` makes every input its own target (input = clean image): the data for
the KTDN teacher, which learns to reconstruct clear images (Wu et al., CVPRW 2020, Sec. 3).
"""
from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import Dataset

from kdvision.config_checks import Crop, NonNegativeInt, PositiveInt
from kdvision.data.restoration.images import image_size, read_image, to_tensor
from kdvision.data.restoration.paired_layouts import LAYOUTS, Pair, get_layout
from kdvision.data.restoration.paired_transforms import PairedTransform
from kdvision.errors import UserError
from kdvision.registry import DATASETS


class PairedImageDataset(Dataset):
    """Items {"input", "target", "name"}; with a crop, every item is a random aligned crop.

    ``repeat`` lists each pair that many times per epoch (fresh random crops each time), so
    that an epoch of a 25-image set can be a useful number of steps.
    """

    def __init__(self, pairs: list[Pair], transform: PairedTransform | None = None, repeat: PositiveInt = 1,
                 autoencoder: bool = False, cache: bool = False):
        self.pairs = list(pairs)
        self.transform = transform
        self.repeat = repeat
        self.autoencoder = autoencoder
        self.cache: dict[Path, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def _load(self, path: Path) -> torch.Tensor:
        if self.cache is None:
            return to_tensor(read_image(path))
        if path not in self.cache:
            self.cache[path] = to_tensor(read_image(path))
        return self.cache[path]

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index % len(self.pairs)]
        target = self._load(pair.target)
        inp = target if self.autoencoder else self._load(pair.input)
        if inp.shape != target.shape:  # the files changed after the check
            raise UserError(f"{pair.input}: size {tuple(inp.shape[1:])} differs from {pair.target} "
                            f"{tuple(target.shape[1:])}")
        if self.transform is not None:
            inp, target = self.transform(inp, target)
        return {"input": inp, "target": target, "name": pair.name}


def check_pairs(pairs: list[Pair], min_size: int = 0) -> None:
    """Both images of every pair are readable, of one size, and no smaller than ``min_size``."""
    for pair in pairs:
        size_in, size_gt = image_size(pair.input), image_size(pair.target)
        if size_in != size_gt:
            raise UserError(f"{pair.input}: size {size_in[0]}x{size_in[1]} differs from its target "
                            f"{pair.target} ({size_gt[0]}x{size_gt[1]})")
        if min(size_in) < min_size:
            raise UserError(f"{pair.input}: {size_in[0]}x{size_in[1]} is smaller than the crop "
                            f"{min_size} (set data.crop lower)")


def _find_group(scene, groups: list[str], where: str) -> str:
    """The group named ``scene``; a number also matches zero-padded names (3 -> "03")."""
    text = str(scene)
    if text in groups:
        return text
    if text.isdigit():
        for g in groups:
            if g.isdigit() and int(g) == int(text):
                return g
    raise UserError(f"data.test_ids: scene '{text}' is not in {where} (scenes look like: {', '.join(groups[:3])})")


def split_pairs(pairs: list[Pair], test_ids: list | None, test_count: int,
                where: str) -> tuple[list[Pair], list[Pair]]:
    """Hold out whole scenes (groups): the named ``test_ids`` or else the last ``test_count``."""
    groups = list(dict.fromkeys(p.group for p in pairs))
    if test_ids:
        held = [_find_group(t, groups, where) for t in test_ids]
    else:
        if test_count < 0 or test_count >= len(groups):
            raise UserError(f"data.test_count: {test_count} test scenes leave nothing to train on in "
                            f"{where} ({len(groups)} scenes)")
        held = groups[len(groups) - test_count:] if test_count else []
    held_set = set(held)
    train = [p for p in pairs if p.group not in held_set]
    test = [p for p in pairs if p.group in held_set]
    if not train:
        raise UserError(f"data.test_ids: every scene of {where} is held out for testing")
    return train, test


@DATASETS.register("paired")
def paired(seed: int, root: str, layout: str = "paired_folder", crop: Crop = 256, test_root: str = "",
           test_ids: Optional[list] = None, test_count: NonNegativeInt = 5, repeat: PositiveInt = 1, flips: bool = True,
           transposes: bool = True, autoencoder: bool = False, cache: bool = False, **layout_options) -> dict:
    """Pairs of any registered layout (data.layout), e.g. pattern with input/target templates.

    The layout's options are keys of ``data``, e.g. ``layout: pattern, input: "hazy/{id}_*.png",
    target: "clear/{id}.png"``."""
    entry = get_layout(layout, "data.layout")
    common = tuple(inspect.signature(paired).parameters)[1:-1]
    pairs = entry.pairs(root, layout_options, "data", common)
    if not pairs:
        raise UserError(f"{root}: no image pairs found")
    if test_root:
        if test_ids:
            raise UserError("data.test_ids and data.test_root: give one of them, not both")
        train, test = pairs, entry.pairs(test_root, layout_options, "data", common)
        if not test:
            raise UserError(f"{test_root}: no image pairs found")
    else:
        train, test = split_pairs(pairs, test_ids, test_count, root)
    check_pairs(train, crop)
    check_pairs(test)
    transform = PairedTransform(crop, flips, transposes)
    train_set = PairedImageDataset(train, transform, repeat, autoencoder, cache)
    test_set = PairedImageDataset(test, None, 1, autoencoder, cache)
    return {"train": train_set, "val": test_set, "test": test_set}


def _preset(name: str, doc: str) -> Callable[..., dict]:
    """The data set ``name``: ``paired`` with ``layout: name``; the layout's options are
    keyword arguments of its own (so that configs are checked against one signature)."""
    entry = LAYOUTS.get(name)

    def build(seed: int, root: str, **options) -> dict:
        return paired(seed, root, name, **options)

    params = [p for p in inspect.signature(paired).parameters.values()
              if p.name != "layout" and p.kind is not p.VAR_KEYWORD]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in entry.parameters()]
    hints = {k: v for k, v in typing.get_type_hints(paired).items() if k not in ("layout", "layout_options")}
    build.__signature__ = inspect.Signature(params)
    build.__annotations__ = {**hints, **entry.hints()}
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return DATASETS.register(name)(build)


nh_haze = _preset("nh_haze", "NH-HAZE / NH-HAZE2 / Dense-HAZE: NN_hazy <-> NN_GT in one folder.")
reside = _preset("reside", 'RESIDE ITS/SOTS: hazy/1_1_0.90179.png -> clear/1.png or gt/1.png (prefix before "_").')
paired_folder = _preset("paired_folder", "Generic pairs: root/input/x.png <-> root/target/x.png (same file names).")
