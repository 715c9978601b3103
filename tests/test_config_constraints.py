"""Ranges, finiteness and choices of the config schema (kdvision/config_checks.py): one CLI run
per class of mistake, the rest of each class in-process (same loader, same message)."""
import math
import re

import pytest

from kdvision.config import config_from_dict, load_config, params_from_dict
from kdvision.config_checks import MAX_SEED, Range
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def tiny(tmp_path, **changes):
    return str(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, **changes}))


# ----------------------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("override, fragment", [
    ("data.batch_size=0", "'data.batch_size' must be an integer in [1, 2147483647] (got 0)"),  # a range
    ("train.optimizer.lr=nan", "'train.optimizer.lr' must be a finite number > 0 (got nan)"),  # finiteness
    ("train.device=tpu", "'train.device' must be one of auto, cpu, cuda, cuda:N, mps (got 'tpu')"),  # choices
    ("train.epochs=0", "'train.epochs' must be an integer >= 1 (got 0); to measure weights without training"),
])
def test_schema_constraint_is_one_line_naming_key_and_range(tmp_path, override, fragment):
    out = tmp_path / "run"
    one_line_error(run_cli("train", tiny(tmp_path), "--out", str(out), override), "c.yaml: ", fragment)
    assert not out.exists()


def test_data_builder_bound_refuses_a_huge_resolution_before_allocating(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", tiny(tmp_path), "--out", str(out), "data.resolution=100000")
    one_line_error(result, "'data.resolution' must be an integer in [8, 256] (got 100000)")
    assert not out.exists()


def test_method_parameter_range_through_the_cli(tmp_path):
    path = tiny(tmp_path, method={"name": "kd", "temperature": -3.0},
                teacher={"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")})
    one_line_error(run_cli("train", path, "--check"), "'method.temperature' must be a finite number > 0 (got -3)")


# ----------------------------------------------------------------------------- in-process
@pytest.mark.parametrize("override, fragment", [
    ("data.workers=-1", "'data.workers' must be an integer in [0, 256] (got -1)"),
    ("data.workers=100000", "'data.workers' must be an integer in [0, 256] (got 100000)"),
    ("data.eval_batch_size=0", "'data.eval_batch_size' must be an integer in [1, 2147483647] (got 0)"),
    (f"data.batch_size={2 ** 70}", "'data.batch_size' must be an integer in [1, 2147483647]"),
    ("train.optimizer.lr=-1", "'train.optimizer.lr' must be a finite number > 0 (got -1)"),
    ("train.optimizer.lr=.inf", "'train.optimizer.lr' must be a finite number > 0 (got inf)"),
    ("train.optimizer.momentum=-0.1", "'train.optimizer.momentum' must be a finite number >= 0 (got -0.1)"),
    ("train.optimizer.weight_decay=.nan", "'train.optimizer.weight_decay' must be a finite number >= 0"),
    ("train.optimizer.betas=[0.9]", "'train.optimizer.betas' must be a list of 2 items"),
    ("train.optimizer.betas=[0.9,1.0]", "'train.optimizer.betas[1]' must be a finite number in [0, 1) (got 1)"),
    ("train.optimizer.name=lion", "'train.optimizer.name' must be one of sgd, adam, adamw (got 'lion')"),
    ("train.optimizer.name=SGD", "'train.optimizer.name' must be one of sgd, adam, adamw (got 'SGD')"),
    ("seed=1e23", "'seed' must be an integer"),  # YAML 1.1 reads 1e23 as a string
    ("seed=1.0e+23", "'seed' must be an integer, got float"),
    (f"seed={2 ** 63}", f"'seed' must be an integer in [0, {MAX_SEED}] (got {2 ** 63})"),
    ("seed=-1", "'seed' must be an integer in [0, "),
    ("train.device=cuda:x", "'train.device' must be one of auto, cpu, cuda, cuda:N, mps (got 'cuda:x')"),
    ("train.epochs=-1", "'train.epochs' must be an integer >= 1 (got -1)"),
    ("train.eval_every=0", "'train.eval_every' must be an integer >= 1 (got 0)"),
    ("train.log_every=0", "'train.log_every' must be an integer >= 1 (got 0)"),
    ("train.precision=fp64", "'train.precision' must be one of auto, fp32, bf16, fp16 (got 'fp64')"),
    ("train.schedule.name=cos", "'train.schedule.name' must be one of multistep, step, cosine, poly, constant"),
    ("train.schedule.by=batch", "'train.schedule.by' must be one of epoch, step (got 'batch')"),
    ("train.schedule.milestones=[5,-1]", "'train.schedule.milestones[1]' must be an integer >= 0 (got -1)"),
    ("train.schedule.warmup_start_factor=2", "'train.schedule.warmup_start_factor' must be a finite number in [0, 1]"),
    ("train.grad_clip=0", "'train.grad_clip' must be a finite number > 0 (got 0)"),
    ("train.max_steps_per_epoch=0", "'train.max_steps_per_epoch' must be an integer >= 1 (got 0)"),
    ("train.distributed.backend=mpi", "'train.distributed.backend' must be one of auto, gloo, nccl (got 'mpi')"),
    ("train.distributed.timeout_s=0", "'train.distributed.timeout_s' must be a finite number > 0 (got 0)"),
    ("teacher_cache={views: 0}", "'teacher_cache.views' must be an integer >= 1 (got 0)"),
    ("teacher_cache={dtype: int8}", "'teacher_cache.dtype' must be one of fp16, bf16, fp32 (got 'int8')"),
    ("student.name=5", "'student.name' must be a string, got int 5"),
])
def test_every_schema_constraint_names_key_and_allowed_values(tiny_config, override, fragment):
    with pytest.raises(UserError) as e:
        load_config(tiny_config, [override])
    assert str(e.value).startswith(f"{tiny_config}: ") and fragment in str(e.value), str(e.value)


