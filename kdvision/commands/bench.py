"""``kdvision bench <name>``: the benchmarks, one module each in ``kdvision.benchmarks_lib``.

A module there becomes ``kdvision bench <NAME>`` by defining ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; nothing here needs editing to add one.
"""
from __future__ import annotations

import importlib
import pkgutil


def bench_modules() -> list:
    import kdvision.benchmarks_lib as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if all(hasattr(module, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            found.append(module)
    return found


def add_parser(sub, commands: dict) -> None:
    parser = sub.add_parser("bench", help="benchmarks: " + ", ".join(m.NAME for m in bench_modules()))
    benches = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for module in bench_modules():
        p = benches.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(bench_run=module.run)
    commands["bench"] = lambda args: args.bench_run(args)
