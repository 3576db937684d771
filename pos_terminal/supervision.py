"""Supervised workers: a device's worker thread or a background task that raises is logged, shown
as a device notice and restarted with backoff, until its device closes or the task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pos_terminal.ports import Notice
from pos_terminal.retry import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restart:
    """The first restart waits `first_s`, doubling up to `max_s` while the worker keeps failing.
    A worker that has run `healthy_s` since a restart is fine again: its notice is cleared and
    the next failure waits `first_s` again.
    """

    first_s: float
    max_s: float
    healthy_s: float

    @property
    def backoff(self) -> Backoff:
        return Backoff(first_s=self.first_s, max_s=self.max_s)


def worker_thread(
    device: str,
    body: Callable[[], None],
    *,
    stop: threading.Event,
    notice: Notice | None,
    restart: Restart,
) -> threading.Thread:
    """A daemon thread, not yet started, running `body` under `supervise_thread`."""
    return threading.Thread(
        target=supervise_thread,
        args=(device, body),
        kwargs={"stop": stop, "notice": notice, "restart": restart},
        name=device.replace(" ", "-"),
        daemon=True,
    )


def supervise_thread(
    device: str,
    body: Callable[[], None],
    *,
    stop: threading.Event,
    notice: Notice | None,
    restart: Restart,
) -> None:
    """Run a worker thread's loop `body` in this thread until it returns or `stop` is set,
    restarting it after an Exception. KeyboardInterrupt and SystemExit are not caught.
    """
    failures = _Failures(device, notice, restart)
    healthy: threading.Timer | None = None
    try:
        while True:
            started = time.monotonic()
            try:
                body()
                return
            except Exception as exc:  # one site per worker thread
                if stop.is_set():
                    log.debug("%s raised while closing: %r", device, exc)
                    return
                if healthy is not None:
                    healthy.cancel()
                    healthy.join()  # its "fine again" must not land after this failure's notice
                    healthy = None
                delay = failures.failed(exc, time.monotonic() - started)
            if stop.wait(delay):
                return
            healthy = threading.Timer(restart.healthy_s, failures.recovered)
            healthy.daemon = True
            healthy.start()
    finally:
        if healthy is not None:
            healthy.cancel()
            healthy.join()


async def supervise_task(
    device: str,
    start: Callable[[], Awaitable[None]],
    *,
    notice: Notice | None,
    restart: Restart,
) -> None:
    """Await `start()` until it returns or this task is cancelled, starting it again after an
    Exception. Cancellation, KeyboardInterrupt and SystemExit are not caught.
    """
    failures = _Failures(device, notice, restart)
    loop = asyncio.get_running_loop()
    healthy: asyncio.TimerHandle | None = None
    try:
        while True:
            started = loop.time()
            try:
                await start()
                return
            except Exception as exc:  # one site per background task
                if healthy is not None:
                    healthy.cancel()
                delay = failures.failed(exc, loop.time() - started)
            await asyncio.sleep(delay)
            healthy = loop.call_later(restart.healthy_s, failures.recovered)
    finally:
        if healthy is not None:
            healthy.cancel()


class _Failures:
    """One worker's run of consecutive failures: the restart delay, the log and the notices."""

    def __init__(self, device: str, notice: Notice | None, restart: Restart) -> None:
        self._device = device
        self._notice = notice
        self._restart = restart
        self._delay: float | None = None  # the last restart delay; None while not failing

    def failed(self, exc: Exception, ran_s: float) -> float:
        """Log and report a failure after the worker ran `ran_s`; returns the restart delay."""
        r = self._restart
        first = self._delay is None or ran_s >= r.healthy_s
        self._delay = r.backoff.after(None if first else self._delay)
        reason = _one_line(exc)
        if first:  # the traceback once per run of failures; repeats get one line each
            log.error("%s failed; restarting in %.1f s", self._device, self._delay, exc_info=exc)
        else:
            log.warning(
                "%s failed again (%s); restarting in %.1f s", self._device, reason, self._delay
            )
        self._report(f"故障 failed ({reason}); restarting")
        return self._delay

    def recovered(self) -> None:
        log.info("%s runs again", self._device)
        self._report("")

    def _report(self, message: str) -> None:
        if self._notice is not None:
            self._notice(self._device, message)


def _one_line(exc: Exception, limit: int = 80) -> str:
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