def test_values_inside_the_ranges_are_accepted(tiny_config):
    cfg = load_config(tiny_config, ["seed=0", f"seed={MAX_SEED}", "train.device=cuda:3", "train.device=mps",
                                    "train.optimizer.lr=1e-5", "train.optimizer.momentum=0", "train.grad_clip=5",
                                    "data.workers=0", "train.schedule.warmup_start_factor=1"])
    assert cfg.seed == MAX_SEED and cfg.train.device == "mps" and cfg.train.grad_clip == 5.0


def test_stages_that_add_up_to_no_epochs_are_refused(tmp_path):
    stages = [{"name": "a", "epochs": 0}, {"name": "b", "epochs": 0}]
    with pytest.raises(UserError, match=r"'train.stages' add up to 0 epochs"):
        load_config(tiny(tmp_path, train={"stages": stages}))
    with pytest.raises(UserError, match=r"'train.stages\[1\].epochs' must be an integer >= 0 \(got -2\)"):
        load_config(tiny(tmp_path, train={"stages": [{"name": "a", "epochs": 1}, {"name": "b", "epochs": -2}]}))
    cfg = load_config(tiny(tmp_path, train={"stages": [{"name": "a", "epochs": 0}, {"name": "b", "epochs": 2}]}))
    assert cfg.train.epochs == 2


@pytest.mark.parametrize("method, fragment", [
    ({"name": "kd", "temperature": -1.0}, "'method.temperature' must be a finite number > 0 (got -1)"),
    ({"name": "pixel_kd", "reduction": "sum"}, "'method.reduction' must be one of pixel, element (got 'sum')"),
    ({"name": "apd", "pooling": "pixel"}, "'method.pooling' must be one of image, batch (got 'pixel')"),
    ({"name": "apd", "pool_images": -1}, "'method.pool_images' must be an integer >= 0 (got -1)"),
    ({"name": "frskd", "width": 0}, "'method.width' must be an integer >= 1 (got 0)"),
    ({"name": "frskd", "temperature": 0}, "'method.temperature' must be a finite number > 0 (got 0)"),
    ({"name": "tkl", "hcr_negatives": "max"}, "'method.hcr_negatives' must be one of mean, sum (got 'max')"),
    ({"name": "frskd", "dense_self_teacher": "fpn"}, "'method.dense_self_teacher' must be one of official, "),
    ({"name": "ktdn", "eval_mode_after_epoch": -1}, "'method.eval_mode_after_epoch' must be an integer >= 0"),
])
def test_method_parameters_are_range_checked(method, fragment):
    from kdvision.methods import METHODS

    with pytest.raises(UserError) as e:
        params_from_dict(METHODS.get(method["name"]).Params, method, "method", "m.yaml")
    assert str(e.value).startswith(f"m.yaml: {fragment}"), str(e.value)


