"""The teacher-output cache: replayed views, stored logits, invalidation, refusal, no teacher forward."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdvision.cache.attach import attach_teacher_cache, build_cache, check_method, expected_header
from kdvision.cache.store import TeacherCache
from kdvision.cache.views import CachedViews
from kdvision.config import config_from_dict
from kdvision.engine import build
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.methods import METHODS
from kdvision.models import MODELS
from tests.conftest import TINY_DIGITS

SMALL = {**TINY_DIGITS["data"], "train_size": 40}


def make(tmp_path, data=None, cache=None, seed=0):
    cfg = config_from_dict({**TINY_DIGITS, "data": {**SMALL, **(data or {})}, "method": {"name": "kd"},
                            "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")},
                            "teacher_cache": {"views": 3, "dtype": "fp32", **(cache or {})}}, "test.yaml")
    task = build.build_task(cfg)
    torch.manual_seed(seed)
    teacher = MODELS.get("resnet8")(num_classes=10).eval()
    method = build.build_method(cfg, task, [teacher])
    return cfg, task.datasets(), method


def test_replayed_view_is_the_recorded_crop_and_gets_the_live_teachers_logits(tmp_path):
    cfg, data, method = make(tmp_path)
    train = data["train"]
    cache = build_cache(method.teacher, train, expected_header(cfg, method.teacher, train), cfg, torch.device("cpu"))
    views = CachedViews(train, cache)
    assert len({tuple(cache.params[i, v].tolist()) for i in range(10) for v in range(3)}) > 3  # views differ
    pad = train.augment.padding
    for i, v in [(0, 0), (0, 2), (7, 1), (39, 2)]:
        top, left, flipped = cache.params_of(i, v)
        # independent crop of the zero-padded image, in numpy
        raw = train.images[i].numpy().astype(np.float32) / 255.0
        padded = np.pad(raw, ((0, 0), (pad, pad), (pad, pad)))
        crop = padded[:, top:top + 8, left:left + 8]
        crop = crop[:, :, ::-1] if flipped else crop
        item = views.view(i, v)
        np.testing.assert_allclose(item["input"].numpy(), (crop - 0.5) / 0.5, atol=1e-6)
        with torch.no_grad():
            live = method.teacher(item["input"][None])[0]
        torch.testing.assert_close(item["teacher_logits"], live, atol=1e-4, rtol=1e-4)
        assert item["target"] == train.labels[i]


def test_topk_fp16_keeps_the_top_classes_and_the_total_probability(tmp_path):
    cfg, data, method = make(tmp_path, cache={"topk": 3, "dtype": "fp16"})
    train = data["train"]
    cache = build_cache(method.teacher, train, expected_header(cfg, method.teacher, train), cfg, torch.device("cpu"))
    assert set(cache.tensors) == {"params", "topk_values", "topk_indices", "logsumexp"}
    item = CachedViews(train, cache).view(5, 1)
    with torch.no_grad():
        live = method.teacher(item["input"][None])[0]
    rebuilt = item["teacher_logits"]
    p_live, p_rebuilt = F.softmax(live, 0), F.softmax(rebuilt, 0)
    top = live.topk(3).indices
    assert set(rebuilt.topk(3).indices.tolist()) == set(top.tolist())
    torch.testing.assert_close(p_rebuilt[top], p_live[top], atol=2e-3, rtol=0)
    rest = torch.ones(10, dtype=torch.bool)
    rest[top] = False
    assert torch.allclose(p_rebuilt[rest], p_rebuilt[rest].mean())  # the tail shares its mass equally
    assert abs(float(p_rebuilt[rest].sum() - p_live[rest].sum())) < 2e-3


def test_a_changed_teacher_data_or_augmentation_is_refused_or_rebuilt(tmp_path):
    cfg, data, method = make(tmp_path)
    path = tmp_path / "teacher_cache.safetensors"
    attach_teacher_cache(cfg, method, data, tmp_path, torch.device("cpu"))
    assert path.is_file()
    attach_teacher_cache(cfg, method, data, tmp_path, torch.device("cpu"))  # same run: accepted

    other_teacher = copy.deepcopy(method)
    with torch.no_grad():
        other_teacher.teacher.fc.bias.add_(0.01)
    with pytest.raises(UserError, match="other teacher weights"):
        attach_teacher_cache(cfg, other_teacher, data, tmp_path, torch.device("cpu"))
    cfg2, data2, method2 = make(tmp_path, data={"train_size": 50})
    with pytest.raises(UserError, match="other training data"):
        attach_teacher_cache(cfg2, method2, data2, tmp_path, torch.device("cpu"))
    cfg3, data3, method3 = make(tmp_path, data={"padding": 2})
    with pytest.raises(UserError, match="other augmentation"):
        attach_teacher_cache(cfg3, method3, data3, tmp_path, torch.device("cpu"))
    cfg4, data4, method4 = make(tmp_path, cache={"views": 2})
    with pytest.raises(UserError, match="views 3 .the config asks for 2"):
        attach_teacher_cache(cfg4, method4, data4, tmp_path, torch.device("cpu"))

    before = TeacherCache.read_header(path)["teacher"]
    said = []
    cfg.teacher_cache.rebuild = True
    attach_teacher_cache(cfg, other_teacher, data, tmp_path, torch.device("cpu"), said.append)
    assert any("stale" in s and "rebuilding" in s for s in said)
    assert TeacherCache.read_header(path)["teacher"] not in (before, None)

    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"not a cache")
    cfg.teacher_cache.path = str(foreign)
    with pytest.raises(UserError, match="not a kdvision teacher cache"):
        attach_teacher_cache(cfg, method, data, tmp_path, torch.device("cpu"))
    assert foreign.read_bytes() == b"not a cache"  # rebuild never overwrites a foreign file


def test_methods_that_need_features_refuse_the_cache(tmp_path):
    cfg, _, _ = make(tmp_path)
    check_method(cfg, METHODS.get("kd"))
    for name in ("fitnet", "at"):
        with pytest.raises(UserError, match=f"method '{name}' needs more of the teacher"):
            check_method(config_from_dict({**cfg.to_dict(), "method": {"name": name}}, "x.yaml"), METHODS.get(name))


def test_training_with_the_cache_never_runs_the_teacher(tmp_path):
    teacher = MODELS.get("resnet8")(num_classes=10)
    torch.save(teacher.state_dict(), tmp_path / "t.pt")
    cfg, _, _ = make(tmp_path, cache={"views": 2})
    cfg.train.epochs, cfg.train.max_steps_per_epoch = 1, 2
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    calls = []
    real_build = trainer._build

    def build_then_count():
        real_build()
        trainer.method.teacher.register_forward_hook(lambda *a: calls.append(1))

    trainer._build = build_then_count
    trainer.fit()
    assert calls == []
    assert (tmp_path / "run" / "teacher_cache.safetensors").is_file()
