"""Shared fixtures: tiny configs on the embedded digits set and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

TINY_DIGITS = {
    "task": "classification",
    "seed": 0,
    "data": {"name": "digits", "resolution": 8, "train_size": 160, "batch_size": 32, "padding": 1},
    "student": {"name": "resnet8"},
    "method": {"name": "student"},
    "train": {"epochs": 2, "optimizer": {"name": "sgd", "lr": 0.05}, "schedule": {"name": "cosine"},
              "tensorboard": False},
}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    return write_yaml(tmp_path / "tiny.yaml", TINY_DIGITS)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real ``kdvision`` command in a subprocess (python -m kdvision)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "kdvision", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch thread for every test: the small models of the suite run faster so than two
    threads fighting over a shared machine's cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
