"""Models named in YAML (torchvision:, timm:, import paths), ``pretrained: PATH`` and default taps.

Through the real CLI where a user would use it: a torchvision ResNet-18 teacher and a timm
MobileNetV3 student on the digits set, trained with KD and with SP on default taps, then
evaluated and exported; the user's own module by import path; a download request refused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import save_file

from conftest import REPO, run_cli, write_yaml

from kdvision.errors import UserError
from kdvision.model_build import build_model

TINY = {"task": "classification", "seed": 0,
        "data": {"name": "digits", "resolution": 16, "train_size": 40, "batch_size": 20, "padding": 1},
        "student": {"name": "timm:mobilenetv3_small_050"},
        "train": {"epochs": 1, "max_steps_per_epoch": 2, "optimizer": {"name": "sgd", "lr": 0.05},
                  "tensorboard": False}}


def resnet18_state(num_classes: int) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(1)
    return torchvision.models.resnet18(num_classes=num_classes).state_dict()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 10-class torchvision ResNet-18 teacher state dict and a timm MobileNetV3 in a
    Hugging Face-style folder with its 1000-class ImageNet head."""
    import timm

    root = tmp_path_factory.mktemp("weights")
    torch.save(resnet18_state(10), root / "teacher.pth")
    hf = root / "mobilenetv3_hf"
    hf.mkdir()
    torch.manual_seed(2)
    save_file(timm.create_model("mobilenetv3_small_050").state_dict(), str(hf / "model.safetensors"))
    (hf / "config.json").write_text(json.dumps({"architecture": "mobilenetv3_small_050", "num_classes": 1000}))
    return root


def metrics(run) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def test_torchvision_teacher_timm_student_kd_then_eval_and_export(tmp_path, files):
    cfg = {**TINY, "student": {"name": "timm:mobilenetv3_small_050", "pretrained": str(files / "mobilenetv3_hf")},
           "teacher": {"model": {"name": "torchvision:resnet18"}, "checkpoint": str(files / "teacher.pth")},
           "method": {"name": "kd"}}
    config = write_yaml(tmp_path / "kd.yaml", cfg)
    run = tmp_path / "kd"
    r = run_cli("train", str(config), "--out", str(run))
    assert r.returncode == 0, r.stderr
    head_lines = [line for line in r.stderr.splitlines() if "re-initialised" in line]
    assert len(head_lines) == 1 and "classifier.weight" in head_lines[0] and "1000" in head_lines[0]
    assert metrics(run)["train/kd"] > 0

    # the run's config.yaml alone rebuilds the student (the pretrained folder is not needed any more)
    (files / "mobilenetv3_hf" / "model.safetensors").rename(files / "moved.safetensors")
    try:
        r = run_cli("eval", str(run / "config.yaml"), "--checkpoint", str(run), "--json")
        assert r.returncode == 0, r.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert json.loads(r.stdout)["acc"] == pytest.approx(summary["test_last"]["acc"])
        r = run_cli("export", str(run), "--format", "onnx", "--out", str(tmp_path / "student.onnx"))
        assert r.returncode == 0, r.stderr
    finally:
        (files / "moved.safetensors").rename(files / "mobilenetv3_hf" / "model.safetensors")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "student.onnx"))
    assert session.run(None, {session.get_inputs()[0].name: torch.zeros(2, 3, 16, 16).numpy()})[0].shape == (2, 10)


