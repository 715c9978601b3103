"""What ``train.precision: auto`` and ``train.channels_last: auto`` (the defaults) choose.

The rule, kept simple and explicit:

* precision ``auto`` -> ``bf16`` autocast on a CUDA device that supports bf16, and on a CPU
  with native bf16 arithmetic (AVX512-BF16 or AMX: the ``avx512_bf16`` / ``amx_bf16`` flags of
  /proc/cpuinfo, or torch's own probe); ``fp32`` everywhere else. Without native bf16 the
  gain depends on the CPU and on oneDNN's conversion kernels (on the 2-core AVX2 EPYC of
  benchmarks/results/speed.md bf16 autocast still measured 1.66x faster), so it stays opt-in
  there (``train.precision: bf16``) rather than a guess.
* channels_last ``auto`` -> ``true`` for convolutional students (any ``nn.Conv2d``) on CUDA,
  and on CPU when bf16 was chosen (oneDNN's fast bf16 convolutions want NHWC); ``false``
  otherwise (on an fp32 CPU it speeds up the student step but slows the distillation step:
  benchmarks/results/speed.md, overhead table).

The trainer runs with the chosen values. The run's config.yaml keeps ``auto`` (what was asked,
so the folder still matches its config on reuse and resume) under a comment line per choice,
``# train.precision: auto -> fp32 (reason)``; summary.json records
``{"value", "auto", "reason"}`` for both keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


CPUINFO = Path("/proc/cpuinfo")


@dataclass
class Choice:
    value: object
    auto: bool
    reason: str

    def record(self) -> dict:
        return {"value": self.value, "auto": self.auto, "reason": self.reason}


def cpu_flags(path: Path = CPUINFO) -> set[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is missing)."""
    try:
        text = path.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 on this CPU (torch's probe where /proc/cpuinfo says nothing)."""
    flags = cpu_flags()
    if flags:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(p()) for p in probes if p is not None)


def cuda_has_bf16(device: torch.device) -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def choose_precision(requested: str, device: torch.device) -> Choice:
    """``requested`` is one of TrainConfig.precision's choices (the config checks them)."""
    if requested != "auto":
        return Choice(requested, False, "set in the config")
    if device.type == "cuda":
        if cuda_has_bf16(device):
            return Choice("bf16", True, "CUDA device with bf16 support")
        return Choice("fp32", True, "CUDA device without bf16 support")
    if device.type == "cpu":
        if cpu_has_native_bf16():
            return Choice("bf16", True, "CPU with native bf16: avx512_bf16 / amx_bf16")
        return Choice("fp32", True, "CPU without native bf16: no avx512_bf16 / amx_bf16 flag")
    return Choice("fp32", True, f"device type '{device.type}'")


def is_conv_net(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def choose_channels_last(requested, device: torch.device, precision: str, student: nn.Module) -> Choice:
    if isinstance(requested, bool):  # else "auto" (the config checks the choices)
        return Choice(requested, False, "set in the config")
    if not is_conv_net(student):
        return Choice(False, True, "the student has no 2-D convolutions")
    if device.type == "cuda":
        return Choice(True, True, "convolutional student on CUDA")
    if device.type == "cpu" and precision == "bf16":
        return Choice(True, True, "convolutional student on a CPU with bf16")
    return Choice(False, True, f"convolutional student on {device.type} with {precision}")


def resolve_precision(cfg, device: torch.device) -> dict:
    """Set ``cfg.train.precision`` to what runs; returns {"precision": Choice}."""
    choice = choose_precision(cfg.train.precision, device)
    cfg.train.precision = choice.value
    return {"precision": choice}


def resolve_channels_last(cfg, device: torch.device, student: nn.Module, choices: dict) -> dict:
    """Set ``cfg.train.channels_last`` to what runs; adds "channels_last" to ``choices``."""
    choice = choose_channels_last(cfg.train.channels_last, device, cfg.train.precision, student)
    cfg.train.channels_last = choice.value
    choices["channels_last"] = choice
    return choices


def config_comment(choices: dict) -> str:
    """Lines for the top of config.yaml saying which values ``auto`` chose, and why."""
    return "".join(f"# train.{k}: auto -> {str(c.value).lower() if isinstance(c.value, bool) else c.value} "
                   f"({c.reason})\n" for k, c in choices.items() if c.auto)


def summary_fields(choices: dict) -> dict:
    return {k: c.record() for k, c in choices.items()}


def as_requested(config: dict, choices: dict) -> dict:
    """A run's config mapping with each ``auto`` choice put back as ``auto`` (what the user asked:
    a run folder is compared with its config on reuse and resume; the chosen values are in the
    comment of :func:`config_comment` and in summary.json)."""
    train = dict(config.get("train", {}))
    for key, choice in choices.items():
        if choice.auto:
            train[key] = "auto"
    return {**config, "train": train}
