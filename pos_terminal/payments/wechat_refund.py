"""WeChat Pay refund policy: the refund number is journaled first and every retry reuses it.

Reference: wechatpay-v3.md §3.7, §4.5. A timeout, 5xx or 429 never leads to a new number: the
refund is queried, and if WeChat does not have it the *same* request is sent again, so a refund
can never happen twice. The cashier waits at most `refund_wait_s`; a refund not final by then
(PENDING or PROCESSING) is finished by `watch`, until SUCCESS, CLOSED or ABNORMAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable, Iterator

from pos_terminal.clock import Clock
from pos_terminal.config import PaymentConfig
from pos_terminal.journal import JournalWorker
from pos_terminal.journal_refunds import (
    ABNORMAL_ADVICE,
    REFUND_FINAL,
    RefundBook,
    RefundRow,
    RefundState,
)
from pos_terminal.payments.numbers import new_number
from pos_terminal.payments.wechat import (
    RefundStatus,
    WeChatApiError,
    WeChatPayClient,
    WeChatPayError,
)
from pos_terminal.payments.wechat_refund_types import Refund
from pos_terminal.payments.wechat_settle import RETRY_CAP_S
from pos_terminal.retry import Backoff

log = logging.getLogger(__name__)

FOLLOW_MAX_SPACING_S = 3600.0  # a refund to a bank card can take days; ask hourly at most

STATE_OF = {
    RefundStatus.PROCESSING: RefundState.PROCESSING,
    RefundStatus.SUCCESS: RefundState.SUCCESS,
    RefundStatus.CLOSED: RefundState.CLOSED,
    RefundStatus.ABNORMAL: RefundState.ABNORMAL,
}


class RefundInDoubt(WeChatPayError):
    """A journaled refund whose outcome could not be learnt or recorded; `settle` finishes it."""

    def __init__(self, row: RefundRow) -> None:
        super().__init__(f"refund {row.out_refund_no} is in doubt")
        self.row = row


class FollowSchedule:
    """When the background watch takes each unfinished refund up again: the first time it sees
    one, then after `first_s`, doubling up to an hour (a refund to a bank card can take days).
    Refunds that are finished are forgotten."""

    def __init__(self, first_s: float) -> None:
        self._backoff = Backoff(first_s=first_s, max_s=FOLLOW_MAX_SPACING_S)
        self._next: dict[int, tuple[float, float]] = {}  # refund row id -> (ask at, spacing)

    def due(self, row_ids: Iterable[int], now: float) -> list[int]:
        first = self._backoff.after(None)
        self._next = {i: self._next.get(i, (now, first)) for i in row_ids}
        return [i for i, (at, _) in self._next.items() if now >= at]

    def asked(self, row_id: int, now: float) -> None:
        _, spacing = self._next[row_id]
        self._next[row_id] = (now + spacing, self._backoff.after(spacing))


class WeChatRefunds:
    def __init__(
        self,
        client: WeChatPayClient,
        journal: JournalWorker,
        clock: Clock,
        settings: PaymentConfig,
        terminal_id: str,
        notify_url: str | None = None,
    ) -> None:
        """`notify_url` asks WeChat to post the refund's end there (REFUND.*)."""
        self.notify_url = notify_url
        self.client = client
        self.journal = journal
        self.clock = clock
        self.settings = settings
        self.terminal_id = terminal_id
        self._owned: set[int] = set()  # refund rows a cashier's refund or `settle` is sending

    async def refund(
        self,
        out_trade_no: str,
        amount_fen: int,
        reason: str = "",
        authorised_by: str = "",
        troubles: list[str] | None = None,
    ) -> RefundRow:
        """Refund part or all of an approved sale. The cashier waits for WeChat's first answer
        (or the client's timeout) and then at most until `refund_wait_s` has passed since the
        start: the row is returned final, PROCESSING (WeChat has it) or PENDING (queued: WeChat
        has not taken it yet, a 429 say); `watch` finishes those. The row records `reason` and
        who authorised it; `troubles` hears what went wrong getting it to WeChat, for the cashier.

        Raises:
            JournalError: the sale is not approved or the amount exceeds what is refundable.
            RefundInDoubt: it was journaled, then something failed (the journal, a bug).
        """
        deadline = self.clock.monotonic() + self.settings.refund_wait_s
        now = self.clock.now()
        number = new_number("R", self.terminal_id, now)
        row = await self.journal(
            lambda j: RefundBook(j).begin(
                out_trade_no=out_trade_no,
                out_refund_no=number,
                amount_fen=amount_fen,
                reason=reason,
                now=now,
                authorised_by=authorised_by,
            )
        )
        log.info("refund %s of %s: %d fen, journaled PENDING", number, out_trade_no, amount_fen)
        self._owned.add(row.id)
        try:
            row = await self._send(row, troubles)
            left_s = max(0.0, deadline - self.clock.monotonic())
            done = await self._within(left_s, self._to_end(row, troubles))
            if done is not None:
                return done
            current = await self.journal(lambda j: RefundBook(j).get(row.id))
            log.info("refund %s: the cashier's wait is over at %s", number, current.state)
            return current
        except Exception as exc:  # the request may have left: never "failed", never again
            log.exception("refund %s: failed after it was journaled", number)
            raise RefundInDoubt(row) from exc
        finally:
            self._owned.discard(row.id)

    async def _to_end(self, row: RefundRow, troubles: list[str] | None) -> RefundRow:
        """A refund after its first try: sent again while PENDING, then followed to its end."""
        return await self.follow(await self._resend(row, troubles))

    async def _within(self, seconds: float, work: Awaitable[RefundRow]) -> RefundRow | None:
        """`work`'s result, or None when it was not done within `seconds` of the clock; it is
        then cancelled (the journal holds how far it got, and the same number goes again)."""
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
            return task.result() if task.done() else None
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def settle(self, row: RefundRow) -> RefundRow:
        """A refund left in doubt while running: submit it until WeChat has it, whatever fails."""
        pauses = self.pauses()
        self._owned.add(row.id)
        try:
            while True:
                try:
                    current = await self.journal(lambda j: RefundBook(j).get(row.id))
                    return await self.submit(current)
                except Exception as exc:  # the journal or WeChat failing: ask again later
                    log.warning("refund %s still in doubt: %s", row.out_refund_no, exc)
                    await self.clock.sleep(next(pauses))
        finally:
            self._owned.discard(row.id)

    async def submit(self, row: RefundRow) -> RefundRow:
        """Get a PENDING refund to WeChat: send, or on doubt query, then resend the same one,
        for as long as it takes."""
        return await self._resend(await self._send(row))

    async def _resend(self, row: RefundRow, troubles: list[str] | None = None) -> RefundRow:
        """Send a refund still PENDING after a try again, pausing between tries, until WeChat
        has it."""
        pauses = self.pauses()
        while row.state is RefundState.PENDING:
            await self.clock.sleep(next(pauses))
            row = await self._send(row, troubles)
        return row

    async def _send(self, row: RefundRow, troubles: list[str] | None = None) -> RefundRow:
        """One try at getting a PENDING refund to WeChat: send it; when the outcome is unknown,
        ask; a refund WeChat does not have yet stays PENDING. What went wrong goes to
        `troubles`."""
        if row.state is not RefundState.PENDING:
            return row
        try:
            answer = await self.client.create_refund(
                out_refund_no=row.out_refund_no,
                out_trade_no=row.out_trade_no,
                refund_fen=row.amount_fen,
                total_fen=row.paid_fen,
                reason=row.reason or None,
                notify_url=self.notify_url,
            )
            return await self._record(row, answer)
        except WeChatApiError as exc:
            refusal = f"{exc.code}: {exc.message}"
            if troubles is not None:  # one short line on the cashier's screen
                troubles.append(exc.code if exc.outcome_unknown else refusal)
            if not exc.outcome_unknown:
                return await self._move(row, RefundState.REFUSED, refusal)
            await self._note(row, f"create: outcome unknown ({exc.code})")
        except WeChatPayError as exc:
            if troubles is not None:
                troubles.append(type(exc).__name__)
            await self._note(row, f"create: outcome unknown ({exc})")
        found = await self._query(row)
        return row if found is None else await self._record(row, found)

    def pauses(self) -> Iterator[float]:
        """The pauses between tries of getting one refund to WeChat, for as long as it takes."""
        return Backoff(first_s=self.settings.retry_backoff_s, max_s=RETRY_CAP_S).pauses()

    async def follow(self, row: RefundRow) -> RefundRow:
        """Query a PROCESSING refund until it is final (`refund` bounds the wait)."""
        while row.state not in REFUND_FINAL:
            await self.clock.sleep(self.settings.refund_poll_interval_s)
            found = await self._query(row)
            if found is not None:
                row = await self._record(row, found)
        return row

    async def watch(self) -> None:
        """Finish refunds in the background until cancelled (see FollowSchedule): PENDING ones
        nobody is sending (queued when the cashier's wait ran out) are sent again, PROCESSING
        ones asked about.

        A failure is logged and the watch goes on: it must outlive any answer.
        """
        every = self.settings.refund_follow_s
        schedule = FollowSchedule(every)
        while True:
            await self.clock.sleep(every)
            try:
                rows = await self.journal(lambda j: RefundBook(j).unresolved())
                open_ = {r.id: r for r in rows if r.id not in self._owned}
                now = self.clock.monotonic()
                for row_id in schedule.due(open_, now):
                    await self._advance(open_[row_id])
                    schedule.asked(row_id, now)
            except Exception:  # one site: the watch must go on whatever one answer did
                log.exception("following PROCESSING refunds failed; trying again later")

    async def _advance(self, row: RefundRow) -> None:
        """One step of the watch for a refund that is not final: send it, or ask about it."""
        if row.state is RefundState.PENDING:
            await self._send(row)
            return
        found = await self._query(row)
        if found is not None:
            await self._record(row, found)

    async def resolve(self, row: RefundRow) -> RefundRow:
        """Boot: a PENDING refund reaches WeChat (or is refused); a PROCESSING one is asked once.

        Returns the row as it then is.
        """
        row = await self.submit(row)
        if row.state not in REFUND_FINAL:
            found = await self._query(row)
            if found is not None:
                row = await self._record(row, found)
        return row

    async def _query(self, row: RefundRow) -> Refund | None:
        try:
            return await self.client.query_refund(out_refund_no=row.out_refund_no)
        except WeChatPayError as exc:
            log.info("refund %s: query failed: %s", row.out_refund_no, exc)
            return None

    async def _record(self, row: RefundRow, answer: Refund) -> RefundRow:
        to = STATE_OF[answer.status]
        if to is row.state:
            return row
        return await self._move(row, to, f"WeChat: {answer.status}", answer.refund_id)

    async def _move(
        self, row: RefundRow, to: RefundState, note: str, refund_id: str | None = None
    ) -> RefundRow:
        now = self.clock.now()
        moved = await self.journal(
            lambda j: RefundBook(j).transition(row.id, to, now=now, note=note, refund_id=refund_id)
        )
        if to is RefundState.ABNORMAL:
            log.warning("refund %s is ABNORMAL: %s", row.out_refund_no, ABNORMAL_ADVICE)
        else:
            log.info("refund %s: %s (%s)", row.out_refund_no, to, note)
        return moved

    async def _note(self, row: RefundRow, note: str) -> None:
        now = self.clock.now()
        await self.journal(lambda j: RefundBook(j).note(row.id, note, now=now))
        log.info("refund %s: %s", row.out_refund_no, note)
