"""train.precision / train.channels_last: auto (the defaults), and the teacher-cache hint line."""
import json

import pytest
import torch
import yaml

from kdvision.config import config_from_dict
from kdvision.engine import fast_defaults
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.models import MODELS
from tests.conftest import TINY_DIGITS

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def with_flags(monkeypatch, flags):
    monkeypatch.setattr(fast_defaults, "cpu_flags", lambda path=fast_defaults.CPUINFO: set(flags))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert fast_defaults.cpu_flags(info) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert fast_defaults.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("flags, expected", [({"avx2", "avx512_bf16"}, "bf16"), ({"avx2", "amx_bf16"}, "bf16"),
                                             ({"avx2", "avx512f"}, "fp32")])
def test_auto_precision_on_cpu_is_bf16_only_with_native_bf16(monkeypatch, flags, expected):
    with_flags(monkeypatch, flags)
    choice = fast_defaults.choose_precision("auto", CPU)
    assert (choice.value, choice.auto) == (expected, True)
    assert fast_defaults.choose_precision("fp16", CPU).record() == {"value": "fp16", "auto": False,
                                                                    "reason": "set in the config"}


def test_auto_precision_on_cuda_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(fast_defaults, "cuda_has_bf16", lambda device: True)
    assert fast_defaults.choose_precision("auto", torch.device("cuda")).value == "bf16"
    monkeypatch.setattr(fast_defaults, "cuda_has_bf16", lambda device: False)
    assert fast_defaults.choose_precision("auto", torch.device("cuda")).value == "fp32"


def test_auto_channels_last_for_conv_nets_on_cuda_and_on_bf16_cpus():
    conv, mlp = MODELS.get("resnet8")(num_classes=10), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    pick = lambda device, precision, model: fast_defaults.choose_channels_last("auto", torch.device(device),
                                                                               precision, model).value
    assert pick("cuda", "fp32", conv) is True
    assert pick("cpu", "bf16", conv) is True
    assert pick("cpu", "fp32", conv) is False
    assert pick("cuda", "bf16", mlp) is False
    assert fast_defaults.choose_channels_last(True, CPU, "fp32", conv).value is True
    with pytest.raises(UserError, match=r"'train.channels_last' must be true or false, got str 'yes'; "
                                        r"or must be one of auto \(got 'yes'\)"):
        config_from_dict({**TINY_DIGITS, "train": {"channels_last": "yes"}}, "c.yaml")


def run_tiny(tmp_path, extra=None, quiet=True):
    cfg = config_from_dict({**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1, "max_steps_per_epoch": 2},
                            **(extra or {})}, "tiny.yaml")
    out = tmp_path / "run"
    summary = Trainer(cfg, out, quiet=quiet).fit()
    text = (out / "config.yaml").read_text()
    return summary, text, yaml.safe_load(text), json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("flags, precision, channels_last", [({"avx512_bf16"}, "bf16", True),
                                                              ({"avx2"}, "fp32", False)])
def test_the_run_records_what_auto_chose(monkeypatch, tmp_path, flags, precision, channels_last):
    with_flags(monkeypatch, flags)
    summary, text, saved, on_disk = run_tiny(tmp_path)
    assert saved["train"]["precision"] == saved["train"]["channels_last"] == "auto"  # what was asked
    assert f"# train.precision: auto -> {precision} (" in text
    assert f"# train.channels_last: auto -> {str(channels_last).lower()} (" in text
    assert on_disk["precision"]["value"] == precision and on_disk["precision"]["auto"] is True
    assert on_disk["channels_last"] == summary["channels_last"]
    assert on_disk["channels_last"]["value"] is channels_last


def test_an_explicit_precision_is_kept_and_recorded_as_not_auto(monkeypatch, tmp_path):
    with_flags(monkeypatch, {"avx512_bf16"})
    _, text, saved, on_disk = run_tiny(tmp_path, {"train": {**TINY_DIGITS["train"], "epochs": 1,
                                                            "max_steps_per_epoch": 2, "precision": "fp32",
                                                            "channels_last": False}})
    assert saved["train"]["precision"] == "fp32" and "auto ->" not in text
    assert on_disk["precision"] == {"value": "fp32", "auto": False, "reason": "set in the config"}


def kd_extra(tmp_path, cache=None):
    torch.save(MODELS.get("resnet8")(num_classes=10).state_dict(), tmp_path / "t.pt")
    extra = {"method": {"name": "kd"}, "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")}}
    return {**extra, "teacher_cache": cache} if cache else extra


def test_a_kd_run_without_the_cache_says_once_what_it_would_gain(tmp_path, capsys):
    run_tiny(tmp_path, kd_extra(tmp_path), quiet=False)
    hints = [line for line in capsys.readouterr().err.splitlines() if "teacher_cache" in line]
    assert len(hints) == 1
    assert "teacher_cache: {views: 8} would replay the teacher's logits" in hints[0] and "speed.md" in hints[0]


def test_no_hint_with_the_cache_on_or_for_feature_methods(tmp_path, capsys):
    run_tiny(tmp_path, kd_extra(tmp_path, {"views": 2}), quiet=False)
    assert "would replay" not in capsys.readouterr().err
    (tmp_path / "run").rename(tmp_path / "cached")
    run_tiny(tmp_path, {**kd_extra(tmp_path), "method": {"name": "at"}}, quiet=False)
    assert "would replay" not in capsys.readouterr().err
