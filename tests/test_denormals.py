"""Subnormal floats are flushed to zero on torch's intra-op threads (kdvision.engine.denormals),
and the CLI sets this before the commands that run networks."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from kdvision import cli

# On 2 intra-op threads, multiply 4M subnormal fp32 values (1e-39 < 1.18e-38) and count the
# results that are not zero; with flush-to-zero set first, every thread sees them as 0.
PROBE = """
import sys, torch
if sys.argv[1] == "flush":
    from kdvision.engine.denormals import flush_denormals
    assert flush_denormals()
torch.set_num_threads(2)
x = torch.full((1 << 22,), 1e-39) * 1.5
print(int((x != 0).sum()))
"""


def nonzero_after_multiply(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def test_flush_denormals_zeroes_subnormals_on_every_thread():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU does not support flush-to-zero")
    assert nonzero_after_multiply("keep") == 1 << 22  # the control: subnormals survive by default
    assert nonzero_after_multiply("flush") == 0


def test_cli_flushes_denormals_before_a_compute_command(monkeypatch):
    calls = []
    monkeypatch.setattr("kdvision.engine.denormals.flush_denormals", lambda: calls.append("flush") or True)
    monkeypatch.setitem(cli.COMMANDS, "demo", lambda args: calls.append("demo") or 0)
    monkeypatch.setitem(cli.COMMANDS, "recipes", lambda args: calls.append("recipes") or 0)
    assert cli.main(["demo"]) == 0
    assert calls == ["flush", "demo"]
    calls.clear()
    assert cli.main(["recipes"]) == 0
    assert calls == ["recipes"]  # listing recipes runs no network: torch is not imported for it
