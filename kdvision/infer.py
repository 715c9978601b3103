"""Restore a folder of a user's images with a trained restoration network (``kdvision infer``).

Every image is restored at its own size: padded with reflection to the network's multiple
(``model.input_multiple``) and cropped back, and split into overlapping tiles when larger than
``tile`` pixels (blended linearly in the overlaps). Outputs are PNG files named after the
inputs. Nothing is ever overwritten: an output folder equal to the input folder, or any output
file that already exists, is refused before anything is written; so are a tile/overlap that
would leave gaps and any input that cannot be decoded (or, as the user chooses, it is skipped
and listed).
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import nn

from kdvision.data.restoration.images import list_images, read_image, to_tensor, to_uint8
from kdvision.errors import UserError
from kdvision.models.restoration.inference import check_tiling, network_multiple, restore_tiled


def planned_outputs(inputs: list[Path], out_dir: Path) -> list[Path]:
    """``out_dir/<stem>.png`` for every input; refuses name clashes and existing files."""
    outputs, seen = [], {}
    for p in inputs:
        target = out_dir / f"{p.stem}.png"
        if target.name in seen:
            raise UserError(f"{p}: its output {target} would also be the output of {seen[target.name]}")
        seen[target.name] = p
        if target.exists():
            raise UserError(f"{target} already exists; kdvision infer never overwrites files "
                            f"(choose an empty --out folder)")
        outputs.append(target)
    return outputs


def check_folders(input_dir: Path, out_dir: Path) -> list[Path]:
    """The input images and their planned outputs; refuses anything that could overwrite."""
    inputs = list_images(input_dir, "--input folder")
    if not inputs:
        raise UserError(f"{input_dir}: no images to restore")
    if out_dir.exists() and out_dir.resolve() == input_dir.resolve():
        raise UserError(f"--out {out_dir} is the input folder; choose another folder so no input is overwritten")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")
    return planned_outputs(inputs, out_dir)


def check_inputs(inputs: list[Path], skip_bad: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Decode every input before anything is written: (readable inputs, [(skipped input, reason)]).
    Without ``skip_bad`` the first unreadable image stops the command, naming it."""
    good, bad = [], []
    for p in inputs:
        try:
            read_image(p, upright=True)
            good.append(p)
        except UserError as e:
            bad.append((p, str(e)))
    if bad and not good:
        raise UserError(f"{bad[0][1]}; no input image is readable, nothing was written")
    if bad and not skip_bad:
        others = f" ({len(bad)} of {len(inputs)} inputs unreadable)" if len(bad) > 1 else ""
        raise UserError(f"{bad[0][1]}{others}; nothing was written (--skip-bad restores the readable ones)")
    return good, bad


@torch.no_grad()
def restore_folder(model: nn.Module, input_dir: str | Path, out_dir: str | Path, multiple: int | None = None,
                   tile: int = 1024, overlap: int = 32, device: str | torch.device = "cpu",
                   self_ensemble: bool = False, progress: bool = True, skip_bad: bool = False,
                   skipped: list | None = None) -> list[Path]:
    """Restore every image of ``input_dir`` into ``out_dir`` (created if needed) as PNG.

    ``multiple``: pad sides to this multiple (default: ``model.input_multiple``); ``tile``:
    largest side restored in one piece (0: never tile), a multiple of ``multiple``. Every input is
    decoded first: an unreadable one stops before anything is written, or with ``skip_bad`` is
    left out and appended to ``skipped`` as (path, reason). Returns the written files.
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    outputs = check_folders(input_dir, out_dir)
    inputs = list_images(input_dir, "--input folder")
    check_tiling(tile, overlap, network_multiple(model, multiple)[0])
    good, bad = check_inputs(inputs, skip_bad)
    if skipped is not None:
        skipped.extend(bad)
    device = torch.device(device)
    model = model.to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    written = []
    readable = set(good)
    todo = [(src, dst) for src, dst in zip(inputs, outputs) if src in readable]
    for src, dst in tqdm(todo, desc="restoring", unit="image", disable=not progress):
        x = to_tensor(read_image(src, upright=True))[None].to(device)
        y = restore_tiled(model, x, tile, overlap, multiple, self_ensemble)[0]
        with open(dst, "xb") as f:  # "x": fail rather than overwrite a file that appeared meanwhile
            Image.fromarray(to_uint8(y)).save(f, format="PNG")
        written.append(dst)
    return written


def restore_folder_from_config(cfg, checkpoint: str, input_dir: str | Path, out_dir: str | Path,
                               tile: int = 1024, overlap: int = 32, self_ensemble: bool | None = None,
                               device: str | None = None, progress: bool = True, skip_bad: bool = False,
                               skipped: list | None = None) -> list[Path]:
    """``kdvision infer CONFIG --checkpoint PATH --input DIR --out DIR``: build the config's
    student, load ``checkpoint`` (a run directory, kdvision checkpoint, state dict or
    safetensors file) and restore the folder. ``self_ensemble`` and the padding multiple default
    to the config's ``eval`` section; ``device`` to ``train.device``. No data set is read."""
    from kdvision.engine.build import build_task
    from kdvision.engine.runtime import pick_device
    from kdvision.engine.weights import load_weights_into

    if cfg.task != "restoration":
        raise UserError(f"{cfg.source}: kdvision infer restores images; the config's task is '{cfg.task}', "
                        f"not 'restoration'")
    check_folders(Path(input_dir), Path(out_dir))  # fail before loading anything
    check_tiling(tile, overlap)  # the network's multiple is checked once the model is built
    task = build_task(cfg)
    model = task.create_model(cfg.student, "student")
    load_weights_into(model, checkpoint, f"--checkpoint ({cfg.student['name']})")
    options = task.options
    ensemble = options.self_ensemble if self_ensemble is None else self_ensemble
    return restore_folder(model, input_dir, out_dir, options.multiple or None, tile, overlap,
                          pick_device(device or cfg.train.device), ensemble, progress, skip_bad, skipped)
