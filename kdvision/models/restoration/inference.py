"""Running a restoration network on images of any size: reflection padding to the network's
multiple, cropping back, the x8 self-ensemble and overlapping tiles for large images.

x8 self-ensemble (Lim et al., EDSR, CVPRW 2017; used at test time by KTDN and SRKTDN): the
network restores the 8 flips/transposes of the input; the results are mapped back and averaged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError


def main_tensor(output) -> torch.Tensor:
    if isinstance(output, dict):
        return output["out"]
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def network_multiple(model: nn.Module, multiple: int | None = None) -> tuple[int, int]:
    """(side multiple, minimum side) the model needs: ``multiple`` or ``model.input_multiple``."""
    return int(multiple or getattr(model, "input_multiple", 1)), int(getattr(model, "min_input_size", 1))


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad an NCHW tensor at the bottom and right so that both sides are multiples of
    ``multiple`` and at least ``min_size``: reflection where the image is large enough,
    replication otherwise. Returns the padded tensor and the original (H, W)."""
    h, w = x.shape[-2:]
    th = max(math.ceil(h / multiple) * multiple, math.ceil(min_size / multiple) * multiple)
    tw = max(math.ceil(w / multiple) * multiple, math.ceil(min_size / multiple) * multiple)
    ph, pw = th - h, tw - w
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _forward_transform(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def _inverse_transform(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    return x


@torch.no_grad()
def restore(model: nn.Module, x: torch.Tensor, multiple: int | None = None, self_ensemble: bool = False,
            clamp: bool = True) -> torch.Tensor:
    """The model's restoration of an NCHW batch in [0, 1], at the input's own size (float32)."""
    step, min_size = network_multiple(model, multiple)
    padded, (h, w) = pad_to_multiple(x, step, min_size)
    if self_ensemble:
        out = sum(_inverse_transform(main_tensor(model(_forward_transform(padded, k))).float(), k)
                  for k in range(8)) / 8
    else:
        out = main_tensor(model(padded)).float()
    out = out[..., :h, :w]
    return out.clamp(0, 1) if clamp else out


def check_tiling(tile: int, overlap: int, multiple: int = 1) -> None:
    """``tile`` 0 (whole images) or a positive multiple of the network's ``multiple``, and
    0 <= ``overlap`` < ``tile``: a negative overlap would leave gaps between tiles."""
    if tile < 0 or (tile and tile % multiple):
        hint = f" (e.g. {max(multiple, tile // multiple * multiple)})" if multiple > 1 else ""
        raise UserError(f"--tile {tile}: must be 0 (no tiling) or a positive multiple of {multiple}, "
                        f"the network's input multiple{hint}")
    if overlap < 0 or (tile and overlap >= tile):
        raise UserError(f"--overlap {overlap}: must be at least 0 and smaller than --tile {tile}")


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weights of a tile: linear ramps over ``overlap`` pixels on inner edges."""
    w = torch.ones(length)
    if overlap > 0:
        ramp = (torch.arange(overlap, dtype=torch.float32) + 1) / (overlap + 1)
        if not at_start:
            w[:overlap] = ramp
        if not at_end:
            w[length - overlap:] = ramp.flip(0)
    return w


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


@torch.no_grad()
def restore_tiled(model: nn.Module, x: torch.Tensor, tile: int, overlap: int = 32, multiple: int | None = None,
                  self_ensemble: bool = False) -> torch.Tensor:
    """Restore a large NCHW image tile by tile (``tile`` x ``tile``, overlapping by ``overlap``),
    blending overlaps with linear weights; images no larger than ``tile`` go through whole."""
    h, w = x.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return restore(model, x, multiple, self_ensemble)
    out = torch.zeros(x.shape[0], 3, h, w, dtype=torch.float32, device=x.device)
    weight = torch.zeros(1, 1, h, w, dtype=torch.float32, device=x.device)
    tops, lefts = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for top in tops:
        for left in lefts:
            th, tw = min(tile, h - top), min(tile, w - left)
            piece = restore(model, x[..., top:top + th, left:left + tw], multiple, self_ensemble, clamp=False)
            wy = _ramp(th, overlap, top == 0, top + th >= h).to(x.device)
            wx = _ramp(tw, overlap, left == 0, left + tw >= w).to(x.device)
            wt = (wy[:, None] * wx[None, :])[None, None]
            out[..., top:top + th, left:left + tw] += piece * wt
            weight[..., top:top + th, left:left + tw] += wt
    return (out / weight).clamp(0, 1)
