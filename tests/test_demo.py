"""The demo's plumbing on a very short schedule (its real 3-minute run is `make demo`)."""
from kdvision.demo import run_demo


def test_demo_prints_table_and_writes_curves(tmp_path, capsys):
    rows = run_demo(str(tmp_path / "demo"), epochs_scale=0.05)
    assert [r["run"] for r in rows] == ["teacher", "student alone", "student+KD", "student+FitNet", "student+AT"]
    assert rows[0]["parameters"] > rows[1]["parameters"] == rows[2]["parameters"]
    assert all(0 <= r["test_acc"] <= 100 and r["latency_ms"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "| student+KD |" in out and "CPU latency" in out
    assert (tmp_path / "demo" / "curves.png").stat().st_size > 10_000
    # the students reused the demo's own teacher instead of training another
    assert not (tmp_path / "demo" / "kd" / "teachers").exists()
