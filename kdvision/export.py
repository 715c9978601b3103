"""Export a run's student alone, for deployment: ONNX, safetensors or TorchScript.

Only the student network is exported (the weights the trainer saved in
``<run>/student.safetensors``, else its best/last checkpoint); teachers and connectors never
are. ONNX and TorchScript files take any batch size (dynamic batch axis), and each export is
checked against PyTorch on a batch of another size than the one it was traced with: ONNX with
onnxruntime (max abs difference <= 1e-4), TorchScript and safetensors by reloading them.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError

FORMATS = ("onnx", "safetensors", "torchscript")
TOLERANCE = 1e-4


class MainOutput(nn.Module):
    """The model's main prediction as one tensor (a dict's "out", a tuple's first element)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from kdvision.tasks.base import main_output

        return main_output(self.model(x))


def run_config(run_dir: str | Path):
    from kdvision.config import load_config

    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise UserError(f"run directory not found: {run}")
    if not (run / "config.yaml").is_file():
        raise UserError(f"{run}: no config.yaml (is it a kdvision run directory?)")
    return load_config(run / "config.yaml")


def create_student(cfg, task, weights: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The student architecture of ``cfg``. Facts it takes from the data set (num_classes, ...)
    come from the data when it is at hand, else num_classes is read off the weights."""
    from kdvision.model_build import build_model_for_weights

    try:
        return task.create_model(cfg.student, "student")
    except UserError:
        if weights is None:
            raise
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
    model = create_student(cfg, task, load_state_dict_file(weights_file))
    load_weights_into(model, weights_file, f"student ({cfg.student['name']})")
    return model.eval(), cfg, task


def export_student(run_dir: str | Path, fmt: str, out: str | Path, size: tuple[int, ...] | None = None,
                   opset: int = 17) -> dict:
    """Write the student in ``fmt`` to ``out`` and check it; returns what was done and the check."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    model, cfg, task = load_run_student(run_dir)
    shape = input_shape(task, size)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    net = MainOutput(model).eval()
    torch.manual_seed(0)
    traced_with, checked_with = torch.randn(2, *shape), torch.randn(3, *shape)
    with torch.no_grad():
        expected = net(checked_with)
    if fmt == "onnx":
        diff = _export_onnx(net, traced_with, checked_with, expected, out, opset)
    elif fmt == "torchscript":
        diff = _export_torchscript(net, traced_with, checked_with, expected, out)
    else:
        diff = _export_safetensors(model, cfg, task, shape, checked_with, expected, out)
    if not diff <= TOLERANCE:
        raise UserError(f"{out}: the exported student differs from PyTorch by {diff:.3g} (> {TOLERANCE:g})")
    return {"format": fmt, "path": str(out), "model": cfg.student["name"], "input_shape": list(shape),
            "parameters": sum(p.numel() for p in model.parameters()), "max_abs_diff": diff,
            "checked_batch": int(checked_with.shape[0]), "bytes": out.stat().st_size}


def _export_onnx(net, traced_with, checked_with, expected, out: Path, opset: int) -> float:
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (traced_with,), str(out), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": checked_with.numpy()})[0]
    return float((torch.from_numpy(got) - expected).abs().max())


def _export_torchscript(net, traced_with, checked_with, expected, out: Path) -> float:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(copy.deepcopy(net), traced_with)
        scripted.save(str(out))
        got = torch.jit.load(str(out))(checked_with)
    return float((got - expected).abs().max())


def _export_safetensors(model, cfg, task, shape, checked_with, expected, out: Path) -> float:
    from safetensors.torch import load_file

    from kdvision.engine.checkpoint import save_safetensors

    meta = {"model": cfg.student["name"], "student": json.dumps(cfg.student), "input_shape": json.dumps(list(shape)),
            "format": "kdvision-student"}
    save_safetensors(model.state_dict(), out, metadata=meta)
    fresh = create_student(cfg, task, load_file(str(out)))
    fresh.load_state_dict(load_file(str(out)))
    with torch.no_grad():
        got = MainOutput(fresh.eval())(checked_with)
    return float((got - expected).abs().max())