def test_sp_on_default_taps_of_a_torchvision_timm_pair(tmp_path, files):
    cfg = {**TINY, "teacher": {"model": {"name": "torchvision:resnet18"}, "checkpoint": str(files / "teacher.pth")},
           "method": {"name": "sp"}}
    run = tmp_path / "sp"
    r = run_cli("train", str(write_yaml(tmp_path / "sp.yaml", cfg)), "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert metrics(run)["train/sp"] > 0


@pytest.mark.parametrize("method", ["at", "fitnet", "frskd", "sp"])
def test_feature_methods_find_default_layers_on_torchvision_and_timm_models(method):
    """ResNet layer1..4 and the timm feature_info stages pair at equal strides (4, 8, 16, 32)."""
    from kdvision.config import params_from_dict
    from kdvision.methods import METHODS

    teacher = build_model({"name": "torchvision:resnet18"}, "teacher.model", "t", "classification", {"num_classes": 10})
    student = build_model({"name": "timm:mobilenetv3_small_050"}, "student", "t", "classification", {"num_classes": 10})
    assert teacher.stages == ["layer1", "layer2", "layer3", "layer4"] and teacher.feature_tap == "layer4"
    assert [e["module"] for e in student.feature_info if e["reduction"] >= 4] == student.stages
    cls = METHODS.get(method)

    class Task:
        def loss(self, out, batch):
            return {"ce": torch.nn.functional.cross_entropy(out, batch["target"])}

    m = cls(student, [teacher.eval()], Task(), params_from_dict(cls.Params, {}, "method", "t"))
    batch = {"input": torch.randn(4, 3, 32, 32), "target": torch.arange(4)}
    m.setup(batch)
    _, losses = m(batch)
    assert len(losses) >= 2 and all(torch.isfinite(v) for v in losses.values())


def test_no_default_taps_names_the_key_to_set():
    from kdvision.methods.feature_pairs import resolve_layer_pairs

    plain = build_model({"name": "torch.nn:Identity"}, "student", "t", "classification", {"num_classes": 10})
    resnet = build_model({"name": "torchvision:resnet18"}, "teacher.model", "t", "classification", {"num_classes": 10})
    with pytest.raises(UserError, match=r"method.layers: the student \(Identity\) documents no 'stages'; name the"):
        resolve_layer_pairs([], plain, resnet, "stages")


USER_MODULE = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, num_classes)
        self.stages = ["body"]
        self.feature_tap = "body"

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


def build_net(num_classes: int, width: int = 4) -> nn.Module:
    return TinyNet(num_classes, width)
