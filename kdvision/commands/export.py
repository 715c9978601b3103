"""``kdvision export`` (the student alone, checked) and ``kdvision profile`` (teacher vs student)."""
from __future__ import annotations

import argparse
import json

from kdvision.commands.arguments import int_at_least, output_file, positive_int
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


def cmd_profile(args) -> int:
    import torch

    from kdvision.benchmarks_lib.common import machine
    from kdvision.config import load_config
    from kdvision.engine.build import build_task
    from kdvision.export import input_shape
    from kdvision.profile import config_models, data_available, profile_models, table

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    task = build_task(cfg)
    available = args.input_size is None or data_available(task)
    shape = input_shape(task, args.input_size)
    batch = args.batch or int(cfg.data.get("batch_size", 64))
    rows = profile_models(config_models(cfg, task, available), shape, batch, args.repeats)
    if args.json:
        print(json.dumps({"input_shape": list(shape), "batch": batch, "models": rows, "machine": machine()}))
    else:
        if not available:
            print(f"note: data set '{cfg.data['name']}' not available; models use their default num_classes")
        print(f"input {list(shape)}, CPU latency median of {args.repeats} runs, {torch.get_num_threads()} threads")
        print("\n".join(table(rows, batch)))
    return 0


def add_parser(sub, commands: dict) -> None:
    e = sub.add_parser("export", help="export a run's student alone: onnx, safetensors or torchscript (checked)")
    e.add_argument("run", help="a kdvision run directory")
    e.add_argument("--format", required=True, choices=["onnx", "safetensors", "torchscript"])
    e.add_argument("--out", required=True, type=output_file, help="file to write")
    e.add_argument("--input-size", type=parse_size, default=None, metavar="C,H,W",
                   help="one input's shape (default: from the run's data set)")
    e.add_argument("--opset", type=opset, default=17,
                   help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default 17)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    commands["export"] = cmd_export

    p = sub.add_parser("profile", help="parameters, MACs and CPU latency of the teacher(s) and the student")
    p.add_argument("config")
    p.add_argument("--input-size", type=parse_size, default=None, metavar="C,H,W",
                   help="one input's shape (default: from the data set)")
    p.add_argument("--batch", type=positive_int, default=None, help="second latency batch (default: data.batch_size)")
    p.add_argument("--repeats", type=positive_int, default=10, help="timed runs per model (default 10)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--json", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    commands["profile"] = cmd_profile
