"""Export a run's student alone, for deployment: ONNX, safetensors or TorchScript.

Only the student network is exported (the weights the trainer saved in
``<run>/student.safetensors``, else its best/last checkpoint); teachers and connectors never
are. ONNX and TorchScript files take any batch size; when the student's output is a map
(segmentation logits, a restored image) also any height and width (ONNX axes "batch",
"height", "width"). The file is checked against PyTorch before it is kept: ONNX with
onnxruntime, TorchScript and safetensors by reloading them, on a batch of another size than
the traced one and, for map outputs, at a second input size too. An output passes when every
element satisfies |exported - pytorch| <= atol + rtol * |pytorch| (defaults atol 1e-4,
rtol 1e-3; ``--atol`` / ``--rtol``). The metadata of ``kdvision.student_metadata`` goes into
the file (ONNX metadata_props, safetensors metadata, TorchScript extra file "kdvision.json").
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.export_files import check_destination, publish, staged
from kdvision.student_metadata import student_metadata

FORMATS = ("onnx", "safetensors", "torchscript")
ATOL, RTOL = 1e-4, 1e-3


class MainOutput(nn.Module):
    """The model's main prediction as one tensor (a dict's "out", a tuple's first element)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from kdvision.outputs import main_output

        return main_output(self.model(x))


def run_config(run_dir: str | Path):
    from kdvision.config import load_config

    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise UserError(f"run directory not found: {run}")
    if not (run / "config.yaml").is_file():
        raise UserError(f"{run}: no config.yaml (is it a kdvision run directory?)")
    return load_config(run / "config.yaml")


def create_student(cfg, task, weights: dict[str, torch.Tensor] | None = None,
                   num_classes: int | None = None) -> nn.Module:
    """The student architecture of ``cfg``. Facts it takes from the data set (num_classes, ...)
    come from the data when it is at hand, else num_classes is ``num_classes`` (what the trainer
    stored in student.safetensors) or read off the weights."""
    from kdvision.model_build import build_model, build_model_for_weights

    try:
        return task.create_model(cfg.student, "student")
    except UserError:
        if weights is None:
            raise
    if num_classes:
        return build_model(cfg.student, "student", cfg.source, cfg.task, {"num_classes": num_classes})
    return build_model_for_weights(cfg.student, "student", cfg.source, cfg.task, weights)


def input_shape(task, given: tuple[int, ...] | None) -> tuple[int, ...]:
    """(C, H, W) of one input: ``given``, else the shape of the first validation item."""
    if given:
        return tuple(given)
    try:
        item = task.datasets()["val"][0]
    except UserError as e:
        raise UserError(f"the input size comes from the data set, which is not available ({e}); "
                        f"pass --input-size C,H,W") from None
    return tuple(item["input"].shape)


def load_run_student(run_dir: str | Path):
    """(student in eval mode with the run's weights, the run's config, its task)."""
    from kdvision.engine.build import build_task
    from kdvision.engine.weights import load_state_dict_file, load_weights_into, resolve_weights_file

    cfg = run_config(run_dir)
    task = build_task(cfg)
    weights_file = resolve_weights_file(run_dir)
    stored = trained_metadata(run_dir).get("num_classes", "")
    model = create_student(cfg, task, load_state_dict_file(weights_file), int(stored) if stored.isdigit() else None)
    load_weights_into(model, weights_file, f"student ({cfg.student['name']})")
    return model.eval(), cfg, task


def check_input_fits(net: nn.Module, shape: tuple[int, ...], name: str, given: bool) -> None:
    """One forward at ``shape``: an input the student cannot take is a user error, before anything is written."""
    try:
        with torch.no_grad():
            net(torch.zeros(1, *shape))
    except RuntimeError as e:
        what = "--input-size" if given else "the data set's input"
        size = ",".join(str(d) for d in shape)
        raise UserError(f"{what} {size} does not fit the student ({name}): {str(e).splitlines()[0]}") from None


def check_inputs(net: nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, list[torch.Tensor], bool]:
    """(the traced input: batch 2 at ``shape``; the check inputs; whether H and W are dynamic).

    Checks run at batch 3 and, when the output is a map and PyTorch runs the student at a second
    size (both sides changed by the model's ``input_multiple``, default 32), at batch 1 there."""
    c, h, w = shape
    torch.manual_seed(0)
    traced_with = torch.randn(2, *shape)
    checks = [torch.randn(3, *shape)]
    with torch.no_grad():
        dense = net(traced_with).dim() == 4
    if not dense:
        return traced_with, checks, False
    step = int(getattr(net.model, "input_multiple", 0) or 32)
    floor = max(step, int(getattr(net.model, "min_input_size", 1)))
    second = torch.randn(1, c, h - step if h - step >= floor else h + step, w + 2 * step)
    try:
        with torch.no_grad():
            net(second)
    except RuntimeError:  # the student runs at the traced size only: export a fixed height and width
        return traced_with, checks, False
    return traced_with, checks + [second], True


