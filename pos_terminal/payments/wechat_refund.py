"""WeChat Pay refund policy: the refund number is journaled first and every retry reuses it.

Reference: wechatpay-v3.md §3.7, §4.5. A timeout, 5xx or 429 never leads to a new number: the
refund is queried, and if WeChat does not have it the *same* request is sent again, so a refund
can never happen twice. PROCESSING refunds are followed until SUCCESS, CLOSED or ABNORMAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

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
    """When the background watch asks about each PROCESSING refund again: the first time it
    sees one, then after `first_s`, doubling up to an hour (a refund to a bank card can take
    days). Refunds that are no longer PROCESSING are forgotten."""

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

    async def refund(
        self, out_trade_no: str, amount_fen: int, reason: str = "", authorised_by: str = ""
    ) -> RefundRow:
        """Refund part or all of an approved sale; returns the row once final or after
        `refund_wait_s` (still PROCESSING then: WeChat has it, `watch` goes on asking). The row
        records `reason` and who authorised it.

        Raises:
            JournalError: the sale is not approved or the amount exceeds what is refundable.
        """
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
        try:
            row = await self.submit(row)
            return await self.follow(row, self.settings.refund_wait_s)
        except Exception as exc:  # the request may have left: never "failed", never again
            log.exception("refund %s: failed after it was journaled", number)
            raise RefundInDoubt(row) from exc

    async def settle(self, row: RefundRow) -> RefundRow:
        """A refund left in doubt while running: submit it until WeChat has it, whatever fails."""
        pauses = self.pauses()
        while True:
            try:
                current = await self.journal(lambda j: RefundBook(j).get(row.id))
                return await self.submit(current)
            except Exception as exc:  # the journal or WeChat failing: ask again later
                log.warning("refund %s still in doubt: %s", row.out_refund_no, exc)
                await self.clock.sleep(next(pauses))

    async def submit(self, row: RefundRow) -> RefundRow:
        """Get a PENDING refund to WeChat: send, or on doubt query, then resend the same one."""
        pauses = self.pauses()
        while row.state is RefundState.PENDING:
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
                if not exc.outcome_unknown:
                    return await self._move(row, RefundState.REFUSED, f"{exc.code}: {exc.message}")
                await self._note(row, f"create: outcome unknown ({exc.code})")
            except WeChatPayError as exc:
                await self._note(row, f"create: outcome unknown ({exc})")
            found = await self._query(row)
            if found is not None:
                return await self._record(row, found)
            await self.clock.sleep(next(pauses))
        return row

    def pauses(self) -> Iterator[float]:
        """The pauses between tries of getting one refund to WeChat, for as long as it takes."""
        return Backoff(first_s=self.settings.retry_backoff_s, max_s=RETRY_CAP_S).pauses()

    async def follow(self, row: RefundRow, wait_s: float) -> RefundRow:
        """Query a PROCESSING refund until it is final or `wait_s` has passed."""
        deadline = self.clock.monotonic() + wait_s
        while row.state not in REFUND_FINAL and self.clock.monotonic() < deadline:
            await self.clock.sleep(self.settings.refund_poll_interval_s)
            found = await self._query(row)
            if found is not None:
                row = await self._record(row, found)
        return row

    async def watch(self) -> None:
        """Follow PROCESSING refunds in the background until cancelled (see FollowSchedule).

        A failure is logged and the watch goes on: it must outlive any answer.
        """
        every = self.settings.refund_follow_s
        schedule = FollowSchedule(every)
        while True:
            await self.clock.sleep(every)
            try:
                rows = await self.journal(lambda j: RefundBook(j).unresolved())
                processing = {r.id: r for r in rows if r.state is RefundState.PROCESSING}
                now = self.clock.monotonic()
                for row_id in schedule.due(processing, now):
                    found = await self._query(processing[row_id])
                    if found is not None:
                        await self._record(processing[row_id], found)
                    schedule.asked(row_id, now)
            except Exception:  # one site: the watch must go on whatever one answer did
                log.exception("following PROCESSING refunds failed; trying again later")

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
