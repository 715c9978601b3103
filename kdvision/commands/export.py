"""``kdvision export``: the student alone, checked against PyTorch."""
from __future__ import annotations

import json


def parse_size(text: str) -> tuple[int, ...]:
    import argparse

    try:
        size = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got '{text}'")
    return size


def cmd_export(args) -> int:
    from kdvision.export import export_student

    r = export_student(args.run, args.format, args.out, args.input_size, args.opset)
    if args.json:
        print(json.dumps(r))
    else:
        check = {"onnx": "onnxruntime", "torchscript": "reloaded TorchScript", "safetensors": "reloaded weights"}
        print(f"exported the student ({r['model']}, {r['parameters']:,} parameters, input {r['input_shape']}) "
              f"-> {r['path']} ({r['bytes'] / 2 ** 20:.2f} MiB)")
        print(f"check: {check[r['format']]} vs PyTorch at batch {r['checked_batch']}: "
              f"max abs diff {r['max_abs_diff']:.3g}")
    return 0


def add_parser(sub, commands: dict) -> None:
    e = sub.add_parser("export", help="export a run's student alone: onnx, safetensors or torchscript (checked)")
    e.add_argument("run", help="a kdvision run directory")
    e.add_argument("--format", required=True, choices=["onnx", "safetensors", "torchscript"])
    e.add_argument("--out", required=True, help="file to write")
    e.add_argument("--input-size", type=parse_size, default=None, metavar="C,H,W",
                   help="one input's shape (default: from the run's data set)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    commands["export"] = cmd_export
