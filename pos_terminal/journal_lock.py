"""One process owns a journal: an exclusive `flock` on a lock file beside it, held for its lifetime.

A second terminal (or a stand-alone notification receiver) on the same journal would recover the
first one's live orders and close them under it. The kernel drops the lock when the owner dies,
so a crash or kill -9 never leaves a stale lock behind; the pid written into the file only names
the holder in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from pos_terminal.errors import PosError


class JournalLocked(PosError):
    """Another process holds the journal."""


STOP_IT_FIRST = "stop it first (systemctl stop pos-terminal) or use another journal.path"


class JournalLock:
    """`with JournalLock(journal_path):` holds the journal for this process, or refuses at once."""

    def __init__(self, journal_path: Path, *, advice: str = STOP_IT_FIRST) -> None:
        """`advice` ends the refusal: what the user should do instead."""
        self.journal_path = journal_path
        self.advice = advice
        self.path = journal_path.with_name(journal_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises:
            JournalLocked: another process holds it; the message names its pid.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise JournalLocked(
                f"{self.journal_path} is in use by another pos-terminal (pid {holder}); "
                + self.advice
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> JournalLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
