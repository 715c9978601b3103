"""Options of export, profile and bench: a bad value is one ``kdvision: error:`` line, exit 2,
before anything runs or is written. One CLI run per command, the rest in-process through
``kdvision.cli.main`` (the same parser)."""
import pytest
import yaml

from kdvision.cli import main
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as the trainer leaves it: its config and the student's weights (untrained)."""
    from kdvision.engine.checkpoint import save_safetensors
    from kdvision.models import create

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(TINY_DIGITS))
    save_safetensors(create("resnet8", num_classes=10).state_dict(), run / "student.safetensors")
    return run


def parse_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdvision: error: "), lines
    return lines[0]


def test_export_opset_below_supported(run_dir, tmp_path):
    out = tmp_path / "s.onnx"
    one_line_error(run_cli("export", str(run_dir), "--format", "onnx", "--out", str(out), "--opset", "5"),
                   "kdvision: error: export: argument --opset: must be at least 7, got 5")
    assert not out.exists()


def test_export_input_size_the_student_cannot_take(run_dir, tmp_path):
    out = tmp_path / "s.onnx"
    one_line_error(run_cli("export", str(run_dir), "--format", "onnx", "--out", str(out), "--input-size", "1,16,16"),
                   "--input-size 1,16,16 does not fit the student (resnet8)", "3 channels")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--opset", "21"], "argument --opset: must be at most 20"),
    (["--opset", "seventeen"], "argument --opset: expected an integer, got 'seventeen'"),
    (["--input-size", "3,16"], "argument --input-size: expected C,H,W such as 3,32,32, got '3,16'"),
    (["--input-size", "3,0,16"], "argument --input-size: expected C,H,W"),
    (["--input-size", "3,100000,16"], "argument --input-size: height and width must be at most 8192"),
])
def test_export_option_values(capsys, run_dir, tmp_path, args, fragment):
    line = parse_error(capsys, "export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "s.onnx"), *args)
    assert fragment in line, line


def test_profile_repeats_zero(tmp_path):
    cfg = str(write_yaml(tmp_path / "c.yaml", TINY_DIGITS))
    one_line_error(run_cli("profile", cfg, "--repeats", "0"), "kdvision: error: profile: argument --repeats: must be at least 1")


@pytest.mark.parametrize("args, fragment", [
    (["--threads", "-1"], "argument --threads: must be at least 1, got -1"),
    (["--batch", "-1"], "argument --batch: must be at least 1, got -1"),
    (["--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["--input-size", "3x8"], "argument --input-size: expected C,H,W"),
])
def test_profile_option_values(capsys, tmp_path, args, fragment):
    cfg = str(write_yaml(tmp_path / "c.yaml", TINY_DIGITS))
    assert fragment in parse_error(capsys, "profile", cfg, *args)


def test_profile_input_size_the_model_cannot_take(capsys, tmp_path):
    cfg = str(write_yaml(tmp_path / "c.yaml", TINY_DIGITS))
    assert main(["profile", cfg, "--input-size", "1,8,8", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdvision: error: input size 1,8,8 does not fit the student (resnet8)"), err


def test_bench_overhead_batch_zero():
    one_line_error(run_cli("bench", "overhead", "--batch", "0"),
                   "kdvision: error: bench overhead: argument --batch: must be at least 1, got 0")


@pytest.mark.parametrize("args, fragment", [
    (["overhead", "--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (["overhead", "--num-classes", "0"], "argument --num-classes: must be at least 1, got 0"),
    (["overhead", "--warmup", "-1"], "argument --warmup: must be at least 0, got -1"),
    (["overhead", "--size", "0"], "argument --size: must be at least 1, got 0"),
    (["accuracy", "c.yaml", "--out", "o", "--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["cache", "--views", "0"], "argument --views: must be at least 1, got 0"),
])
def test_bench_option_values(capsys, args, fragment):
    assert fragment in parse_error(capsys, "bench", *args)


def test_every_parse_error_is_one_line(capsys):
    assert parse_error(capsys, "trian").startswith("kdvision: error: argument command: invalid choice: 'trian'")
    assert "the following arguments are required: run, --format, --out" in parse_error(capsys, "export")
