"""Settling WeChat orders whose outcome is not known yet: query first, then reverse or close.

Shared by live payments (deadline, cancel, failure) and boot recovery. The rules
(wechatpay-v3 §3.5, §3.6, §4.5):

- Query immediately before every reverse and close: a paid order is an approved sale.
- A reverse takes effect whenever it arrives, so the decision is journaled first (REVERSING)
  and a reversing row only ever ends REVERSED, however paid a later query says it is, unless
  WeChat refuses the reverse for good (REVERSE_EXPIRE past 7 days ...): then the row ends as the
  order is, paid and flagged "refund required" for a supervisor, or unpaid, saying why.
- A close is done only when a query says CLOSED; "no such order" counts as never created only
  once the row is older than `reverse_min_delay_s` (its create may still be on the wire).
- A paid answer that contradicts the row (amount, merchant, app) is never approved: the row ends
  EXCEPTION, flagged.
- No answer, 5xx, 429 and "still paying" are retried with growing pauses; nothing waits on an
  answer that will never change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pos_terminal.business_day import BusinessDay
from pos_terminal.clock import Clock
from pos_terminal.config import PaymentConfig
from pos_terminal.journal import FINAL_STATES, JournalWorker, Method, PaymentRow, RowState
from pos_terminal.payments.wechat import (
    TradeState,
    Transaction,
    WeChatApiError,
    WeChatPayClient,
    WeChatPayError,
)
from pos_terminal.retry import Backoff

log = logging.getLogger(__name__)

PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})
# a reverse or close refused with these may succeed later: ask again
_TRY_AGAIN = frozenset({"USERPAYING", "FREQUENCYLIMITED", "SYSTEMERROR", "BANKERROR"})
NOT_FOUND = "ORDERNOTEXIST"
RETRY_CAP_S = 30.0  # the longest pause between two tries of a settling step


@dataclass(frozen=True)
class NoSuchOrder:
    """WeChat answered that the order does not exist (404 ORDER_NOT_EXIST)."""


Answer = Transaction | NoSuchOrder | None  # None: WeChat could not be asked


class Settler:
    """The journal-first steps that bring one order to a final row."""

    def __init__(
        self,
        client: WeChatPayClient,
        journal: JournalWorker,
        clock: Clock,
        settings: PaymentConfig,
        business_day: BusinessDay,
    ) -> None:
        self.client = client
        self.journal = journal
        self.clock = clock
        self.settings = settings
        self.business_day = business_day

    # ------------------------------------------------------------------ the whole resolution

    async def resolve_until_final(self, row: PaymentRow) -> PaymentRow:
        """`resolve`, retried with growing pauses whatever fails (WeChat, the journal)."""
        pauses = self.pauses()
        while True:
            try:
                return await self.resolve(row)
            except Exception as exc:  # the one site per row in doubt: it must end final
                pause = next(pauses)
                log.warning(
                    "cannot resolve %s yet: %s; retry in %.1f s",
                    row.out_trade_no,
                    exc,
                    pause,
                    exc_info=not isinstance(exc, WeChatPayError),
                )
                await self.clock.sleep(pause)

    async def resolve(self, row: PaymentRow) -> PaymentRow:
        """Bring a row left in doubt (failure, crash, power loss) to a final state.

        Raises:
            JournalError, sqlite3.Error: the journal could not be written; call again.
        """
        row = await self.journal(lambda j: j.get(row.id))
        if row.state in FINAL_STATES:
            return row
        if row.state is RowState.REVERSING:
            return await self.complete_reverse(row)
        if row.method is Method.WECHAT_NATIVE:
            return await self.close_unless_paid(row)
        return await self.reverse_unless_paid(row)

    # ------------------------------------------------------------------ payment code: reverse

    async def reverse_unless_paid(self, row: PaymentRow) -> PaymentRow:
        """A payment-code order whose outcome is unknown: paid is approved, else reversed.

        Never reversed sooner than `reverse_min_delay_s` after it was created, and always
        right after a query that found it unpaid.
        """
        while True:
            answer = await self.ask_until_answered(row)
            if isinstance(answer, Transaction):
                if answer.trade_state in PAID:
                    return await self.approve(row, answer)
                if answer.trade_state is TradeState.REVOKED:
                    return await self.finish(row, RowState.REVERSED, "revoked at WeChat")
            wait = self.settings.reverse_min_delay_s - self.age_s(row)
            if wait <= 0:
                break
            await self.clock.sleep(wait)
        state = answer.trade_state if isinstance(answer, Transaction) else "not found"
        row = await self.start_reverse(row, f"unpaid ({state}): reversing")
        return await self.complete_reverse(row)

    async def start_reverse(self, row: PaymentRow, note: str) -> PaymentRow:
        """Journal the decision to reverse; from here the row can only end reversed."""
        return await self.move(row, RowState.REVERSING, note)

    async def complete_reverse(self, row: PaymentRow) -> PaymentRow:
        """Send the reverse (idempotent) until WeChat acknowledges or refuses it for good."""
        pauses = self.pauses()
        wait = self.settings.reverse_min_delay_s - self.age_s(row)
        if wait > 0:
            await self.clock.sleep(wait)
        while True:
            try:
                await self.client.reverse(out_trade_no=row.out_trade_no)
                return await self.finish(row, RowState.REVERSED, "reversed")
            except WeChatApiError as exc:
                code = exc.normalized_code
                if code == NOT_FOUND:
                    if self.age_s(row) >= self.settings.reverse_min_delay_s:
                        return await self.finish(
                            row, RowState.DECLINED, "order never reached WeChat"
                        )
                elif not exc.outcome_unknown and code not in _TRY_AGAIN:
                    return await self._reverse_refused(row, exc)
                await self.note(row, f"reverse: {exc.code}; trying again")
            except WeChatPayError as exc:
                await self.note(row, f"reverse: {exc}; trying again")
            await self.clock.sleep(next(pauses))

    async def _reverse_refused(self, row: PaymentRow, refusal: WeChatApiError) -> PaymentRow:
        """WeChat will never take this reverse: end the row as the order is."""
        why = f"reverse refused for good ({refusal.code}: {refusal.message})"
        answer = await self.ask_until_answered(row)
        if isinstance(answer, NoSuchOrder):
            return await self.finish(row, RowState.DECLINED, f"{why}; no such order")
        if answer.trade_state in PAID:
            log.error("payment %s: %s but paid: refund it", row.out_trade_no, why)
            return await self.approve(row, answer, attention=f"refund required: {why}")
        if answer.trade_state is TradeState.REVOKED:
            return await self.finish(row, RowState.REVERSED, "revoked at WeChat")
        return await self.finish(row, RowState.DECLINED, f"{why}; {answer.trade_state}, unpaid")

    # ------------------------------------------------------------------ Native: close

    async def close_unless_paid(self, row: PaymentRow) -> PaymentRow:
        """A Native order no longer shown: paid is approved; else closed until a query says so."""
        pauses = self.pauses()
        just_closed = False
        while True:
            answer = await self.ask(row)
            if isinstance(answer, Transaction):
                if answer.trade_state in PAID:
                    return await self.approve(row, answer)
                if answer.trade_state is TradeState.CLOSED:
                    return await self.finish(row, RowState.CLOSED, "closed unpaid")
            elif isinstance(answer, NoSuchOrder):
                wait = self.settings.reverse_min_delay_s - self.age_s(row)
                if wait <= 0:
                    return await self.finish(row, RowState.CLOSED, "order never reached WeChat")
                await self.clock.sleep(wait)
                continue
            if answer is not None:
                closed = await self._close(row)
                if closed and not just_closed:
                    just_closed = True  # ask at once whether the close took
                    continue
                if closed is None and self.age_s(row) > self.expired_after_s():
                    # the order expired by itself (time_expire) and WeChat refuses to close it
                    return await self.finish(row, RowState.CLOSED, "expired unpaid")
            just_closed = False
            await self.clock.sleep(next(pauses))

    async def _close(self, row: PaymentRow) -> bool | None:
        """One close: True when acknowledged, False to ask again, None when refused for good."""
        try:
            await self.client.close(out_trade_no=row.out_trade_no)
            return True
        except WeChatApiError as exc:
            await self.note(row, f"close: {exc.code}")
            if exc.normalized_code in ("ORDERPAID", NOT_FOUND):
                return False  # the next query settles it
            if exc.outcome_unknown or exc.normalized_code in _TRY_AGAIN:
                return False
            return None
        except WeChatPayError as exc:
            await self.note(row, f"close: {exc}")
            return False

    def expired_after_s(self) -> float:
        """Age past which a Native order cannot be paid any more (its time_expire, and a margin)."""
        return self.settings.qr_expiry_s + 120.0

    # ------------------------------------------------------------------ asking

    async def ask(self, row: PaymentRow) -> Answer:
        """One query: the transaction, NoSuchOrder, or None when WeChat could not be asked."""
        try:
            return await self.client.query(out_trade_no=row.out_trade_no)
        except WeChatApiError as exc:
            if exc.normalized_code == NOT_FOUND:
                return NoSuchOrder()
            log.info("payment %s: query: %s", row.out_trade_no, exc)
        except WeChatPayError as exc:
            log.info("payment %s: query failed: %s", row.out_trade_no, exc)
        return None

    async def ask_until_answered(self, row: PaymentRow) -> Transaction | NoSuchOrder:
        pauses = self.pauses()
        while True:
            answer = await self.ask(row)
            if answer is not None:
                return answer
            await self.clock.sleep(next(pauses))

    # ------------------------------------------------------------------ journal steps

    async def approve(self, row: PaymentRow, tx: Transaction, *, attention: str = "") -> PaymentRow:
        """A paid answer: APPROVED, or EXCEPTION when it contradicts the row."""
        problem = tx.contradiction(
            out_trade_no=row.out_trade_no,
            amount_fen=row.amount_fen,
            mchid=self.client.mchid,
            appid=self.client.appid,
        )
        if problem is not None:
            log.error(
                "payment %s: paid answer contradicts the journal: %s", row.out_trade_no, problem
            )
            return await self.finish(
                row, RowState.EXCEPTION, "paid answer contradicts the journal", attention=problem
            )
        now = self.clock.now()
        return await self.finish(
            row,
            RowState.APPROVED,
            "paid",
            tx=tx,
            attention=attention,
            business_date=self.business_day.paid_on(tx.success_time, now),
        )

    async def move(self, row: PaymentRow, to: RowState, note: str) -> PaymentRow:
        now = self.clock.now()
        moved = await self.journal(lambda j: j.transition(row.id, to, now=now, note=note))
        log.info("payment %s: %s (%s)", row.out_trade_no, to, note)
        return moved

    async def finish(
        self,
        row: PaymentRow,
        to: RowState,
        note: str,
        *,
        tx: Transaction | None = None,
        attention: str = "",
        business_date: str | None = None,
    ) -> PaymentRow:
        now = self.clock.now()
        final = await self.journal(
            lambda j: j.transition(
                row.id,
                to,
                now=now,
                note=note,
                transaction_id=tx.transaction_id if tx else None,
                attention=attention,
                success_time=tx.success_time if tx else None,
                business_date=business_date,
            )
        )
        log.info("payment %s: %s (%s)", row.out_trade_no, to, note)
        return final

    async def note(self, row: PaymentRow, note: str) -> None:
        now = self.clock.now()
        await self.journal(lambda j: j.note(row.id, note, now=now))
        log.info("payment %s: %s", row.out_trade_no, note)

    # ------------------------------------------------------------------ time

    def age_s(self, row: PaymentRow) -> float:
        """Seconds since the row was created (wall clock: it spans restarts)."""
        return (self.clock.now() - datetime.fromisoformat(row.created_at)).total_seconds()

    def pauses(self) -> Iterator[float]:
        """The pauses between tries of one settling step, for as long as it takes."""
        return Backoff(first_s=self.settings.retry_backoff_s, max_s=RETRY_CAP_S).pauses()
