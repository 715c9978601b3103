"""The demo through the real CLI on a very short schedule (2 epochs, 2 seeds; its real run is `make demo`):
its table's mean ± std and paired differences against the runs it wrote, the shared teacher, and
the curves' unweighted CE."""
import json

import numpy as np
import pytest
from scipy import stats

from kdvision.demo import mean_curve, unweighted_ce
from tests.conftest import run_cli

STUDENTS = {"student alone": "student", "student+KD": "kd"}


def table(stdout: str) -> dict[str, list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ")][1:]  # after the header
    return {c[0]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines)}


def test_demo_table_through_the_cli(tmp_path):
    root = tmp_path / "demo"
    done = run_cli("demo", "--out", str(root), "--scale", "0.007", "--seeds", "2")
    assert done.returncode == 0, done.stderr
    cells = table(done.stdout)
    assert list(cells) == ["teacher", *STUDENTS]
    acc = {label: [json.loads((root / name / f"seed{s}" / "summary.json").read_text())["test_last"]["acc"]
                   for s in (0, 1)] for label, name in STUDENTS.items()}
    for label in STUDENTS:
        assert cells[label][2] == f"{np.mean(acc[label]):.2f} ± {np.std(acc[label], ddof=1):.2f}"
        assert cells[label][4] == "2"
        if label == "student alone":
            assert cells[label][3] == "-"
            continue
        d = np.subtract(acc[label], acc["student alone"])  # paired, seed by seed
        half = stats.t.ppf(0.975, 1) * d.std(ddof=1) / np.sqrt(2)
        want = f"{d.mean():+.2f} [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}]"
        spans = d.mean() - half <= 0 <= d.mean() + half
        assert cells[label][3] == want + (", no measurable effect" if spans else "")
    teacher = json.loads((root / "teacher" / "summary.json").read_text())["test_last"]["acc"]
    assert cells["teacher"][2] == f"{teacher:.2f}" and cells["teacher"][4] == "1"
    assert int(cells["teacher"][5].replace(",", "")) > int(cells["student alone"][5].replace(",", ""))
    assert "95% t-interval" in done.stdout and (root / "results.md").read_text().count("| student+") == 1
    # one teacher, trained once, shared by every seed of every student
    for name in ("kd",):
        for s in (0, 1):
            assert f"checkpoint: {root / 'teacher'}" in (root / name / f"seed{s}" / "config.yaml").read_text()
            assert not (root / name / f"seed{s}" / "teachers").exists()
    assert (root / "curves.png").stat().st_size > 10_000

    # the curves plot the UNWEIGHTED CE: KD weights CE by 0.1, its raw value is 10x the weighted one
    runs = [[json.loads(line) for line in (root / "kd" / f"seed{s}" / "metrics.jsonl").read_text().splitlines()]
            for s in (0, 1)]
    first = runs[0][0]
    assert unweighted_ce(first) == first["train/raw/ce"]
    assert first["train/raw/ce"] * first["train/weight/ce"] == pytest.approx(first["train/ce"], rel=1e-5)
    epochs, means = mean_curve(runs, unweighted_ce)
    assert epochs == [1, 2] and means[0] == pytest.approx((runs[0][0]["train/raw/ce"] + runs[1][0]["train/raw/ce"]) / 2)
    assert unweighted_ce({"train/ce": 1.5}) == 1.5  # a run with no weights logs only train/ce


def test_demo_refuses_zero_seeds(tmp_path):
    done = run_cli("demo", "--out", str(tmp_path / "d"), "--seeds", "0")
    assert done.returncode == 2 and "kdvision: error:" in done.stderr and "--seeds" in done.stderr
    assert "at least 1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "d").exists()


def test_thinning_validation_leaves_training_unchanged(tmp_path):
    """The demo validates every 10th epoch only and claims its seeds' results equal the
    benchmark's (validation every epoch): evaluation must not touch the training's random streams."""
    import copy

    import torch

    from kdvision.config import config_from_dict
    from kdvision.engine.trainer import Trainer
    from tests.conftest import TINY_DIGITS

    results = []
    for every in (1, 3):
        data = copy.deepcopy(TINY_DIGITS)
        data["train"].update(epochs=3, eval_every=every)
        trainer = Trainer(config_from_dict(data, "tiny.yaml"), tmp_path / f"every{every}", quiet=True)
        summary = trainer.fit()
        rows = [json.loads(line) for line in (tmp_path / f"every{every}" / "metrics.jsonl").read_text().splitlines()]
        results.append((summary["test_last"], {k: v.clone() for k, v in trainer.method.student.state_dict().items()},
                        rows))
    (test_a, weights_a, rows_a), (test_b, weights_b, rows_b) = results
    assert [("val/acc" in r) for r in rows_b] == [False, False, True]  # it did thin the validation
    assert test_a == test_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert [r["train/ce"] for r in rows_a] == [r["train/ce"] for r in rows_b]
