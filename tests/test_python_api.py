"""The Python surface: methods without a config or task, the README's own-loop example, and
``import kdvision.methods`` loading no data set."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import kdvision
from kdvision.methods import METHODS, create
from kdvision.methods.base import TASK_TERM, TaskLoss, as_task_loss

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_own_loop_example_runs_and_trains(capsys):
    code = readme_block("Distil in your own loop")
    namespace = {}
    torch.manual_seed(0)
    exec(compile(code, "README.md", "exec"), namespace)
    method, losses = namespace["method"], namespace["losses"]
    assert set(losses) == {"ce", "kd"}
    assert all(p.grad is None for p in method.teacher.parameters())  # frozen teacher
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.student.parameters())
    assert method.teacher.training is False and method.student.training
    assert "'kd':" in capsys.readouterr().out


def test_a_method_from_a_plain_callable_weights_its_terms():
    torch.manual_seed(0)
    student, teacher = kdvision.models.create("resnet8", num_classes=5), kdvision.models.create("resnet8", num_classes=5)
    batch = {"input": torch.randn(4, 3, 16, 16), "target": torch.arange(4)}
    method = create("kd", student, teacher, weights={"ce": 0.25},
                    task_loss=lambda out, b: {"ce": F.cross_entropy(out, b["target"])})
    method.train()
    _, losses = method(batch)
    assert torch.allclose(losses["ce"], 0.25 * method.raw_terms["ce"])
    assert torch.allclose(losses["kd"], 0.9 * method.raw_terms["kd"])  # the method's default weight
    # a task loss that returns one tensor is the term "task"
    single = create("student", student, task_loss=lambda out, b: F.cross_entropy(out, b["target"]))
    _, terms = single(batch)
    assert set(terms) == {TASK_TERM}
    assert torch.allclose(terms[TASK_TERM], F.cross_entropy(student(batch["input"]), batch["target"]))


def test_task_loss_protocol_and_clear_errors():
    class CE:
        def loss(self, output, batch):
            return {"ce": F.cross_entropy(output, batch["target"])}

    assert isinstance(CE(), TaskLoss)
    out, batch = torch.randn(3, 4), {"target": torch.tensor([0, 1, 2])}
    assert set(as_task_loss(CE())(out, batch)) == {"ce"}
    with pytest.raises(TypeError, match="task_loss="):
        create("student", torch.nn.Linear(2, 2))({"input": torch.randn(1, 2)})
    with pytest.raises(TypeError, match="task_loss must be callable"):
        as_task_loss(3)
    with pytest.raises(TypeError, match="no parameter 'temprature'"):
        create("kd", torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), temprature=2.0)


def test_constructors_take_no_teacher_domains_but_tkl_does():
    import inspect

    for name in METHODS.names():
        params = inspect.signature(METHODS.get(name).__init__).parameters
        assert ("teacher_domains" in params) == (name == "tkl"), name


def test_stable_surface_is_exported():
    from kdvision.config import load_config
    from kdvision.engine.trainer import Trainer
    from kdvision.taps import FeatureTaps

    assert kdvision.Trainer is Trainer and kdvision.load_config is load_config
    assert kdvision.FeatureTaps is FeatureTaps and kdvision.METHODS is METHODS
    assert kdvision.methods.create is create and callable(kdvision.models.create)
    assert callable(kdvision.losses.kd_loss)
    with pytest.raises(AttributeError):
        kdvision.no_such_thing


def test_importing_methods_loads_no_data_set_task_or_config():
    """Only the constraint types the methods' Params are annotated with (config_checks, a leaf module)."""
    code = ("import sys, kdvision.methods; "
            "print(sorted(m for m in sys.modules if m.startswith(('kdvision.data', 'kdvision.tasks', "
            "'kdvision.config', 'kdvision.engine')) and m != 'kdvision.config_checks'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, check=True).stdout
    assert out.strip() == "[]"


def test_cache_and_evaluate_do_not_import_the_trainer():
    code = ("import sys, kdvision.cache.attach, kdvision.engine.evaluate; "
            "print('kdvision.engine.trainer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, check=True).stdout
    assert out.strip() == "False"


def test_task_method_info_holds_the_facts_methods_read():
    from kdvision.config import config_from_dict
    from kdvision.tasks import TASKS

    cfg = config_from_dict({"data": {"name": "digits"}, "student": {"name": "resnet8"},
                            "method": {"name": "student"}}, "test.yaml")
    task = TASKS.get("classification")(cfg)
    info = task.method_info()
    train = task.datasets()["train"]
    assert info["num_samples"] == len(train) and info["data_name"] == "digits" and info["num_classes"] == 10
    assert [int(info["labels"][i]) for i in (0, 7, len(train) - 1)] == \
        [int(train[i]["target"]) for i in (0, 7, len(train) - 1)]
