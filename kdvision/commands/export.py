"""``kdvision export``: the student alone, checked against PyTorch."""
from __future__ import annotations

import argparse
import json

from kdvision.commands.arguments import int_at_least
from kdvision.config_checks import MAX_IMAGE_SIDE


#: the ONNX opsets the TorchScript-based exporter writes (torch.onnx's own bounds)
MIN_OPSET, MAX_OPSET = 7, 20


def parse_size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got '{text}'")
    if max(size[1:]) > MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(f"height and width must be at most {MAX_IMAGE_SIDE}, got '{text}'")
    return size


def opset(text: str) -> int:
    value = int_at_least(MIN_OPSET)(text)
    if value > MAX_OPSET:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_OPSET} (the newest torch.onnx exports), got {value}")
    return value


def tolerance(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got '{text}'")
    return value


def cmd_export(args) -> int:
    from pathlib import Path

    from kdvision.export_files import check_destination

    check_destination(Path(args.out).expanduser(), Path(args.run), args.force)  # before torch is imported
    from kdvision.export import export_student
    from kdvision.student_metadata import describe

    r = export_student(args.run, args.format, args.out, args.input_size, args.opset, args.atol, args.rtol,
                       args.force)
    if args.json:
        print(json.dumps(r))
    else:
        check = {"onnx": "onnxruntime", "torchscript": "reloaded TorchScript", "safetensors": "reloaded weights"}
        sizes = "any batch, height and width" if r["dynamic"] else "any batch"
        print(f"exported the student ({r['model']}, {r['parameters']:,} parameters, input {r['input_shape']}, "
              f"{sizes}) -> {r['path']} ({r['bytes'] / 2 ** 20:.2f} MiB)")
        for c in r["checks"]:
            print(f"check: {check[r['format']]} vs PyTorch at input {c['input']}: max abs diff "
                  f"{c['max_abs_diff']:.3g} ({c['ratio']:.2g} of atol {r['atol']:g} + rtol {r['rtol']:g} * |pytorch|)")
        print(f"metadata: {describe(r['metadata'])}")
    return 0


def add_parser(sub, commands: dict) -> None:
    e = sub.add_parser("export", help="export a run's student alone: onnx, safetensors or torchscript (checked)")
    e.add_argument("run", help="a kdvision run directory")
    e.add_argument("--format", required=True, choices=["onnx", "safetensors", "torchscript"])
    e.add_argument("--out", required=True, help="file to write")
    e.add_argument("--input-size", type=parse_size, default=None, metavar="C,H,W",
                   help="one input's shape (default: from the run's data set)")
    e.add_argument("--opset", type=opset, default=17,
                   help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default 17)")
    e.add_argument("--atol", type=tolerance, default=1e-4,
                   help="parity check: |exported - pytorch| <= atol + rtol * |pytorch| (default atol 1e-4)")
    e.add_argument("--rtol", type=tolerance, default=1e-3, help="parity check's relative tolerance (default 1e-3)")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists (never a run's own files)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    commands["export"] = cmd_export
