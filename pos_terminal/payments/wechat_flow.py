"""WeChat Pay terminal policy for live payments: journal first, then the request; poll; settle.

Reference: wechatpay-v3.md §4.5. Every order ends SUCCESS, CLOSED or REVOKED at WeChat and
APPROVED, CLOSED, REVERSED, DECLINED or EXCEPTION in the journal; the reverse and close steps
live in wechat_settle, shared with recovery. Results reach the state machine as events.

Once a row exists, the cashier hears "declined" only when the journal holds a final unpaid state
or a decided reverse; when anything fails after the request left (the journal cannot be written,
a bug) the screen says the payment is in doubt, and the row is resolved while the terminal runs.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    PaymentException,
    PaymentInDoubt,
    PaymentPending,
    QrReady,
)
from pos_terminal.payment_codes import mask_code
from pos_terminal.payments.numbers import new_number
from pos_terminal.payments.wechat import (
    TradeState,
    Transaction,
    WeChatApiError,
    WeChatPayError,
)
from pos_terminal.payments.wechat_settle import PAID, Settler
from pos_terminal.retry import Backoff

log = logging.getLogger(__name__)

# refusals of the request itself (configuration, signature): no order exists to reverse
REQUEST_REFUSED = frozenset(
    {"PARAMERROR", "SIGNERROR", "NOAUTH", "APPIDMCHIDNOTMATCH", "MCHNOTEXISTS", "INVALIDREQUEST"}
)
NATIVE_CREATE_TRIES = 3
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
    """Carries out payment attempts for the runtime; `settler` resolves rows left in doubt."""

    def __init__(self, settler: Settler, settings: PaymentConfig, shop: Shop) -> None:
        self.settler = settler
        self.client = settler.client
        self.journal: JournalWorker = settler.journal
        self.clock: Clock = settler.clock
        self.settings = settings
        self.shop = shop

    # ------------------------------------------------------------------ payment code (codepay)

    async def charge_code(
        self, attempt: int, amount_fen: int, auth_code: str, post: Post, cancel: asyncio.Event
    ) -> None:
        """Charge a scanned payment code; the result is posted as a machine event."""
        row = await self._begin(Method.WECHAT_CODE, amount_fen, mask_code(auth_code), attempt, post)
        if row is not None:
            await self._guarded(
                row, attempt, post, self._charge_code(row, attempt, auth_code, post, cancel)
            )

    async def _charge_code(
        self, row: PaymentRow, attempt: int, auth_code: str, post: Post, cancel: asyncio.Event
    ) -> None:
        settle = self.settler
        submitted = self.clock.monotonic()
        state: TradeState | None = None
        try:
            tx = await self.client.create_codepay(
                out_trade_no=row.out_trade_no,
                amount_fen=row.amount_fen,
                description=self.shop.description,
                auth_code=auth_code,
                store_id=self.shop.store_id,
                device_id=self.shop.terminal_id,
                device_ip=self.shop.device_ip,
            )
            state = tx.trade_state
            if state in PAID:
                return post(_outcome(await settle.approve(row, tx), attempt, cancelled=False))
        except WeChatApiError as exc:
            if exc.normalized_code in REQUEST_REFUSED:
                await settle.finish(row, RowState.DECLINED, f"{exc.code}: {exc.message}")
                return post(PaymentDeclined(attempt, _decline_text(exc)))
            if not exc.outcome_unknown and exc.normalized_code not in ("ORDERPAID", "USERPAYING"):
                # a business refusal may leave the order PAYERROR, and PAYERROR orders have
                # been seen debited: decide the reverse (journaled), tell the cashier, then
                # reverse it whatever a later query says (wechatpay-v3 §4.1)
                row = await settle.start_reverse(row, f"refused: {exc.code}: {exc.message}")
                post(PaymentDeclined(attempt, _decline_text(exc)))
                await settle.complete_reverse(row)
                return
            await settle.note(row, f"create: outcome unknown ({exc.code})")
        except WeChatPayError as exc:
            await settle.note(row, f"create: outcome unknown ({exc})")
        if state is TradeState.USERPAYING:
            post(PaymentPending(attempt))
        deadline = submitted + self.settings.code_deadline_s
        while not cancel.is_set() and self.clock.monotonic() < deadline:
            wait = min(self.settings.code_poll_interval_s, deadline - self.clock.monotonic())
            await _wait(cancel, max(wait, 0.0))
            answer = await settle.ask(row)
            if not isinstance(answer, Transaction):
                continue
            if answer.trade_state in PAID:
                return post(_outcome(await settle.approve(row, answer), attempt, cancelled=False))
            if answer.trade_state in (TradeState.REVOKED, TradeState.PAYERROR, TradeState.CLOSED):
                break
            if answer.trade_state is TradeState.USERPAYING and state is not TradeState.USERPAYING:
                state = TradeState.USERPAYING
                post(PaymentPending(attempt))
        final = await settle.reverse_unless_paid(row)
        post(_outcome(final, attempt, cancelled=cancel.is_set()))

    # ------------------------------------------------------------------ merchant QR (Native)

    async def charge_native(
        self, attempt: int, amount_fen: int, post: Post, cancel: asyncio.Event
    ) -> None:
        """Create a Native order, show its QR, and settle it; results are posted as events."""
        row = await self._begin(Method.WECHAT_NATIVE, amount_fen, None, attempt, post)
        if row is not None:
            await self._guarded(row, attempt, post, self._charge_native(row, attempt, post, cancel))

    async def _charge_native(
        self, row: PaymentRow, attempt: int, post: Post, cancel: asyncio.Event
    ) -> None:
        settle = self.settler
        expire = self.clock.now() + timedelta(seconds=self.settings.qr_expiry_s + 60)
        code_url = await self._create_native(row, expire, cancel)
        if isinstance(code_url, WeChatApiError):
            await settle.finish(row, RowState.DECLINED, f"{code_url.code}: {code_url.message}")
            return post(PaymentDeclined(attempt, _decline_text(code_url)))
        if code_url is not None:
            row = await settle.move(row, RowState.QR_SHOWN, "QR shown")
            post(QrReady(attempt, code_url))
            while not cancel.is_set():
                await _wait(cancel, self.settings.qr_poll_interval_s)
                answer = await settle.ask(row)
                if isinstance(answer, Transaction) and answer.trade_state in PAID:
                    approved = await settle.approve(row, answer)
                    return post(_outcome(approved, attempt, cancelled=False))
        final = await settle.close_unless_paid(row)
        post(_outcome(final, attempt, cancelled=cancel.is_set()))

    async def _create_native(
        self, row: PaymentRow, expire: datetime, cancel: asyncio.Event
    ) -> str | WeChatApiError | None:
        """The code_url; the error when WeChat refused; None when cancelled or unreachable."""
        # the customer is waiting for the code: a few tries, evenly spaced
        pause_s = self.settings.retry_backoff_s
        pauses = Backoff(first_s=pause_s, max_s=pause_s, tries=NATIVE_CREATE_TRIES).pauses()
        while True:
            try:
                return await self.client.create_native(
                    out_trade_no=row.out_trade_no,
                    amount_fen=row.amount_fen,
                    description=self.shop.description,
                    notify_url=self.shop.notify_url,
                    time_expire=expire,
                )
            except WeChatApiError as exc:
                if not exc.outcome_unknown:
                    return exc
                await self.settler.note(row, f"create: outcome unknown ({exc.code})")
            except WeChatPayError as exc:
                await self.settler.note(row, f"create: outcome unknown ({exc})")
            pause = next(pauses, None)
            if pause is None or cancel.is_set():
                return None
            await _wait(cancel, pause)

    # ------------------------------------------------------------------ the journal row

    async def _begin(
        self, method: Method, amount_fen: int, masked: str | None, attempt: int, post: Post
    ) -> PaymentRow | None:
        """Commit the PENDING row; when that fails nothing was sent: a plain decline."""
        now = self.clock.now()
        out_trade_no = new_number("", self.shop.terminal_id, now)
        business_date = self.settler.business_day.date_of(now)
        try:
            row = await self.journal(
                lambda j: j.begin_sale(
                    method=method,
                    amount_fen=amount_fen,
                    out_trade_no=out_trade_no,
                    masked_code=masked,
                    store_id=self.shop.store_id,
                    terminal_id=self.shop.terminal_id,
                    now=now,
                    business_date=business_date,
                )
            )
        except Exception as exc:  # nothing has left the terminal: the sale simply did not start
            log.exception("payment %s: the journal refused the new row", out_trade_no)
            post(PaymentDeclined(attempt, f"系统错误 System error, nothing charged: {exc}"))
            return None
        log.info("payment %s: %s %d fen, journaled PENDING", out_trade_no, method, amount_fen)
        return row

    async def _guarded(
        self, row: PaymentRow, attempt: int, post: Post, policy: Coroutine[Any, Any, None]
    ) -> None:
        """Run a payment policy; if anything fails, say "in doubt" and resolve the row first."""
        try:
            await policy
        except Exception as exc:  # the one site per payment: the request may have left
            log.exception(
                "payment %s: failed after the row was written; resolving", row.out_trade_no
            )
            post(PaymentInDoubt(attempt, f"{type(exc).__name__}: {exc}"[:120]))
            final = await self.settler.resolve_until_final(row)
            post(_outcome(final, attempt, cancelled=False))


def _outcome(row: PaymentRow, attempt: int, *, cancelled: bool) -> Event:
    """The machine event for a final row."""
    if row.state is RowState.EXCEPTION:
        return PaymentException(attempt, row.attention)
    if row.state is RowState.APPROVED:
        return PaymentApproved(attempt, approved_sale(row))
    if cancelled:
        return PaymentCancelled(attempt)
    if row.state is RowState.REVERSED:
        return PaymentDeclined(attempt, "支付未完成，已撤销 Not completed, reversed")
    if row.state is RowState.CLOSED:
        return PaymentDeclined(attempt, "订单未支付，已关闭 Not paid, order closed")
    return PaymentDeclined(attempt, "支付失败 Payment failed")


def approved_sale(row: PaymentRow) -> ApprovedSale:
    return ApprovedSale(
        out_trade_no=row.out_trade_no,
        transaction_id=row.transaction_id or "",
        method=row.method,
        amount_fen=row.amount_fen,
        masked_code=row.masked_code,
    )


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
