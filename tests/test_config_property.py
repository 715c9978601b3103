"""A guard that lasts: mutate a valid config at random (drop keys, swap types, put values out of
range, nest wrongly, add unknown keys) and validate it as ``kdvision train --check`` does. Every
outcome must be a valid config or one ``UserError`` line -- never another exception."""
import copy
import math
import tempfile
from pathlib import Path

import torch
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kdvision.config import load_config
from kdvision.engine.check import check_config
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, run_cli

FOLDER = Path(tempfile.mkdtemp(prefix="kdvision-property-"))


def valid_config() -> dict:
    """KD with a teacher checkpoint and two stages: every section of the schema has a value."""
    teacher = FOLDER / "teacher.pt"
    if not teacher.is_file():
        from kdvision.models import create

        torch.manual_seed(0)
        torch.save(create("resnet8", num_classes=10).state_dict(), teacher)
    data = copy.deepcopy(TINY_DIGITS)
    data["method"] = {"name": "kd", "temperature": 4.0, "weights": {"ce": 0.1, "kd": 0.9}}
    data["teacher"] = {"model": {"name": "resnet8"}, "checkpoint": str(teacher)}
    data["train"].update({"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "betas": [0.9, 0.99]},
                          "stages": [{"name": "warm", "epochs": 1, "method": {"weights": {"kd": 0.5}}},
                                     {"name": "main", "epochs": 1}],
                          "eval_every": 1, "log_every": 5, "precision": "fp32", "device": "cpu", "grad_clip": 5.0})
    return data


def paths(node, prefix=()):
    """Every (path to a value) of a nested dict/list config."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from paths(v, prefix + (k,))


def mappings(node, prefix=()):
    if isinstance(node, dict):
        yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield from mappings(v, prefix + (k,))


def get(node, path):
    for p in path:
        node = node[p]
    return node


ODD_VALUES = st.one_of(
    st.sampled_from([0, -1, -(2 ** 70), 2 ** 70, 10 ** 5, 0.0, -0.5, 1e300, math.nan, math.inf, -math.inf,
                     True, False, None, "", "x" * 300, "cuda:99", "1e23", [], {}, [1, "a"], {"name": 3}]),
    st.integers(-10, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)


@st.composite
def mutated_configs(draw):
    data = valid_config()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "value", "nest", "unwrap", "unknown"]))
        all_paths = list(paths(data))
        if kind == "unknown" or not all_paths:
            where = draw(st.sampled_from(list(mappings(data))))
            get(data, where)[draw(st.sampled_from(["extra", "epochz", "lr", "name", "Seed"]))] = draw(ODD_VALUES)
            continue
        path = draw(st.sampled_from(all_paths))
        parent, key = get(data, path[:-1]), path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "value":
            parent[key] = draw(ODD_VALUES)
        elif kind == "nest":
            parent[key] = draw(st.sampled_from([{"value": parent[key]}, [parent[key]]]))
        elif isinstance(parent[key], (dict, list)) and parent[key]:
            inner = parent[key]
            parent[key] = next(iter(inner.values())) if isinstance(inner, dict) else inner[0]
    return data


def write(data: dict, folder: Path) -> Path:
    path = folder / "mutated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def outcome(path: Path) -> str:
    """'ok' or 'error'; anything but a valid config or one UserError line fails the test."""
    try:
        line = check_config(load_config(path))
    except UserError as e:
        assert "\n" not in str(e).strip(), str(e)
        return "error"
    assert line.startswith(f"{path}: OK: "), line
    return "ok"


def test_the_unmutated_config_is_valid(tmp_path):
    assert outcome(write(valid_config(), tmp_path)) == "ok"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=mutated_configs())
@example(data={**valid_config(), "data": {**valid_config()["data"], "padding": 10 ** 6}})  # once allocated 40 GB
def test_mutated_configs_are_valid_or_one_user_error(tmp_path, data):
    outcome(write(data, tmp_path))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(data=mutated_configs())
def test_mutated_configs_through_the_cli(tmp_path, data):
    """A few mutants through ``kdvision train --check``: exit 0 with the OK line, or exit 2 with one
    ``kdvision: error:`` line, never a traceback."""
    result = run_cli("train", str(write(data, tmp_path)), "--check")
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert result.stdout.strip().count("\n") == 0 and ": OK: " in result.stdout, result.stdout
    else:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        assert result.returncode == 2 and lines[-1].startswith("kdvision: error: "), result.stderr
        assert sum(line.startswith("kdvision: error: ") for line in lines) == 1, result.stderr