'''


def cli_with_path(path, *args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + ([str(path)] if path else [])),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "kdvision", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_user_module_by_import_path_trains_and_evaluates(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_models.py").write_text(USER_MODULE)
    cfg = {**TINY, "student": {"name": "my_models:build_net", "kwargs": {"width": 6}}, "method": {"name": "student"}}
    config = write_yaml(tmp_path / "own.yaml", cfg)
    run = tmp_path / "own"
    r = cli_with_path(src, "train", str(config), "--out", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())["student"]
    assert saved == {"name": "my_models:build_net", "kwargs": {"width": 6}}
    r = cli_with_path(src, "eval", str(run / "config.yaml"), "--checkpoint", str(run), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 0 <= json.loads(r.stdout)["acc"] <= 100

    # the module is gone from the path: one line naming the import path, exit 2
    r = cli_with_path(None, "eval", str(run / "config.yaml"), "--checkpoint", str(run), cwd=REPO)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "'my_models:build_net': cannot import 'my_models'" in r.stderr


def test_user_class_options_are_checked_against_its_signature(tmp_path, monkeypatch):
    (tmp_path / "own_net.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model({"name": "own_net:TinyNet", "width": 3}, "student", "c.yaml", "classification",
                        {"num_classes": 7})
    assert model.head.out_features == 7 and model.head.in_features == 3
    with pytest.raises(UserError, match=r"c.yaml: unknown key 'student.depth'"):
        build_model({"name": "own_net:TinyNet", "depth": 3}, "student", "c.yaml", "classification", {"num_classes": 7})
    with pytest.raises(UserError, match=r"'student.width' must be an integer"):
        build_model({"name": "own_net:TinyNet", "kwargs": {"width": "wide"}}, "student", "c.yaml", "classification",
                    {"num_classes": 7})


def test_timm_pretrained_true_is_refused_in_one_line(tmp_path):
    cfg = {**TINY, "student": {"name": "timm:mobilenetv3_small_050", "kwargs": {"pretrained": True}},
           "method": {"name": "student"}}
    run = tmp_path / "never"
    r = run_cli("train", str(write_yaml(tmp_path / "dl.yaml", cfg)), "--out", str(run))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "student.kwargs.pretrained" in r.stderr and "never downloads" in r.stderr
    assert "student.pretrained: PATH" in r.stderr and not run.exists()


@pytest.mark.parametrize("spec", [{"name": "torchvision:resnet18", "weights": "IMAGENET1K_V1"},
                                  {"name": "torchvision:resnet18", "pretrained": True},
                                  {"name": "timm:resnet18", "checkpoint_path": "r.pth"}])
def test_every_download_request_is_refused(spec):
    with pytest.raises(UserError, match="never downloads weights"):
        build_model(spec, "student", "c.yaml", "classification", {"num_classes": 10})


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_file_with_a_1000_class_head_fits_a_10_class_model(tmp_path, capsys, suffix):
    state = resnet18_state(1000)
    path = tmp_path / f"resnet18{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    model = build_model({"name": "torchvision:resnet18", "pretrained": str(path)}, "student", "c.yaml",
                        "classification", {"num_classes": 10}, load_pretrained=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "fc.weight, fc.bias" in lines[0] and "10 classes" in lines[0] and "1000" in lines[0]
    own = model.state_dict()
    assert own["fc.weight"].shape == (10, 512)
    others = [k for k in state if not k.startswith("fc.")]
    assert others and all(torch.equal(own[k], state[k]) for k in others)


def test_pretrained_from_another_architecture_names_the_keys(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet34(num_classes=10).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(UserError, match=r"c.yaml: student.pretrained: .*r34.pth does not fit ResNet: "
                                        r"unexpected keys: layer1.2.conv1.weight"):
        build_model({"name": "torchvision:resnet18", "pretrained": str(tmp_path / "r34.pth")}, "student", "c.yaml",
                    "classification", {"num_classes": 10}, load_pretrained=True)


@pytest.mark.parametrize("weights_file", ["model.safetensors", "pytorch_model.bin"])
def test_hugging_face_style_folder(tmp_path, weights_file):
    import timm

    torch.manual_seed(3)
    state = timm.create_model("mobilenetv3_small_050", num_classes=10).state_dict()
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "mobilenetv3_small_050", "num_classes": 10}))
    if weights_file.endswith(".bin"):
        torch.save(state, folder / weights_file)
    else:
        save_file(state, str(folder / weights_file))
    model = build_model({"name": "timm:mobilenetv3_small_050", "pretrained": str(folder)}, "student", "c.yaml",
                        "classification", {"num_classes": 10}, load_pretrained=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_torchvision_segmentation_model_in_the_segmentation_task_only():
    model = build_model({"name": "torchvision:lraspp_mobilenet_v3_large"}, "student", "c.yaml", "segmentation",
                        {"num_classes": 3})
    out = model.eval()(torch.zeros(1, 3, 32, 32))
    assert set(out) == {"out"} and out["out"].shape == (1, 3, 32, 32)
    with pytest.raises(UserError, match="is a segmentation model; the config's task is 'classification'"):
        build_model({"name": "torchvision:fcn_resnet50"}, "student", "c.yaml", "classification", {"num_classes": 3})
    with pytest.raises(UserError, match="is a classification model; the config's task is 'segmentation'"):
        build_model({"name": "timm:resnet18"}, "student", "c.yaml", "segmentation", {"num_classes": 3})


def test_a_model_registered_from_python_only_is_pointed_at_the_import_path(capsys):
    from kdvision.registry import MODELS

    def tiny_registered_net(num_classes: int = 10):
        return torch.nn.Linear(3, num_classes)

    MODELS.register("tiny_registered_net")(tiny_registered_net)
    try:
        build_model({"name": "tiny_registered_net"}, "student", "c.yaml", "classification", {"num_classes": 4},
                    load_pretrained=True)
    finally:
        MODELS._items.pop("tiny_registered_net")
    err = capsys.readouterr().err
    assert "registered from Python only" in err and "name it by import path" in err
    with pytest.raises(UserError, match=r"c.yaml: student.name: unknown model 'tiny_registered_net' .*import path"):
        build_model({"name": "tiny_registered_net"}, "student", "c.yaml", "classification", {"num_classes": 4})
    build_model({"name": "torch.nn:Identity"}, "student", "c.yaml", "classification", {}, load_pretrained=True)
    assert capsys.readouterr().err == ""  # an import path rebuilds anywhere: nothing to say


def test_without_the_data_the_class_count_is_read_off_the_weights():
    from kdvision.model_build import build_model_for_weights

    model = build_model_for_weights({"name": "torchvision:resnet18"}, "student", "c.yaml", "classification",
                                    resnet18_state(7))
    assert model.fc.out_features == 7


def test_a_teacher_pretrained_file_must_fit_its_classes(tmp_path):
    torch.save(resnet18_state(1000), tmp_path / "r18.pth")
    with pytest.raises(UserError, match=r"teacher.model.pretrained: .* classifier for 1000 classes, the model 10 "
                                        r"\(fc.weight, fc.bias\); .* give teacher.checkpoint"):
        build_model({"name": "torchvision:resnet18", "pretrained": str(tmp_path / "r18.pth")}, "teacher.model",
                    "c.yaml", "classification", {"num_classes": 10}, load_pretrained=True, new_head=False)
