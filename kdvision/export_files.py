"""Where ``kdvision export`` may write, and writing there without leaving a bad file behind.

The export goes to a temporary file beside ``--out``; only a file that passed its check is
renamed to ``--out`` (atomically). An existing ``--out`` is never replaced without ``--force``,
and a run's own files (config.yaml, metrics, summary, student.safetensors, hidden files and
everything in its sub-folders: checkpoints, pictures, logs, teachers) never are.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from kdvision.errors import UserError

RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "student.safetensors", "train.log")


def check_destination(out: Path, run_dir: Path, force: bool) -> None:
    """Refuse ``out`` before any work is done: a folder, a run's own file, or (without
    ``force``) any existing file."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name the file to write")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"--out {out}: {out.parent} is not a folder")
    run = run_dir.expanduser().resolve()
    target = out.resolve()
    if target.is_relative_to(run):
        inside = target.relative_to(run)
        if len(inside.parts) > 1 or inside.name in RUN_FILES or inside.name.startswith("."):
            raise UserError(f"--out {out} is inside the run's own files ({run / inside.parts[0]}); export "
                            f"never writes there, choose another --out")
    if out.exists() and not force:
        raise UserError(f"--out {out} already exists; pass --force to overwrite it (nothing was written)")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out``; removed whatever happens unless ``publish`` moved it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def publish(tmp: Path, out: Path, force: bool) -> None:
    """Move the checked ``tmp`` to ``out`` atomically, with the umask's permissions. Without
    ``force`` a hard link makes the step fail rather than replace a file that appeared meanwhile."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    if force:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise UserError(f"--out {out} appeared while exporting; pass --force to overwrite it "
                        f"(nothing was written)") from None
    except OSError:  # the file system has no hard links
        if out.exists():
            raise UserError(f"--out {out} already exists; pass --force to overwrite it (nothing was written)") from None
        os.replace(tmp, out)
        return
    os.unlink(tmp)
