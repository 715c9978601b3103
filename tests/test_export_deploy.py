"""Exports that deploy: dynamic height/width, relative+absolute parity, no overwrite, metadata."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from safetensors import safe_open
from torch import nn

from kdvision.engine.checkpoint import save_checkpoint
from kdvision.errors import UserError
from kdvision.export import ATOL, RTOL, export_student, parity
from kdvision.models import MODELS
from tests.conftest import run_cli
from tests.seg_folder_files import CLASSES, H, W, seg_config, write_seg_folder
from tests.test_cli_errors import one_line_error


def save_run(run, config: dict, student: nn.Module) -> None:
    """A run directory as the trainer leaves it: config.yaml and a checkpoint of the student."""
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for m in student.modules():  # non-trivial BN statistics, so eval mode matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    state = {f"student.{k}": v for k, v in student.state_dict().items()}
    save_checkpoint({"model": state, "epoch": 1}, run / "checkpoints" / "last.pt")


@pytest.fixture
def seg_run(tmp_path):
    write_seg_folder(tmp_path / "data")
    torch.manual_seed(0)
    student = MODELS.get("pspnet_r18")(num_classes=3, base_width=4)
    save_run(tmp_path / "seg_run", seg_config(tmp_path / "data"), student)
    return tmp_path / "seg_run", student.eval()


@pytest.fixture
def restoration_run(tmp_path):
    config = {"task": "restoration", "seed": 0,
              "data": {"name": "embedded_haze", "crop": 32, "train_size": 2, "val_size": 2, "test_size": 2},
              "student": {"name": "ktdn", "size": "small"}, "method": {"name": "student"},
              "eval": {"colour": "rgb", "self_ensemble": False}}
    torch.manual_seed(0)
    student = MODELS.get("ktdn")(size="small")
    save_run(tmp_path / "restoration_run", config, student)
    return tmp_path / "restoration_run", student.eval()


def onnx_matches_pytorch_at(path, student, sizes):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n, h, w in sizes:
        x = torch.randn(n, 3, h, w)
        got = session.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            out = student(x)
        want = (out["out"] if isinstance(out, dict) else out).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_segmentation_onnx_runs_at_other_sizes_and_carries_metadata(seg_run, tmp_path):
    run, student = seg_run
    out = tmp_path / "seg.onnx"
    done = run_cli("export", str(run), "--format", "onnx", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "any batch, height and width" in done.stdout and "classes background, cat, dog" in done.stdout
    assert done.stdout.count("check: onnxruntime") == 2  # two input sizes checked
    model = onnx.load(str(out))
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim] == ["batch", "", "height", "width"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["task"] == "segmentation" and json.loads(meta["class_names"]) == list(CLASSES)
    assert json.loads(meta["input_size"]) == [3, H, W]
    assert json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta["std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert meta["kdvision_version"]
    onnx_matches_pytorch_at(out, student, [(2, 24, 40), (1, 56, 72)])


def test_restoration_onnx_runs_at_other_sizes(restoration_run, tmp_path):
    run, student = restoration_run
    out = tmp_path / "ktdn.onnx"
    done = run_cli("export", str(run), "--format", "onnx", "--out", str(out))
    assert done.returncode == 0, done.stderr
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["task"] == "restoration" and json.loads(meta["std"]) == [1.0, 1.0, 1.0]
    onnx_matches_pytorch_at(out, student, [(2, 48, 32), (1, 64, 80)])


def test_export_never_overwrites_without_force(seg_run, tmp_path):
    run, _ = seg_run
    out = tmp_path / "student.onnx"
    out.write_bytes(b"my own file")
    one_line_error(run_cli("export", str(run), "--format", "onnx", "--out", str(out)), str(out), "--force")
    assert out.read_bytes() == b"my own file"
    done = run_cli("export", str(run), "--format", "onnx", "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    onnx.checker.check_model(onnx.load(str(out)))
    config = (run / "config.yaml").read_bytes()
    for own in ("config.yaml", "checkpoints/last.pt"):
        with pytest.raises(UserError, match="run's own files"):
            export_student(run, "onnx", run / own, force=True)
    assert (run / "config.yaml").read_bytes() == config
    with pytest.raises(UserError, match="is a folder"):
        export_student(run, "onnx", tmp_path, force=True)


def test_failing_parity_check_leaves_no_file(seg_run, tmp_path):
    run, _ = seg_run
    out = tmp_path / "exports" / "student.onnx"
    one_line_error(run_cli("export", str(run), "--format", "onnx", "--out", str(out), "--atol", "0", "--rtol", "0"),
                   str(out), "does not match PyTorch", "nothing was written")
    assert not out.exists() and not any(out.parent.iterdir())  # no temporary file either
    out.write_bytes(b"kept")  # a failed --force export keeps the file it would have replaced
    with pytest.raises(UserError, match="does not match PyTorch"):
        export_student(run, "torchscript", out, atol=0.0, rtol=0.0, force=True)
    assert out.read_bytes() == b"kept" and [p.name for p in out.parent.iterdir()] == ["student.onnx"]


def test_safetensors_export_carries_the_metadata(seg_run, tmp_path):
    run, _ = seg_run
    out = tmp_path / "s.safetensors"
    done = run_cli("export", str(run), "--format", "safetensors", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta == report["metadata"] and json.loads(meta["class_names"]) == list(CLASSES)
    assert meta["format"] == "kdvision-student" and meta["dynamic_axes"] == "batch,height,width"


def test_parity_is_relative_plus_absolute():
    want = torch.tensor([3.0e4, 1.0, 0.0])
    close = want + torch.tensor([2.4e-3, 1e-4, 5e-5])  # large logits: relative error 8e-8
    assert parity(close, want, ATOL, RTOL)["ok"]
    assert not parity(close, want, ATOL, 0.0)["ok"]  # a fixed absolute tolerance rejects it
    assert not parity(want + torch.tensor([0.0, 2e-3, 0.0]), want, ATOL, RTOL)["ok"]  # 2e-3 > 1e-4 + 1e-3 * 1
    assert not parity(want.clone().fill_(float("nan")), want, ATOL, RTOL)["ok"]
    assert not parity(want[:2], want, ATOL, RTOL)["ok"]
