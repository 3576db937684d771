"""Supervised worker threads and background tasks: logged, reported, restarted with backoff."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pos_terminal.supervision import Restart, supervise_task, supervise_thread, worker_thread
from tests.helpers import wait_for

FAST = Restart(first_s=0.05, max_s=0.2, healthy_s=0.3)


class Notices:
    """The notice callback: what each device reported, in order, from any thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, device: str, message: str) -> None:
        with self._lock:
            self.seen.append((device, message))

    def messages(self) -> list[str]:
        with self._lock:
            return [message for _, message in self.seen]


class Loop:
    """A worker loop that raises on its first `failures` runs, then works until stopped."""

    def __init__(self, stop: threading.Event, failures: int) -> None:
        self.stop = stop
        self.failures = failures
        self.starts: list[float] = []
        self.items = 0

    def __call__(self) -> None:
        self.starts.append(time.monotonic())
        if len(self.starts) <= self.failures:
            raise KeyError("MicroQRCode")
        while not self.stop.wait(0.01):
            self.items += 1


def test_a_thread_that_raises_is_reported_restarted_and_then_fine_again() -> None:
    stop, notices = threading.Event(), Notices()
    body = Loop(stop, failures=1)
    thread = worker_thread("camera decode", body, stop=stop, notice=notices, restart=FAST)
    thread.start()
    wait_for(lambda: len(notices.seen) == 2)
    items = body.items
    wait_for(lambda: body.items > items)  # still running after "fine again"
    stop.set()
    thread.join(2.0)
    assert not thread.is_alive()
    assert len(body.starts) == 2
    [(device, trouble), fine] = notices.seen
    assert device == "camera decode" and "KeyError" in trouble
    assert fine == ("camera decode", "")


def test_restarts_back_off_doubling_up_to_the_cap() -> None:
    stop, notices = threading.Event(), Notices()
    body = Loop(stop, failures=5)
    thread = worker_thread("scanner", body, stop=stop, notice=notices, restart=FAST)
    thread.start()
    wait_for(lambda: len(body.starts) == 6)
    stop.set()
    thread.join(2.0)
    gaps = [b - a for a, b in zip(body.starts, body.starts[1:], strict=False)]
    for gap, delay in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2], strict=True):
        assert delay <= gap < delay + 0.15
    assert notices.messages()[:5] == [notices.messages()[0]] * 5  # one notice per failure


def test_a_thread_that_ran_healthy_before_failing_starts_the_backoff_over() -> None:
    stop = threading.Event()
    starts: list[float] = []

    def body() -> None:
        starts.append(time.monotonic())
        if len(starts) == 3:
            time.sleep(FAST.healthy_s + 0.05)  # the third run works a while before failing
        if len(starts) <= 3:
            raise OSError("gone")
        stop.wait()

    thread = worker_thread("printer", body, stop=stop, notice=None, restart=FAST)
    thread.start()
    wait_for(lambda: len(starts) == 4)
    stop.set()
    thread.join(2.0)
    delay_after_the_healthy_run = starts[3] - starts[2] - (FAST.healthy_s + 0.05)
    assert delay_after_the_healthy_run < 0.15  # first_s again, not 0.2 (doubled twice)


def test_closing_during_the_backoff_ends_the_thread_at_once() -> None:
    stop = threading.Event()
    slow = Restart(first_s=30.0, max_s=30.0, healthy_s=1.0)
    thread = worker_thread("camera", Loop(stop, failures=1), stop=stop, notice=None, restart=slow)
    thread.start()
    time.sleep(0.05)
    stop.set()
    thread.join(1.0)
    assert not thread.is_alive()


def test_an_exception_while_closing_is_no_notice_and_no_restart() -> None:
    stop, notices = threading.Event(), Notices()
    starts: list[int] = []

    def body() -> None:
        starts.append(1)
        stop.set()
        raise OSError("the port was closed under the read")

    supervise_thread("scanner", body, stop=stop, notice=notices, restart=FAST)
    assert starts == [1] and notices.seen == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_are_not_swallowed(exc: type[BaseException]) -> None:
    def body() -> None:
        raise exc

    with pytest.raises(exc):
        supervise_thread("keypad", body, stop=threading.Event(), notice=None, restart=FAST)


def test_a_background_task_that_raises_is_reported_restarted_and_then_fine_again() -> None:
    notices = Notices()
    starts: list[float] = []
    beats: list[int] = []

    async def watch() -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise RuntimeError("database is locked")
        while True:
            await asyncio.sleep(0.01)
            beats.append(1)

    async def scenario() -> None:
        task = asyncio.create_task(
            supervise_task("printer watch", watch, notice=notices, restart=FAST)
        )
        while len(notices.seen) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert len(starts) == 2 and beats
    assert starts[1] - starts[0] >= FAST.first_s
    [(device, trouble), fine] = notices.seen
    assert device == "printer watch" and "database is locked" in trouble
    assert fine == ("printer watch", "")


def test_a_background_task_that_returns_is_done() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    asyncio.run(supervise_task("reconnect", once, notice=None, restart=FAST))
    assert runs == [1]


def test_a_background_task_keeps_system_exit() -> None:
    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        asyncio.run(supervise_task("watch", leave, notice=None, restart=FAST))
