"""Export of the student alone (ONNX, safetensors, TorchScript) and the profile's MAC count."""
import numpy as np
import onnx
import onnxruntime as ort
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from kdvision.engine.checkpoint import save_checkpoint
from kdvision.export import export_student
from kdvision.models import MODELS
from kdvision.profile import count_macs
from tests.conftest import TINY_DIGITS, run_cli


def fake_run(tmp_path, with_connectors=False):
    """A run directory as the trainer leaves it: config.yaml and the student's weights."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**TINY_DIGITS, "method": {"name": "student"}}))
    torch.manual_seed(0)
    student = MODELS.get("resnet8")(num_classes=10)
    for m in student.modules():  # non-trivial BN statistics, so eval mode matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    state = {f"student.{k}": v for k, v in student.state_dict().items()}
    if with_connectors:
        state["regressors.0.0.weight"] = torch.randn(8, 4, 1, 1)
    save_checkpoint({"model": state, "epoch": 1}, run / "checkpoints" / "last.pt")
    return run, student.eval()


def test_onnx_export_matches_pytorch_at_any_batch_size(tmp_path):
    run, student = fake_run(tmp_path)
    out = tmp_path / "student.onnx"
    done = run_cli("export", str(run), "--format", "onnx", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "max abs diff" in done.stdout
    graph = onnx.load(str(out)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = torch.randn(5, 3, 8, 8)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = student(x).numpy()
    assert np.abs(got - want).max() < 1e-4


def test_safetensors_export_holds_the_student_and_nothing_else(tmp_path):
    run, student = fake_run(tmp_path, with_connectors=True)
    r = export_student(run, "safetensors", tmp_path / "s.safetensors")
    assert r["max_abs_diff"] == 0.0
    saved = load_file(str(tmp_path / "s.safetensors"))
    assert set(saved) == set(student.state_dict())
    for k, v in student.state_dict().items():
        assert torch.equal(saved[k], v), k


def test_torchscript_export_runs_without_kdvision_classes(tmp_path):
    run, student = fake_run(tmp_path)
    r = export_student(run, "torchscript", tmp_path / "s.pt")
    assert r["max_abs_diff"] < 1e-5
    loaded = torch.jit.load(str(tmp_path / "s.pt"))
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), student(x))


def test_macs_count_convolutions_and_linear_layers():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    assert count_macs(net, (3, 8, 8)) == 8 * 8 * 4 * 3 * 9 + 256 * 10