@pytest.mark.parametrize("weights, fragment", [
    ({"kd": -0.5}, "'method.weights.kd' must be a finite number >= 0 (got -0.5)"),
    ({"ce": float("nan")}, "'method.weights.ce' must be a finite number >= 0 (got nan)"),
    ({"kd": {"schedule": "cosine", "epochs": 1, "to": 1}}, "'method.weights.kd.schedule' must be one of sigmoid_ramp"),
    ({"kd": {"schedule": "linear", "epochs": 2, "to": -1}}, "'method.weights.kd.to' must be a finite number >= 0"),
    ({"kd": {"schedule": "linear", "epochs": 2, "to": 1, "by": "batch"}}, "'method.weights.kd.by' must be one of"),
])
def test_loss_weights_are_range_checked(tmp_path, weights, fragment):
    from kdvision.engine.build import method_class, validate_method

    cfg = load_config(tiny(tmp_path, method={"name": "kd", "weights": weights}, teacher={"model": {"name": "resnet8"}}))
    with pytest.raises(UserError) as e:
        validate_method(cfg, method_class(cfg))
    assert fragment in str(e.value), str(e.value)


def test_stage_overrides_of_method_parameters_are_checked(tmp_path):
    from kdvision.engine.build import method_class, validate_stages

    cfg = load_config(tiny(tmp_path, method={"name": "kd"}, teacher={"model": {"name": "resnet8"}},
                           train={"stages": [{"name": "a", "epochs": 1, "method": {"temperature": -4}}]}))
    with pytest.raises(UserError, match=r"'train.stages\[0\].method.temperature' must be a finite number > 0"):
        validate_stages(cfg, method_class(cfg))


@pytest.mark.parametrize("data, fragment", [
    ({"name": "digits", "resolution": 4}, "'data.resolution' must be an integer in [8, 256] (got 4); the 8x8"),
    ({"name": "digits", "padding": -1}, "'data.padding' must be an integer >= 0 (got -1)"),
    ({"name": "digit_scenes", "size": 100000}, "'data.size' must be an integer in [32, 8192] (got 100000)"),
    ({"name": "digit_scenes", "train_size": 0}, "'data.train_size' must be an integer >= 1 (got 0)"),
    ({"name": "imagefolder", "root": "x", "size": 0}, "'data.size' must be an integer in [1, 8192] (got 0)"),
    ({"name": "embedded_haze", "crop": 20000}, "'data.crop' must be an integer in [1, 8192] (got 20000)"),
    ({"name": "embedded_weather", "size": 8}, "'data.size' must be an integer in [16, 8192] (got 8)"),
    ({"name": "voc", "scale_min": -0.5}, "'data.scale_min' must be a finite number > 0 (got -0.5)"),
])
def test_data_builder_parameters_are_range_checked(data, fragment):
    from kdvision.engine.build import build_task

    task = {"digits": "classification", "imagefolder": "classification", "digit_scenes": "segmentation",
            "voc": "segmentation"}.get(data["name"], "restoration")
    cfg = config_from_dict({**TINY_DIGITS, "task": task, "data": data}, "d.yaml")
    with pytest.raises(UserError) as e:
        build_task(cfg).datasets()
    assert str(e.value).startswith(f"d.yaml: {fragment}"), str(e.value)


@pytest.mark.parametrize("section, fragment", [
    ({"task": "restoration", "eval": {"colour": "lab"}}, "'eval.colour' must be one of rgb, y (got 'lab')"),
    ({"task": "restoration", "eval": {"lab_weight": -1}}, "'eval.lab_weight' must be a finite number >= 0 (got -1)"),
    ({"task": "restoration", "eval": {"multiple": 422329}}, "'eval.multiple' must be an integer in [0, 8192]"),
    ({"task": "segmentation", "eval": {"aux_weight": "big"}}, "'eval.aux_weight' must be a number, got str 'big'"),
    ({"task": "segmentation", "eval": {"aux_wieght": 0.4}}, "unknown key 'eval.aux_wieght'"),
])
def test_task_options_are_checked(section, fragment):
    from kdvision.engine.build import build_task

    with pytest.raises(UserError, match=re.escape(fragment)):
        build_task(config_from_dict({**TINY_DIGITS, **section}, "e.yaml"))


def test_range_messages_describe_every_kind_of_bound():
    assert Range(gt=0).describe(False) == "a finite number > 0"
    assert Range(ge=1).describe(True) == "an integer >= 1"
    assert Range(le=3).describe(True) == "an integer <= 3"
    assert Range(ge=0, lt=1).describe(False) == "a finite number in [0, 1)"
    assert Range(gt=0, le=2.5).describe(False) == "a finite number in (0, 2.5]"
    assert not Range().holds(math.inf) and not Range().holds(math.nan) and Range().holds(-1e300)
