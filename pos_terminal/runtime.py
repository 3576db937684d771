"""The asyncio runtime: device events in, machine steps, effects out to display, printer, payments.

One loop owns all state. Devices and worker threads reach it only through `post`, which is safe
to call from any thread. Nothing here blocks the loop: journal writes run on the journal thread,
receipt rendering on a worker thread, payments and printing as tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, assert_never

from pos_terminal import machine as m
from pos_terminal.clock import Clock
from pos_terminal.config import Config, code_rules
from pos_terminal.devices import Devices
from pos_terminal.errors import PosError
from pos_terminal.journal import Journal, JournalWorker
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.payments.wechat_flow import WeChatPayments
from pos_terminal.payments.wechat_refund import RefundInDoubt, WeChatRefunds
from pos_terminal.ports import CodeRead, DeviceEvent, KeyPress, Screen
from pos_terminal.printing import ReceiptDesk
from pos_terminal.recovery import recover
from pos_terminal.supervision import Restart, supervise_task

log = logging.getLogger(__name__)
STOPPED_SCREEN = Screen("暂停服务 Not in service")

# how a refund stands for the cashier when the wait for it ends (any other state: it failed)
REFUND_OUTCOMES = {
    RefundState.SUCCESS: m.RefundOutcome.REFUNDED,
    RefundState.PROCESSING: m.RefundOutcome.ON_ITS_WAY,
    RefundState.PENDING: m.RefundOutcome.QUEUED,
}


@dataclass(frozen=True)
class View:
    """What an observer (the laptop console, a test) sees after each step: `screen` is the
    customer's, `cashier` the cashier's (None: the same)."""

    state: m.State
    screen: Screen
    receipt_lines: tuple[str, ...]
    cashier: Screen | None = None

    @property
    def cashier_screen(self) -> Screen:
        return self.screen if self.cashier is None else self.cashier


def machine_event(event: DeviceEvent) -> m.Event:
    """What a device event means to the machine: the one place devices meet the machine."""
    match event:
        case KeyPress(key):
            return m.KeyPressed(key)
        case CodeRead(code):
            return m.CodeScanned(code)
        case _:
            assert_never(event)


@dataclass
class _Attempt:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Runtime:
    def __init__(
        self,
        config: Config,
        devices: Devices,
        payments: WeChatPayments,
        refunds: WeChatRefunds,
        journal: JournalWorker,
        clock: Clock,
    ) -> None:
        self.config = config
        self.devices = devices
        self.payments = payments
        self.refunds = refunds
        self.journal = journal
        self.clock = clock
        self.state = m.initial_state(
            code_rules(config),
            config.staff.supervisor_pin_sha256,
            large_amount_fen=config.payment.large_amount_yuan * 100,
        )
        shown = m.render(self.state)
        self.screen = shown.screen  # what the customer display shows
        self.cashier_screen = shown.cashier_screen  # what the cashier sees (a supervisor's prompt)
        self.observers: list[Callable[[View], None]] = []
        self.ready = asyncio.Event()
        self._events: asyncio.Queue[m.Event] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._changed = asyncio.Condition()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._attempts: dict[int, _Attempt] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.desk = ReceiptDesk(
            config, devices.printer, journal, self.post, clock.now().tzinfo or UTC
        )

    # ------------------------------------------------------------------ public

    def post(self, event: m.Event) -> None:
        """Queue an event for the machine. Safe from any thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the runtime is not running")
        loop.call_soon_threadsafe(self._events.put_nowait, event)

    def from_device(self, event: DeviceEvent) -> None:
        """An input device's event, for the machine. Safe from any thread."""
        self.post(machine_event(event))

    def notice(self, device: str, message: str) -> None:
        """A device's (or background task's) trouble for the screen, "" once it is fine again.
        Safe from any thread; dropped once the runtime has stopped (a worker outliving close)."""
        if self._loop is not None:
            self.post(m.DeviceNotice(device, message))

    @property
    def receipt_lines(self) -> tuple[str, ...]:
        return self.desk.lines

    def stop(self) -> None:
        """Ask the loop to finish; an in-flight payment stays in the journal for recovery."""
        self._stop.set()

    async def wait_until(self, predicate: Callable[[m.State], bool], timeout: float) -> m.State:
        """Wait until the machine reaches a state satisfying `predicate` (tests, demo)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.state)), timeout)
            return self.state

    async def run(self) -> None:
        """Open devices, resolve the journal, then run the sale loop until `stop()`."""
        self._loop = asyncio.get_running_loop()
        d = self.devices
        await d.display.open(self.notice)
        await d.printer.open(self.notice)
        for device in d.inputs.values():
            await device.open(self.from_device, self.notice)
        self._apply(m.Show(self.screen))
        try:
            self._spawn(self._recover())
            stopper = asyncio.create_task(self._stop.wait())
            while not self._stop.is_set():
                getter = asyncio.create_task(self._events.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await self._step(getter.result())
            stopper.cancel()
        finally:
            await self._shutdown()

    # ------------------------------------------------------------------ the loop

    async def _step(self, event: m.Event) -> None:
        before = self.state.phase
        self.state, effects = m.step(self.state, event)
        if self.state.phase is not before:
            log.info("%s -> %s on %s", before, self.state.phase, m.trigger_of(event))
        for effect in effects:
            self._apply(effect)
        async with self._changed:
            self._changed.notify_all()
        view = View(self.state, self.screen, self.receipt_lines, self.cashier_screen)
        for observer in self.observers:
            observer(view)

    def _apply(self, effect: m.Effect) -> None:
        match effect:
            case m.Show(screen, cashier):
                self.screen, self.cashier_screen = screen, effect.cashier_screen
                self.devices.display.show(screen, cashier)
            case m.StartTimer(name, seconds_key, seconds):
                self._start_timer(name, self._duration(seconds_key) if seconds is None else seconds)
            case m.CancelTimer(name):
                handle = self._timers.pop(name, None)
                if handle is not None:
                    handle.cancel()
            case m.StartCodePayment(attempt, amount, code):
                self._start_attempt(
                    attempt,
                    lambda a: self.payments.charge_code(attempt, amount, code, self.post, a.cancel),
                )
            case m.StartNativePayment(attempt, amount):
                self._start_attempt(
                    attempt,
                    lambda a: self.payments.charge_native(attempt, amount, self.post, a.cancel),
                )
            case m.CancelPayment(attempt):
                current = self._attempts.get(attempt)
                if current is not None:
                    current.cancel.set()
            case m.PrintReceipt(sale):
                self._spawn(self.desk.print_sale(sale.out_trade_no))
            case m.PrintRecoverySlip(rows):
                self._spawn(self.desk.print_recovery(rows, self.clock.now()))
            case m.Reprint(out_trade_no):
                self._spawn(self.desk.reprint(out_trade_no))
            case m.FindRefundable(query):
                self._spawn(self._find_refundable(query))
            case m.StartRefund() as start:
                self._spawn(self._refund(start))

    def _duration(self, key: str) -> float:
        return {
            m.TIMER_AWAITING: self.config.screen.awaiting_timeout_s,
            m.TIMER_QR: self.config.payment.qr_expiry_s,
            m.TIMER_RESULT: self.config.screen.result_hold_s,
        }[key]

    def _start_timer(self, name: str, seconds: float) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if self._timers.get(name) is handle:
                del self._timers[name]
                self._events.put_nowait(m.TimerExpired(name))

        handle = loop.call_later(seconds, fire)
        self._timers[name] = handle

    # ------------------------------------------------------------------ effects as tasks

    def _start_attempt(self, attempt: int, run: Callable[[_Attempt], object]) -> None:
        entry = _Attempt()
        self._attempts = {attempt: entry}  # only the current attempt can be cancelled

        async def guarded() -> None:
            try:
                await run(entry)  # type: ignore[misc]
            except Exception as exc:  # a bug: the policy answers every failure itself
                log.exception("payment attempt %d failed unexpectedly", attempt)
                reason = f"重启后核对 Restart to resolve: {type(exc).__name__}"
                self.post(m.PaymentInDoubt(attempt, reason))

        entry.task = self._spawn(guarded())

    async def _find_refundable(self, query: str) -> None:
        def look(j: Journal) -> tuple[str, int] | str:
            sale = j.find_sale(query)
            if isinstance(sale, str):
                return sale
            return sale.out_trade_no, RefundBook(j).refundable_fen(sale.out_trade_no)

        found = await self.journal(look)
        if isinstance(found, str):
            self.post(m.OrderNotFound(found))
        elif found[1] <= 0:
            self.post(m.OrderNotFound(f"已全额退款 {found[0]} is refunded in full"))
        else:
            self.post(m.OrderFound(*found))

    async def _refund(self, start: m.StartRefund) -> None:
        troubles: list[str] = []
        try:
            row = await self.refunds.refund(
                start.out_trade_no,
                start.amount_fen,
                start.reason,
                start.authorised_by,
                troubles=troubles,
            )
        except RefundInDoubt as doubt:  # it may have reached WeChat: finish it, never redo it
            self.post(m.RefundFinished(m.RefundOutcome.IN_DOUBT, doubt.row.out_refund_no))
            await self.desk.print_refund(await self.refunds.settle(doubt.row))
            return
        except Exception as exc:  # one site per refund: the cashier must hear how it ended
            log.exception("refund of %s failed", start.out_trade_no)
            self.post(m.RefundFinished(m.RefundOutcome.FAILED, reason=str(exc)))
            return
        outcome = REFUND_OUTCOMES.get(row.state, m.RefundOutcome.FAILED)
        shown_reason = outcome in (m.RefundOutcome.QUEUED, m.RefundOutcome.FAILED)
        reason = (troubles[-1] if troubles else str(row.state)) if shown_reason else ""
        self.post(m.RefundFinished(outcome, row.out_refund_no, reason))
        await self.desk.print_refund(row)

    async def _recover(self) -> None:
        def progress(position: int, total: int) -> None:
            self.post(m.RecoveryProgress(position, total))

        try:
            recovered = await recover(self.journal, self.payments.settler, self.refunds, progress)
        except Exception as exc:  # the terminal must not sell with a journal it cannot read
            log.exception("recovery failed")
            self._apply(m.Show(Screen("恢复失败 Recovery failed", lines=(str(exc), "see the log"))))
            return
        self.post(m.RecoveryDone(recovered.rows, recovered.attention))
        # receipts wait for the journal to be resolved: the recovery slip comes first
        self._keep_running(
            "printer watch", self.desk.watch, self.config.devices.printer.check_interval_s
        )
        self._keep_running(
            "refund follow-up", self.refunds.watch, self.config.payment.refund_follow_s
        )
        self.ready.set()
        log.info("ready (%d payment(s) and refund(s) resolved at start)", len(recovered.rows))

    def _keep_running(
        self, name: str, start: Callable[[], Awaitable[None]], period_s: float
    ) -> None:
        """Spawn a task meant to run until shutdown, doing a round every `period_s`; if it raises
        it is logged, shown as a notice and started again, and is fine again after three rounds."""
        restart = Restart(first_s=0.5, max_s=30.0, healthy_s=3 * period_s)
        self._spawn(supervise_task(name, start, notice=self.notice, restart=restart))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        d = self.devices
        d.display.show(STOPPED_SCREEN)  # not the last QR: its order is closed at the next start
        closers = [i.close for i in list(d.inputs.values())[::-1]]
        for closer in (*closers, d.printer.close, d.display.close):
            try:
                await closer()
            except (PosError, OSError):
                log.exception("closing a device failed")
        self._loop = None
