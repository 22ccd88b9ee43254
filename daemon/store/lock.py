"""The single-instance lock: one process schedules from a state directory at a time.

The lock is an ``flock`` on a file in the state directory; the kernel drops it when
the process dies, so a crash never leaves it held. The CLI asks it whether a
daemon is alive before it reads the state database on its own.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from interlock.errors import StateError

LOCK_FILE = "interlock.lock"


class StateLock:
    """An exclusive lock on a state directory: one process schedules from it at a time.

    The kernel drops the lock when the process dies, so a crash never leaves it held.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held_elsewhere(self) -> bool:
        """Whether another live process holds the lock (creates nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken here
        return False

    def acquire(self) -> None:
        """Take the lock or raise StateError naming the process that holds it."""
        if not self.try_acquire():
            try:
                holder = self.path.read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise StateError(
                f"state directory {str(self.path.parent)!r} is in use by another interlock "
                f"process (pid {holder}); stop it, use its admin commands, or point "
                "runtime_settings.state_dir elsewhere"
            )

    def release(self) -> None:
        """Drop the lock. Idempotent."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
