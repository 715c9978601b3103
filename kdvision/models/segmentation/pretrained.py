"""Load a local ImageNet state dict into a segmentation backbone (nothing is downloaded)."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.safe_load import check_dtypes, read_torch_file

#: keys of ImageNet classifiers that a segmentation backbone does not have
HEAD_KEYS = re.compile(r"^(fc|classifier|features\.18|last_conv)\.")
#: torchvision MobileNetV2 ``features.N`` -> this package's stage blocks
MBV2_BLOCKS = (["stem.0", "stem.1"] + [f"layer1.{i}" for i in range(2)] + [f"layer2.{i}" for i in range(3)]
               + [f"layer3.{i}" for i in range(7)] + [f"layer4.{i}" for i in range(4)])


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pretrained backbone file not found: {path}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(p))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
            raise UserError(f"{path}: cannot read a state dict ({type(e).__name__}: {e})".splitlines()[0]) from None
    else:
        state = read_torch_file(p, "a state dict")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    return state


def torchvision_mbv2_key(key: str) -> str:
    m = re.match(r"features\.(\d+)\.(.*)", key)
    if not m:
        return key
    i = int(m.group(1))
    return f"{MBV2_BLOCKS[i]}.{m.group(2)}" if i < len(MBV2_BLOCKS) else key


def load_backbone_state(backbone: nn.Module, path: str) -> None:
    """Copy an ImageNet state dict into ``backbone``: every backbone tensor must be found.

    Accepts torchvision layouts (ResNet ``conv1/layerN``, MobileNetV2 ``features.N``),
    optionally wrapped in {"state_dict"|"model": ...} and prefixed by "module." or "backbone.".
    """
    state = {}
    for k, v in read_state_dict(path).items():
        k = re.sub(r"^(module\.|backbone\.)+", "", k)
        if HEAD_KEYS.match(k):
            continue
        state[torchvision_mbv2_key(k)] = v
    own = backbone.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(f"{path}: does not fit the {type(backbone).__name__} backbone: {what}")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise UserError(f"{path}: tensor '{bad[0]}' has shape {tuple(state[bad[0]].shape)}, "
                        f"the backbone expects {tuple(own[bad[0]].shape)} (wrong depth or width?)")
    check_dtypes(state, own, str(path))
    backbone.load_state_dict(state)