def parity(got: torch.Tensor, want: torch.Tensor, atol: float, rtol: float) -> dict:
    """{"max_abs_diff", "ratio": max |got - want| / (atol + rtol |want|), "ok": ratio <= 1}."""
    if got.shape != want.shape:
        return {"max_abs_diff": float("inf"), "ratio": float("inf"), "ok": False,
                "shape": f"shape {list(got.shape)} instead of {list(want.shape)}"}
    diff = (got.double() - want.double()).abs()
    ratio = diff / (atol + rtol * want.double().abs())
    worst = float(ratio.max()) if ratio.numel() else 0.0
    ok = bool(torch.isfinite(got).all() == torch.isfinite(want).all()) and worst <= 1.0
    return {"max_abs_diff": float(diff.max()) if diff.numel() else 0.0, "ratio": worst, "ok": ok}


def trained_metadata(run_dir: str | Path) -> dict[str, str]:
    """Class names and mean/std the trainer stored in ``<run>/student.safetensors``, so an export
    on a machine without the data set still carries them ({} when there is no such file)."""
    from safetensors import safe_open

    path = Path(run_dir).expanduser() / "student.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = f.metadata() or {}
    except Exception:  # noqa: BLE001  (absent or unreadable: the weights loader reports real problems)
        return {}
    return {k: v for k, v in stored.items() if k in ("class_names", "num_classes", "mean", "std")}


def export_student(run_dir: str | Path, fmt: str, out: str | Path, size: tuple[int, ...] | None = None,
                   opset: int = 17, atol: float = ATOL, rtol: float = RTOL, force: bool = False) -> dict:
    """Write the student in ``fmt`` to ``out`` if it passes its check; returns what was done."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    out = Path(out).expanduser()
    check_destination(out, Path(run_dir), force)
    model, cfg, task = load_run_student(run_dir)
    shape = input_shape(task, size)
    net = MainOutput(model).eval()
    check_input_fits(net, shape, cfg.student["name"], size is not None)
    traced_with, inputs, dynamic = check_inputs(net, shape)
    with torch.no_grad():
        expected = [net(x) for x in inputs]
    meta = {**student_metadata(cfg, task, shape), **trained_metadata(run_dir)}
    meta["dynamic_axes"] = "batch,height,width" if dynamic else "batch"
    try:
        with staged(out) as tmp:
            if fmt == "onnx":
                got = _export_onnx(net, traced_with, inputs, tmp, opset, dynamic, meta)
            elif fmt == "torchscript":
                got = _export_torchscript(net, traced_with, inputs, tmp, meta)
            else:
                got = _export_safetensors(model, cfg, task, inputs, tmp, meta)
            checks = []
            for x, g, e in zip(inputs, got, expected):
                check = {"input": list(x.shape), **parity(g, e, atol, rtol)}
                checks.append(check)
                if not check["ok"]:
                    what = check.get("shape") or (f"max |diff| {check['max_abs_diff']:.3g} is {check['ratio']:.3g} "
                                                  f"times the tolerance atol {atol:g} + rtol {rtol:g} * |pytorch|")
                    raise UserError(f"--out {out}: the exported student does not match PyTorch at input "
                                    f"{list(x.shape)}: {what}; nothing was written")
            publish(tmp, out, force)
    except OSError as e:  # a read-only folder, a full disk: the temporary file is gone, --out untouched
        raise UserError(f"cannot write --out {out}: {e.strerror or e}; nothing was written") from None
    return {"format": fmt, "path": str(out), "model": cfg.student["name"], "input_shape": list(shape),
            "parameters": sum(p.numel() for p in model.parameters()), "dynamic": dynamic,
            "max_abs_diff": max(c["max_abs_diff"] for c in checks), "checks": checks, "atol": atol, "rtol": rtol,
            "checked_batch": int(inputs[0].shape[0]), "bytes": out.stat().st_size, "metadata": meta}


def _export_onnx(net, traced_with, inputs, out: Path, opset: int, dynamic: bool, meta: dict) -> list[torch.Tensor]:
    import onnx
    import onnxruntime as ort

    axes_in, axes_out = {0: "batch"}, {0: "batch"}
    if dynamic:
        axes_in.update({2: "height", 3: "width"})
        axes_out.update({2: "out_height", 3: "out_width"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (traced_with,), str(out), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes_in, "output": axes_out})
    graph = onnx.load(str(out))
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(session.run(None, {"input": x.numpy()})[0]) for x in inputs]


def _export_torchscript(net, traced_with, inputs, out: Path, meta: dict) -> list[torch.Tensor]:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(copy.deepcopy(net), traced_with)
        scripted.save(str(out), _extra_files={"kdvision.json": json.dumps(meta)})
        loaded = torch.jit.load(str(out))
        return [loaded(x) for x in inputs]


def _export_safetensors(model, cfg, task, inputs, out: Path, meta: dict) -> list[torch.Tensor]:
    from safetensors.torch import load_file

    from kdvision.engine.checkpoint import save_safetensors

    save_safetensors(model.state_dict(), out, metadata=meta)
    stored = meta.get("num_classes", "")
    fresh = create_student(cfg, task, load_file(str(out)), int(stored) if stored.isdigit() else None)
    fresh.load_state_dict(load_file(str(out)))
    with torch.no_grad():
        return [MainOutput(fresh.eval())(x) for x in inputs]
