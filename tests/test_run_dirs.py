"""Run directories through the real CLI: the lock, resume with a changed config, folders that
are never deleted, restartable runs, checkpoint contents and writes, mid-epoch checkpoints.

Most tests call the CLI's ``main`` in this process (the same parsing and error printing, without
paying a Python start-up per call); the kill test runs it as subprocesses."""
import errno
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.conftest import REPO, TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def config(tmp_path, **changes):
    return str(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, **changes}))


def snapshot(folder):
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def run_env(*args, env_extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run([sys.executable, "-m", "kdvision", *args], env=env, capture_output=True, text=True,
                          timeout=300)


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def kdv(capsys):
    """``kdv("train", ...)``: the kdvision command in this process; returns (returncode, stderr)."""
    from kdvision import cli

    def call(*argv):
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        return Result(code, capsys.readouterr().err)
    return call


def test_a_second_training_on_one_out_stops_naming_the_lock_and_pid(tmp_path, kdv):
    out = tmp_path / "r"
    out.mkdir()
    lock = out / ".kdvision.lock"
    holder = subprocess.Popen(["sleep", "120"])  # a live process of this host holds the lock
    try:
        lock.write_text(f"{holder.pid} {socket.gethostname()}\n")
        one_line_error(kdv("train", config(tmp_path), "--out", out), "in use", str(lock), f"PID {holder.pid}")
        assert sorted(p.name for p in out.iterdir()) == [".kdvision.lock"]
        assert lock.read_text().startswith(str(holder.pid))
        one_line_error(kdv("train", config(tmp_path), "--out", out, "--resume"), "in use", str(lock))
    finally:
        holder.kill()
        holder.wait()


def test_resume_refuses_unsafe_changes_touching_nothing_and_names_safe_ones(tmp_path, kdv):
    cfg, out = config(tmp_path), tmp_path / "r"
    old_umask = os.umask(0o022)
    try:
        assert kdv("train", cfg, "--out", out, "train.epochs=1", "--quiet").returncode == 0
    finally:
        os.umask(old_umask)
    for f in (out / "checkpoints" / "last.pt", out / "student.safetensors"):
        assert f.stat().st_mode & 0o777 == 0o644, f  # the umask, not mkstemp's 0600
    before = snapshot(out)
    line = one_line_error(kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=2",
                                  "train.optimizer.name=adam", "data.batch_size=16"),
                          "train.optimizer.name", "data.batch_size", "nothing was changed")
    assert "train.epochs" not in line  # more epochs is a safe change
    assert snapshot(out) == before
    (out / "checkpoints" / ".best.pt.k1ll").write_bytes(b"half a checkpoint")  # left by a kill -9
    result = kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=2", "train.log_every=3")
    assert result.returncode == 0, result.stderr
    assert "changed train.epochs: 1 -> 2" in result.stderr and "changed train.log_every: 20 -> 3" in result.stderr
    assert "removed" in result.stderr and not (out / "checkpoints" / ".best.pt.k1ll").exists()
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 2
    assert not (out / ".kdvision.lock").exists()  # released at the end
    one_line_error(kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=1"), "train.epochs")
    for text, fragment in (("- a\n- b\n", "must be a mapping"), ("seed: [1,\n", "malformed")):
        (out / "config.yaml").write_text(text)
        one_line_error(kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=3"),
                       str(out / "config.yaml"), fragment)
        assert (out / "config.yaml").read_text() == text


def test_failed_setup_never_deletes_a_folder_it_did_not_create(tmp_path, kdv):
    cfg = config(tmp_path, data={"name": "imagefolder", "root": str(tmp_path / "missing"), "size": 8})
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(kdv("train", cfg, "--out", str(empty)), "missing")
    assert empty.is_dir() and not any(empty.iterdir())
    one_line_error(kdv("train", cfg, "--out", str(tmp_path / "new")), "missing")
    assert not (tmp_path / "new").exists()  # created by that invocation, so removed


def test_a_run_that_died_before_its_first_checkpoint_restarts(tmp_path, kdv):
    cfg, out = config(tmp_path), tmp_path / "r"
    nan = ["train.epochs=1", "train.optimizer.lr=1e30", "train.schedule.name=constant"]
    line = one_line_error(kdv("train", cfg, "--out", str(out), *nan), "became")
    assert "before its first checkpoint" in line and "last good checkpoint" not in line
    assert (out / "config.yaml").is_file() and not (out / "checkpoints" / "last.pt").exists()
    result = kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=1", "--quiet")
    assert result.returncode == 0 and "starting it from scratch" in result.stderr, result.stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
    out2 = tmp_path / "r2"
    one_line_error(kdv("train", cfg, "--out", str(out2), *nan), "became")
    result = kdv("train", cfg, "--out", str(out2), "train.epochs=1", "--quiet")  # the plain rerun
    assert result.returncode == 0 and "starting it from scratch" in result.stderr, result.stderr


def test_a_damaged_validation_image_stops_before_training(tmp_path, kdv):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "imgs" / split / cls / f"{i}.png")
    bad = tmp_path / "imgs" / "val" / "b" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    cfg = config(tmp_path, data={"name": "imagefolder", "root": str(tmp_path / "imgs"), "size": 8, "batch_size": 4})
    one_line_error(kdv("train", cfg, "--out", str(tmp_path / "r")), str(bad), "val split before training")
    assert not (tmp_path / "r").exists()


