"""The ``kdvision`` command: train, eval, methods, recipes, demo (and the task/speed commands).

User errors print one line, ``kdvision: error: ...``, and exit with code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

from kdvision.errors import UserError


def cmd_train(args) -> int:
    from kdvision.config import load_config
    from kdvision.recipe_library import resolve_config

    if args.out is None and not args.check:
        raise UserError("train: --out DIR is required (only --check runs without one)")
    if args.root is None:
        return train_or_check(load_config(args.config, args.overrides), args, args.out)
    # the config and --out as given here; every other relative path against --root
    config = resolve_config(args.config).absolute()
    out = Path(args.out).absolute() if args.out else None
    with working_directory(args.root):
        return train_or_check(load_config(config, args.overrides), args, out)


def train_or_check(cfg, args, out) -> int:
    """Train (torch is imported only now: config errors come fast), or with --check validate and stop."""
    if args.check:
        from kdvision.engine.check import check_config

        print(check_config(cfg, out))
        return 0
    from kdvision.engine.denormals import flush_denormals
    from kdvision.engine.trainer import Trainer

    flush_denormals()
    Trainer(cfg, out, resume=args.resume, quiet=args.quiet).fit()
    return 0


@contextlib.contextmanager
def working_directory(root: str):
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"--root is not a folder: {path}")
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cmd_recipes(args) -> int:
    from kdvision.recipe_library import RECIPES, description, recipe_names

    names = [n for n in recipe_names() if args.filter is None or args.filter in n]
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:{width}s}  {description(RECIPES / f'{name}.yaml')}")
    if not names:
        raise UserError(f"no packaged recipe matches '{args.filter}'")
    return 0


def cmd_eval(args) -> int:
    from kdvision.config import load_config
    from kdvision.engine.evaluate import evaluate_checkpoint

    cfg = load_config(args.config, args.overrides)
    metrics = evaluate_checkpoint(cfg, args.checkpoint, split=args.split)
    if args.json:
        print(json.dumps(json_safe(metrics), allow_nan=False))
    else:
        print(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    return 0


def json_safe(value):
    """NaN and infinities are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def cmd_methods(args) -> int:
    import kdvision.data  # noqa: F401  (registers datasets)
    from kdvision.methods import METHODS
    from kdvision.models import MODELS
    from kdvision.registry import DATASETS, TASKS

    for title, reg in (("method", METHODS), ("model", MODELS), ("dataset", DATASETS), ("task", TASKS)):
        for name in reg.names():
            print(f"{title:8s} {name:22s} {reg.doc(name)}")
    return 0


def cmd_demo(args) -> int:
    from kdvision.demo import run_demo

    run_demo(args.out, epochs_scale=args.scale, seeds=args.seeds)
    return 0


# commands that train or run networks (train flushes denormals itself, after its config loads)
COMPUTE_COMMANDS = ("eval", "demo", "bench", "infer", "profile")
COMMANDS = {"train": cmd_train, "eval": cmd_eval, "methods": cmd_methods, "recipes": cmd_recipes, "demo": cmd_demo}


class Parser(argparse.ArgumentParser):
    """argparse with kdvision's error form: one line ``kdvision: error: ...``, exit code 2
    (argparse's own prints the usage first). Sub-command parsers are made of this class too."""

    def error(self, message: str):
        command = self.prog.removeprefix("kdvision").strip()  # "export", "bench overhead", or none
        where = f"{command}: " if command else ""
        self.exit(2, f"kdvision: error: {where}{message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from kdvision import __version__

    p = Parser(prog="kdvision", description="Knowledge distillation for computer vision.")
    p.add_argument("--version", action="version", version=f"kdvision {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train what a YAML config (or a packaged recipe, by name) describes")
    t.add_argument("config", help="a YAML file, or a packaged recipe's name such as digits/kd (kdvision recipes)")
    t.add_argument("--out", default=None, help="run directory (never overwritten; --resume continues it)")
    t.add_argument("--check", action="store_true",
                   help="check the config, models, teacher weights, data (one batch) and method, then stop; "
                        "writes nothing (with --out, teachers already trained in that run are used)")
    t.add_argument("--root", default=None, help="folder that the config's relative paths (data roots, teacher "
                                                "checkpoints, weights) are relative to (default: the working directory)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. train.epochs=2")

    e = sub.add_parser("eval", help="evaluate a checkpoint and print its metrics")
    e.add_argument("config")
    e.add_argument("--checkpoint", required=True, help="run directory, kdvision checkpoint, state dict or safetensors")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("overrides", nargs="*", metavar="KEY=VALUE")

    sub.add_parser("methods", help="list methods, models, datasets and tasks, one line each")
    r = sub.add_parser("recipes", help="list the packaged recipes (names for train and base:), one line each")
    r.add_argument("filter", nargs="?", default=None, help="only names containing this text, e.g. cifar100/kd")

    d = sub.add_parser("demo", help="teacher, then the student alone and with KD at 3 seeds on the embedded digits set "
                                    "(about 3 min on 2 cores)")
    d.add_argument("--out", default=None, help="folder for the demo's runs and plot (default: runs/demo-<time>)")
    from kdvision.commands.arguments import positive_int

    d.add_argument("--seeds", type=positive_int, default=3,
                   help="seeds per student (default 3; the teacher trains once)")
    d.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)

    for extra in _extra_commands():
        extra(sub, COMMANDS)
    return p


def _extra_commands():
    """Commands that live beside their subsystem (infer, export, profile, bench)."""
    from kdvision.commands import bench, export, infer, profile

    return [infer.add_parser, export.add_parser, profile.add_parser, bench.add_parser]


def one_line(message: str) -> str:
    """A UserError re-raised from a DataLoader worker carries the worker's traceback: keep its message."""
    lines = message.strip().splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught UserError"):
        last = lines[-1].strip() or next(line for line in reversed(lines) if line.strip())
        return last.split("UserError: ", 1)[-1]
    return " ".join(line.strip() for line in lines)


def record_for_torchrun(line: str) -> None:
    """Under torchrun, a rank's error file is what torchrun's failure summary shows in place
    of a traceback: make it our one line. (torchrun itself still exits 1 when a rank fails.)"""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    try:
        with open(path, "w") as f:
            json.dump({"message": line, "timestamp": str(int(time.time()))}, f)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may come after the options (train CONFIG --out DIR a.b=1)
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        if args.command in COMPUTE_COMMANDS:
            from kdvision.engine.denormals import flush_denormals

            flush_denormals()  # before torch's first parallel op; train sets it after its config loads
        return COMMANDS[args.command](args)
    except UserError as e:
        line = f"kdvision: error: {one_line(str(e))}"
        print(line, file=sys.stderr)
        record_for_torchrun(line)
        return e.exit_code
    except KeyboardInterrupt:
        print("kdvision: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (kdvision recipes | head)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
