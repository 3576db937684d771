"""WeChat Pay terminal policy: journal first, then the request; poll, reverse or close until final.

Reference: wechatpay-v3.md §4.5. Every order ends SUCCESS, CLOSED or REVOKED at WeChat and
APPROVED, CLOSED, REVERSED or DECLINED in the journal. Results reach the state machine as events.
Over ~400 lines because live payments and boot recovery share the same reverse/close steps;
refunds, when they come, go in a module of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pos_terminal.clock import Clock
from pos_terminal.config import PaymentConfig
from pos_terminal.journal import JournalWorker, Method, PaymentRow, RowState
from pos_terminal.machine import (
    ApprovedSale,
    Event,
    PaymentApproved,
    PaymentCancelled,
    PaymentDeclined,
    PaymentPending,
    QrReady,
)
from pos_terminal.payments.codes import mask_code
from pos_terminal.payments.numbers import new_number
from pos_terminal.payments.wechat import (
    TradeState,
    Transaction,
    WeChatApiError,
    WeChatPayClient,
    WeChatPayError,
)

log = logging.getLogger(__name__)

PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})
# refusals of the request itself (configuration, signature): no order exists to reverse
REQUEST_REFUSED = frozenset(
    {"PARAMERROR", "SIGNERROR", "NOAUTH", "APPIDMCHIDNOTMATCH", "MCHNOTEXISTS", "INVALIDREQUEST"}
)
Post = Callable[[Event], None]


@dataclass(frozen=True)
class Shop:
    """Who is selling: goes into every order."""

    store_id: str
    terminal_id: str
    description: str
    notify_url: str
    device_ip: str = "127.0.0.1"


class WeChatPayments:
    """Carries out payment attempts for the runtime and resolves rows left in doubt."""

    def __init__(
        self,
        client: WeChatPayClient,
        journal: JournalWorker,
        clock: Clock,
        settings: PaymentConfig,
        shop: Shop,
    ) -> None:
        self.client = client
        self.journal = journal
        self.clock = clock
        self.settings = settings
        self.shop = shop

    # ------------------------------------------------------------------ payment code (codepay)

    async def charge_code(
        self, attempt: int, amount_fen: int, auth_code: str, post: Post, cancel: asyncio.Event
    ) -> None:
        """Charge a scanned payment code; the result is posted as a machine event."""
        row = await self._begin(Method.WECHAT_CODE, amount_fen, mask_code(auth_code))
        await self._guarded(
            row, attempt, post, self._charge_code(row, attempt, auth_code, post, cancel)
        )

    async def _charge_code(
        self, row: PaymentRow, attempt: int, auth_code: str, post: Post, cancel: asyncio.Event
    ) -> None:
        amount_fen = row.amount_fen
        submitted = self.clock.monotonic()
        state: TradeState | None = None
        try:
            tx = await self.client.create_codepay(
                out_trade_no=row.out_trade_no,
                amount_fen=amount_fen,
                description=self.shop.description,
                auth_code=auth_code,
                store_id=self.shop.store_id,
                device_id=self.shop.terminal_id,
                device_ip=self.shop.device_ip,
            )
            state = tx.trade_state
            if state in PAID:
                return await self._approve(row, tx, attempt, post)
        except WeChatApiError as exc:
            if exc.normalized_code in REQUEST_REFUSED:
                await self._finish(row, RowState.DECLINED, f"{exc.code}: {exc.message}")
                return post(PaymentDeclined(attempt, _decline_text(exc)))
            if not exc.outcome_unknown and exc.normalized_code != "ORDERPAID":
                # a business refusal may leave the order PAYERROR, and PAYERROR orders have
                # been seen debited: tell the cashier now, then reverse it (wechatpay-v3 §4.1)
                await self._note(row, f"refused: {exc.code}: {exc.message}; reversing")
                post(PaymentDeclined(attempt, _decline_text(exc)))
                await self._reverse(row, submitted)
                return
            await self._note(row, f"create: outcome unknown ({exc.code})")
        except WeChatPayError as exc:
            await self._note(row, f"create: outcome unknown ({exc})")
        if state is TradeState.USERPAYING:
            post(PaymentPending(attempt))
        deadline = submitted + self.settings.code_deadline_s
        while not cancel.is_set() and self.clock.monotonic() < deadline:
            wait = min(self.settings.code_poll_interval_s, deadline - self.clock.monotonic())
            await _wait(cancel, max(wait, 0.0))
            tx_or_none = await self._query(row)
            if tx_or_none is None:
                continue
            if tx_or_none.trade_state in PAID:
                return await self._approve(row, tx_or_none, attempt, post)
            if tx_or_none.trade_state is TradeState.REVOKED:
                await self._finish(row, RowState.REVERSED, "revoked at WeChat")
                return post(PaymentCancelled(attempt))
            if tx_or_none.trade_state in (TradeState.PAYERROR, TradeState.CLOSED):
                break
            if (
                tx_or_none.trade_state is TradeState.USERPAYING
                and state is not TradeState.USERPAYING
            ):
                state = TradeState.USERPAYING
                post(PaymentPending(attempt))
        final = await self._reverse(row, submitted)
        if cancel.is_set():
            post(PaymentCancelled(attempt))
        else:
            reason = "支付未完成，已撤销 Not completed, reversed"
            post(
                PaymentDeclined(
                    attempt, reason if final is RowState.REVERSED else "支付失败 Failed"
                )
            )

    async def _reverse(self, row: PaymentRow, submitted_monotonic: float) -> RowState:
        """Reverse a payment-code order, retrying until WeChat acknowledges it."""
        too_early = submitted_monotonic + self.settings.reverse_min_delay_s - self.clock.monotonic()
        if too_early > 0:
            await self.clock.sleep(too_early)
        delay = self.settings.retry_backoff_s
        while True:
            try:
                await self.client.reverse(out_trade_no=row.out_trade_no)
                return await self._finish(row, RowState.REVERSED, "reversed")
            except WeChatApiError as exc:
                if exc.normalized_code == "ORDERNOTEXIST":
                    return await self._finish(row, RowState.DECLINED, "order never reached WeChat")
                await self._note(row, f"reverse failed ({exc.code}); retrying")
            except WeChatPayError as exc:
                await self._note(row, f"reverse failed ({exc}); retrying")
            await self.clock.sleep(delay)
            delay = _longer(delay)

    # ------------------------------------------------------------------ merchant QR (Native)

    async def charge_native(
        self, attempt: int, amount_fen: int, post: Post, cancel: asyncio.Event
    ) -> None:
        """Create a Native order, show its QR, and settle it; results are posted as events."""
        row = await self._begin(Method.WECHAT_NATIVE, amount_fen, None)
        await self._guarded(row, attempt, post, self._charge_native(row, attempt, post, cancel))

    async def _charge_native(
        self, row: PaymentRow, attempt: int, post: Post, cancel: asyncio.Event
    ) -> None:
        amount_fen = row.amount_fen
        expire = self.clock.now() + timedelta(seconds=self.settings.qr_expiry_s + 60)
        code_url = await self._create_native(row, amount_fen, expire, cancel)
        if isinstance(code_url, WeChatApiError):
            await self._finish(row, RowState.DECLINED, f"{code_url.code}: {code_url.message}")
            return post(PaymentDeclined(attempt, _decline_text(code_url)))
        if code_url is not None:
            await self._move(row, RowState.QR_SHOWN, "QR shown")
            post(QrReady(attempt, code_url))
            while not cancel.is_set():
                await _wait(cancel, self.settings.qr_poll_interval_s)
                tx = await self._query(row)
                if tx is not None and tx.trade_state in PAID:
                    return await self._approve(row, tx, attempt, post)
        tx = await self._close_then_query(row)
        if tx is not None and tx.trade_state in PAID:
            return await self._approve(row, tx, attempt, post)
        post(PaymentCancelled(attempt))

    async def _create_native(
        self, row: PaymentRow, amount_fen: int, expire: datetime, cancel: asyncio.Event
    ) -> str | WeChatApiError | None:
        """The code_url; the error when WeChat refused; None when cancelled or unreachable."""
        for _ in range(3):
            try:
                return await self.client.create_native(
                    out_trade_no=row.out_trade_no,
                    amount_fen=amount_fen,
                    description=self.shop.description,
                    notify_url=self.shop.notify_url,
                    time_expire=expire,
                )
            except WeChatApiError as exc:
                if not exc.outcome_unknown:
                    return exc
                await self._note(row, f"create: outcome unknown ({exc.code})")
            except WeChatPayError as exc:
                await self._note(row, f"create: outcome unknown ({exc})")
            if cancel.is_set():
                return None
            await _wait(cancel, self.settings.retry_backoff_s)
        return None

    async def _close_then_query(self, row: PaymentRow) -> Transaction | None:
        """Close the order, then query once more: a payment may have landed just before.

        Returns the paid transaction, or None once the row is CLOSED. When the close says the
        order is paid, only a query answer settles it: the row is never closed on a guess.
        """
        paid = await self._close(row)
        delay = self.settings.retry_backoff_s
        for attempt in itertools.count(1):
            tx = await self._query(row)
            if tx is not None:
                if tx.trade_state in PAID:
                    return tx
                break
            if not paid and attempt >= 3:
                break  # closed (204) means it was unpaid at the close
            await self.clock.sleep(delay)
            delay = _longer(delay)
        await self._finish(row, RowState.CLOSED, "closed unpaid")
        return None

    async def _close(self, row: PaymentRow) -> bool:
        """Close until WeChat acknowledges; True when it answers that the order is paid."""
        delay = self.settings.retry_backoff_s
        while True:
            try:
                await self.client.close(out_trade_no=row.out_trade_no)
                return False
            except WeChatApiError as exc:
                if exc.normalized_code in ("ORDERPAID", "ORDERNOTEXIST"):
                    return exc.normalized_code == "ORDERPAID"
                await self._note(row, f"close failed ({exc.code}); retrying")
            except WeChatPayError as exc:
                await self._note(row, f"close failed ({exc}); retrying")
            await self.clock.sleep(delay)
            delay = _longer(delay)

    async def _guarded(
        self, row: PaymentRow, attempt: int, post: Post, policy: Coroutine[Any, Any, None]
    ) -> None:
        """Run a payment policy; if it fails unexpectedly, resolve its row before answering."""
        try:
            await policy
        except Exception:  # the one site per payment: a bug must not leave the order in doubt
            log.exception("payment %s: unexpected failure; resolving it", row.out_trade_no)
            final = await self.resolve_until_final(row)
            settled = await self.journal(lambda j: j.get(row.id))
            if final is RowState.APPROVED:
                post(PaymentApproved(attempt, _approved_sale(settled)))
            else:
                post(PaymentDeclined(attempt, f"系统错误 System error; order {final}, not charged"))

    # ------------------------------------------------------------------ recovery

    async def resolve_until_final(self, row: PaymentRow) -> RowState:
        """`resolve`, retried with growing pauses while WeChat cannot be asked."""
        delay = self.settings.retry_backoff_s
        while True:
            try:
                return await self.resolve(row)
            except WeChatPayError as exc:
                log.warning(
                    "cannot resolve %s yet: %s; retry in %.1f s", row.out_trade_no, exc, delay
                )
                await self.clock.sleep(delay)
                delay = _longer(delay)

    async def resolve(self, row: PaymentRow) -> RowState:
        """Bring a row left in doubt (crash, power loss) to a final state.

        Raises:
            WeChatPayError: WeChat could not be asked; the caller retries later.
        """
        try:
            tx: Transaction | None = await self.client.query(out_trade_no=row.out_trade_no)
        except WeChatApiError as exc:
            if exc.normalized_code != "ORDERNOTEXIST":
                raise
            tx = None
        if tx is not None and tx.trade_state in PAID:
            await self._finish(
                row, RowState.APPROVED, "paid (found at recovery)", tx.transaction_id
            )
            return RowState.APPROVED
        if row.method is Method.WECHAT_NATIVE:
            if tx is not None and tx.trade_state is TradeState.CLOSED:
                return await self._finish(row, RowState.CLOSED, "closed (found at recovery)")
            paid = await self._close_then_query(row)
            if paid is None:
                return RowState.CLOSED
            await self._finish(
                row, RowState.APPROVED, "paid (found at recovery)", paid.transaction_id
            )
            return RowState.APPROVED
        if tx is not None and tx.trade_state is TradeState.REVOKED:
            return await self._finish(row, RowState.REVERSED, "revoked (found at recovery)")
        created = datetime.fromisoformat(row.created_at)
        age = (self.clock.now() - created).total_seconds()
        return await self._reverse(row, self.clock.monotonic() - max(age, 0.0))

    # ------------------------------------------------------------------ journal steps

    async def _begin(self, method: Method, amount_fen: int, masked: str | None) -> PaymentRow:
        now = self.clock.now()
        out_trade_no = new_number("", self.shop.terminal_id, now)
        row = await self.journal(
            lambda j: j.begin_sale(
                method=method,
                amount_fen=amount_fen,
                out_trade_no=out_trade_no,
                masked_code=masked,
                store_id=self.shop.store_id,
                terminal_id=self.shop.terminal_id,
                now=now,
            )
        )
        log.info("payment %s: %s %d fen, journaled PENDING", out_trade_no, method, amount_fen)
        return row

    async def _query(self, row: PaymentRow) -> Transaction | None:
        try:
            return await self.client.query(out_trade_no=row.out_trade_no)
        except WeChatPayError as exc:
            log.info("payment %s: query failed: %s", row.out_trade_no, exc)
            return None

    async def _approve(self, row: PaymentRow, tx: Transaction, attempt: int, post: Post) -> None:
        await self._finish(row, RowState.APPROVED, "paid", tx.transaction_id)
        post(PaymentApproved(attempt, _approved_sale(row, tx.transaction_id)))

    async def _move(self, row: PaymentRow, to: RowState, note: str) -> None:
        now = self.clock.now()
        await self.journal(lambda j: j.transition(row.id, to, now=now, note=note))

    async def _finish(
        self, row: PaymentRow, to: RowState, note: str, transaction_id: str | None = None
    ) -> RowState:
        now = self.clock.now()
        await self.journal(
            lambda j: j.transition(row.id, to, now=now, note=note, transaction_id=transaction_id)
        )
        log.info("payment %s: %s (%s)", row.out_trade_no, to, note)
        return to

    async def _note(self, row: PaymentRow, note: str) -> None:
        now = self.clock.now()
        await self.journal(lambda j: j.note(row.id, note, now=now))
        log.info("payment %s: %s", row.out_trade_no, note)


def _approved_sale(row: PaymentRow, transaction_id: str | None = None) -> ApprovedSale:
    return ApprovedSale(
        out_trade_no=row.out_trade_no,
        transaction_id=transaction_id or row.transaction_id or "",
        method=row.method,
        amount_fen=row.amount_fen,
        masked_code=row.masked_code,
    )


def _longer(delay: float) -> float:
    """The next pause between retries: doubling, at most 30 s."""
    return min(delay * 2, 30.0)


async def _wait(cancel: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when the cashier cancels."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(cancel.wait(), timeout=seconds)


_DECLINE_TEXT = {
    "NOTENOUGH": "余额不足 Insufficient balance",
    "ORDERCLOSED": "订单已关闭 Order closed",
    "RULELIMIT": "交易受限 Limited by risk control",
    "TRADEERROR": "交易错误 Payment refused",
    "ACCOUNTERROR": "账户异常 Account problem",
    "NOAUTH": "商户未开通 Merchant not enabled",
    "SIGNERROR": "签名错误 Signature error: check keys and clock",
}


def _decline_text(exc: WeChatApiError) -> str:
    return _DECLINE_TEXT.get(exc.normalized_code, f"{exc.message or exc.code}")