def test_damaged_checkpoint_contents_are_one_line(tmp_path, kdv):
    cfg, out = config(tmp_path), tmp_path / "r"
    assert kdv("train", cfg, "--out", str(out), "train.epochs=1", "--quiet").returncode == 0
    last = out / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    torch.save({**state, "model": [1, 2]}, tmp_path / "list_model.pt")
    one_line_error(kdv("eval", cfg, "--checkpoint", str(tmp_path / "list_model.pt")), "list_model.pt", "'model'")
    torch.save({k: v for k, v in state.items() if k != "model"}, tmp_path / "no_model.pt")
    one_line_error(kdv("eval", cfg, "--checkpoint", str(tmp_path / "no_model.pt")), "'model' entry is missing")
    torch.save({k: v for k, v in state.items() if k != "rng"}, last)
    before = snapshot(out)
    one_line_error(kdv("train", cfg, "--out", str(out), "--resume", "train.epochs=2"), str(last), "'rng'")
    assert snapshot(out) == before


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    from kdvision import cli

    cfg, out = config(tmp_path), tmp_path / "r"
    assert cli.main(["train", cfg, "--out", str(out), "train.epochs=1", "--quiet"]) == 0
    last = out / "checkpoints" / "last.pt"
    before = last.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        real_save(obj, f, *a, **k)  # part of it lands, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    capsys.readouterr()
    assert cli.main(["train", cfg, "--out", str(out), "--resume", "train.epochs=2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kdvision: error: no space left on device writing ")
    assert str(out / "checkpoints") in err[-1] and "the previous" in err[-1] and "is intact" in err[-1]
    assert last.read_bytes() == before
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_read_only_folder_is_one_line(tmp_path, monkeypatch):
    from kdvision.engine import checkpoint
    from kdvision.errors import UserError

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(checkpoint.os, "open", read_only)
    with pytest.raises(UserError, match=r"cannot write .*last\.pt: the folder .* is not writable"):
        checkpoint.save_checkpoint({"model": {}}, tmp_path / "last.pt")


def test_kill_inside_an_epoch_then_resume_gives_the_same_weights(tmp_path):
    """Killed (SIGKILL) after step 4 of 10; last.pt is from step 3, inside epoch 1 of 2."""
    cfg = config(tmp_path)
    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli("train", cfg, "--out", str(full), "--quiet").returncode == 0
    killed = run_env("train", cfg, "--out", str(part), "--quiet", "train.checkpoint_every_steps=3",
                     env_extra={"KDVISION_TEST_DIE_AFTER_STEP": "4"})
    assert killed.returncode == -9, killed.stderr
    state = torch.load(part / "checkpoints" / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["global_step"]) == (0, 3, 3)
    assert (part / ".kdvision.lock").is_file()  # a kill leaves its lock behind
    resumed = run_cli("train", cfg, "--out", str(part), "--resume", "train.checkpoint_every_steps=3")
    assert resumed.returncode == 0, resumed.stderr
    assert "stale lock" in resumed.stderr and "resuming" in resumed.stderr and "step 3 of epoch 1" in resumed.stderr
    a, b = load_file(str(full / "student.safetensors")), load_file(str(part / "student.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    la = torch.load(full / "checkpoints" / "last.pt", weights_only=True)
    lb = torch.load(part / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(la["model"][k], lb["model"][k]) for k in la["model"])
    rows_a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    # the epoch's loss means continue from the checkpoint's sums (equal up to float summation order)
    assert [r["train/loss"] for r in rows_b] == pytest.approx([r["train/loss"] for r in rows_a], rel=1e-6)


def test_unloadable_checkpoints_never_advise_unsafe_loading(tmp_path, kdv):
    cfg = config(tmp_path)
    (tmp_path / "random.pt").write_bytes(os.urandom(2000))
    torch.save({"model": Result(0, "")}, tmp_path / "code.pt")  # a pickled object: code to run
    for name in ("random.pt", "code.pt"):
        line = one_line_error(kdv("eval", cfg, "--checkpoint", tmp_path / name), name, "cannot load")
        assert "weights_only=False" not in line and "safe_globals" not in line and "trust" not in line, line


def test_eval_json_writes_null_for_nan(tmp_path, monkeypatch, capsys):
    from kdvision import cli
    from kdvision.engine import evaluate

    monkeypatch.setattr(evaluate, "evaluate_checkpoint", lambda cfg, ckpt, split: {"split": split,
                                                                                  "acc": float("nan"),
                                                                                  "psnr": float("inf")})
    assert cli.main(["eval", config(tmp_path), "--checkpoint", "x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"split": "test", "acc": None, "psnr": None}


def test_demo_out_over_an_existing_file_is_refused(tmp_path, kdv):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    one_line_error(kdv("demo", "--out", target), str(target), "is a file")
    assert target.read_text() == "mine"


def test_a_user_error_under_torchrun_fills_the_error_file(tmp_path, kdv, monkeypatch):
    error_file = tmp_path / "error.json"  # torchrun gives each rank one and shows it in its summary
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    line = one_line_error(kdv("train", tmp_path / "nope.yaml", "--out", tmp_path / "r"), "nope.yaml")
    assert json.loads(error_file.read_text())["message"] == line


@pytest.mark.slow  # ~1 min of torchrun; the single-process kill test covers the same path
def test_kill_inside_an_epoch_under_ddp_then_resume_gives_the_same_weights(tmp_path):
    """Two gloo ranks, 2 steps per epoch: killed after step 3, last.pt is step 1 of epoch 2."""
    cfg = str(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"],
                                                                       "distributed": {"timeout_s": 60}}}))

    def torchrun(*args, env_extra=None):
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env_extra or {})}
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               "-m", "kdvision", *args], env=env, capture_output=True, text=True, timeout=300)

    full, part = tmp_path / "full", tmp_path / "part"
    assert torchrun("train", cfg, "--out", str(full), "--quiet").returncode == 0
    killed = torchrun("train", cfg, "--out", str(part), "--quiet", "train.checkpoint_every_steps=1",
                      env_extra={"KDVISION_TEST_DIE_AFTER_STEP": "3"})
    assert killed.returncode != 0
    state = torch.load(part / "checkpoints" / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"], len(state["rng_per_rank"])) == (1, 1, 2)
    resumed = torchrun("train", cfg, "--out", str(part), "--resume", "train.checkpoint_every_steps=1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step 1 of epoch 2" in resumed.stderr
    a, b = load_file(str(full / "student.safetensors")), load_file(str(part / "student.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
