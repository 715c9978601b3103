"""An exclusive lock on a run directory: one training (train, resume, or a teacher recipe
trained inside a run) writes into a folder at a time.

The lock is a file ``<run>/.kdvision.lock`` created atomically (``O_CREAT | O_EXCL``) that
holds ``PID HOST``. A lock whose process is gone (same host, PID not alive) is stale: it is
named and taken over. A lock held by a live process, or by another host whose processes
cannot be checked from here, stops the second training with one line.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from kdvision.errors import UserError

LOCK_NAME = ".kdvision.lock"
UNWRITTEN_GRACE_S = 10.0  # an empty lock younger than this is a lock being written right now


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> tuple[int | None, str | None]:
    try:
        fields = path.read_text().split()
        return int(fields[0]), fields[1]
    except (OSError, ValueError, IndexError):
        return None, None


class RunLock:
    """``with RunLock(root, say): ...`` or ``acquire()`` / ``release()``; ``say`` prints a line."""

    def __init__(self, root: str | Path, say=print):
        self.path = Path(root) / LOCK_NAME
        self.say = say
        self.held = False

    def acquire(self) -> "RunLock":
        me = f"{os.getpid()} {socket.gethostname()}\n"
        for _ in range(3):  # a stale lock is removed, then created again; another process may win the race
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as e:
                raise UserError(f"cannot create the run lock {self.path}: {e.strerror}") from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return self
        pid, host = _read(self.path)
        raise UserError(f"run directory {self.path.parent} is in use: lock {self.path} is held by PID {pid} "
                        f"on {host}")

    def _take_over_if_stale(self) -> None:
        pid, host = _read(self.path)
        here = socket.gethostname()
        if pid is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < UNWRITTEN_GRACE_S:
                raise UserError(f"run directory {self.path.parent} is in use: lock {self.path} is being taken "
                                f"by another process right now")
            reason = "an unreadable lock"
        elif host != here:
            raise UserError(f"run directory {self.path.parent} is in use: lock {self.path} is held by PID {pid} "
                            f"on host {host} (delete the lock file if that training is no longer running)")
        elif pid != os.getpid() and _pid_alive(pid):
            raise UserError(f"run directory {self.path.parent} is in use by another training: lock {self.path} "
                            f"is held by PID {pid} on {host}; wait for it or choose another --out")
        elif pid == os.getpid():
            raise UserError(f"run directory {self.path.parent} is already used by this process (lock {self.path}); "
                            f"a teacher recipe cannot train into its own student's folder")
        else:
            reason = f"the stale lock of PID {pid} on {host}, which is no longer running"
        self.path.unlink(missing_ok=True)
        self.say(f"note: took over {reason} ({self.path})")

    def release(self) -> None:
        if self.held:
            pid, _ = _read(self.path)
            if pid == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
