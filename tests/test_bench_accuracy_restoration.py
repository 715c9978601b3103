"""``kdvision bench accuracy`` on restoration runs: PSNR in dB with SSIM beside it."""
from __future__ import annotations

import numpy as np

from kdvision.benchmarks_lib import accuracy
from tests.test_bench_accuracy import table_rows, write_run


def psnr_summary(psnr: float, ssim: float) -> dict:
    return {"metric": "psnr", "epochs": 6, "best_epoch": 6, "val_best_psnr": psnr,
            "test_last": {"psnr": psnr, "ssim": ssim}, "test_best": {"psnr": psnr + 0.5, "ssim": ssim - 0.01},
            "student_parameters": 10, "wall_s": 1.0, "device": "cpu"}


def test_psnr_table_is_in_db_with_ssim_columns(tmp_path):
    psnr, ssim = [17.2, 18.0, 17.5], [0.61, 0.64, 0.62]
    for s in range(3):
        write_run(tmp_path, "student", s, psnr_summary(psnr[s], ssim[s]))
    accuracy.write_results(tmp_path, ["student"], [0, 1, 2], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    assert "test psnr, final epoch (dB)" in text and "(%)" not in text
    cells = table_rows(text)["student"]
    assert cells[4] == f"{np.mean(psnr):.2f} ± {np.std(psnr, ddof=1):.2f}"
    assert cells[9] == f"{np.mean(ssim):.4f} ± {np.std(ssim, ddof=1):.4f}"
    best = np.array(ssim) - 0.01
    assert cells[10] == f"{best.mean():.4f} ± {np.std(best, ddof=1):.4f}"
