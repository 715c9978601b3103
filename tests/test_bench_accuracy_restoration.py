"""``kdvision bench accuracy`` on restoration runs: PSNR in dB with SSIM beside it."""
from __future__ import annotations

import numpy as np

from kdvision.benchmarks_lib import accuracy_report
from tests.test_bench_accuracy import table_rows, write_run


def psnr_summary(psnr: float, ssim: float) -> dict:
    return {"metric": "psnr", "epochs": 6, "best_epoch": 6, "val_best_psnr": psnr,
            "test_last": {"psnr": psnr, "ssim": ssim}, "test_best": {"psnr": psnr + 0.5, "ssim": ssim - 0.01},
            "student_parameters": 10, "wall_s": 1.0, "device": "cpu"}


def test_psnr_table_is_in_db_with_ssim_columns(tmp_path):
    psnr, ssim = [17.2, 18.0, 17.5], [0.61, 0.64, 0.62]
    for s in range(3):
        write_run(tmp_path, "student", s, psnr_summary(psnr[s], ssim[s]))
    accuracy_report.write_results(tmp_path, ["student"], [0, 1, 2], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    assert "test psnr, final epoch (dB)" in text and "(%)" not in text
    cells = table_rows(text)["student"]
    assert cells[4] == f"{np.mean(psnr):.2f} ± {np.std(psnr, ddof=1):.2f}"
    assert cells[9] == f"{np.mean(ssim):.4f} ± {np.std(ssim, ddof=1):.4f}"
    best = np.array(ssim) - 0.01
    assert cells[10] == f"{best.mean():.4f} ± {np.std(best, ddof=1):.4f}"


def weather_summary(values: dict[str, tuple[float, float]]) -> dict:
    """A restoration summary with the per-domain keys the task writes (psnr_<d>, ssim_<d>, images_<d>)."""
    test = {"psnr": float(np.mean([p for p, _ in values.values()])), "ssim": 0.5}
    for d, (p, q) in values.items():
        test.update({f"psnr_{d}": p, f"ssim_{d}": q, f"images_{d}": 4})
    if len(values) > 1:
        test["psnr_domain_mean"] = float(np.mean([p for p, _ in values.values()]))
        test["ssim_domain_mean"] = float(np.mean([q for _, q in values.values()]))
    return {"metric": "psnr", "epochs": 2, "best_epoch": 2, "val_best_psnr": 1.0, "test_last": test,
            "test_best": test, "student_parameters": 10, "wall_s": 1.0, "device": "cpu"}


def test_per_weather_table_has_a_column_per_type_and_their_mean(tmp_path):
    haze = [(20.0, 0.80), (21.0, 0.82), (22.5, 0.83)]
    rain = [(25.0, 0.90), (24.0, 0.88), (26.0, 0.91)]
    for s in range(3):
        write_run(tmp_path, "teacher_haze", s, weather_summary({"haze": haze[s]}))
        write_run(tmp_path, "student", s, weather_summary({"haze": haze[s], "rain": rain[s]}))
    accuracy_report.write_results(tmp_path, ["teacher_haze", "student"], [0, 1, 2], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| recipe | haze"))
    assert header == "| recipe | haze | rain | mean over types |"
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
             for line in text.split(header)[1].strip().splitlines()[1:3]}
    h, r = np.array(haze), np.array(rain)
    assert lines["teacher_haze"][1] == f"{h[:, 0].mean():.2f} ± {np.std(h[:, 0], ddof=1):.2f} / " \
                                       f"{h[:, 1].mean():.4f} ± {np.std(h[:, 1], ddof=1):.4f}"
    assert lines["teacher_haze"][2:] == ["-", "-"]  # a specialist is not tested on rain
    per_run_mean = (h[:, 0] + r[:, 0]) / 2
    assert lines["student"][3].startswith(f"{per_run_mean.mean():.2f} ± {np.std(per_run_mean, ddof=1):.2f} / ")


def test_unit_and_second_metric_come_from_the_task(tmp_path, monkeypatch):
    """The table reads the task's ``metric_unit`` and ``secondary_metric``, not a table by metric name."""
    from kdvision.tasks.restoration import RestorationTask

    monkeypatch.setattr(RestorationTask, "metric_unit", "decibel")
    monkeypatch.setattr(RestorationTask, "secondary_metric", None)
    for s in range(2):
        write_run(tmp_path, "student", s, psnr_summary(17.0 + s, 0.6))
        (tmp_path / "runs" / "student" / f"seed{s}" / "config.yaml").write_text("task: restoration\n")
    accuracy_report.write_results(tmp_path, ["student"], [0, 1], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    assert "test psnr, final epoch (decibel)" in text and "ssim" not in text
