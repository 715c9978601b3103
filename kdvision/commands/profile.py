"""``kdvision profile``: parameters, MACs and CPU latency of the teacher(s) and the student."""
from __future__ import annotations

import json

from kdvision.commands.arguments import positive_int
from kdvision.commands.export import parse_size


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
