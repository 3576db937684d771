"""Receipts from the journal to the printer: first prints, reprints, the recovery slip, and
catching up after a fault.

A receipt is always built from the journal row, so a sale approved while the printer was out of
paper (or approved during recovery) prints the same receipt later, a refund finished by whoever
(the cashier's wait, the background watch, recovery, the notification receiver) prints its slip,
and a reprint is identical but for its 重印 REPRINT mark; a reprint is the customer's copy unless
`printer.reprint_copies` says otherwise. The loop never waits on the printer: this runs as tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pos_terminal.config import Config
from pos_terminal.errors import DeviceError
from pos_terminal.journal import Journal, JournalError, JournalWorker, PaymentRow, RowState
from pos_terminal.journal_refunds import (
    LAST_SLIP_STATES,
    SLIP_STATES,
    RefundBook,
    RefundRow,
    RefundState,
)
from pos_terminal.machine import Event, PrintDone, PrinterChanged, Resolved
from pos_terminal.machine.screens import RESOLUTION_WORDS
from pos_terminal.ports import PaperStatus, ReceiptPrinter
from pos_terminal.receipt import (
    BOTH_COPIES,
    Copy,
    PrinterProfile,
    Receipt,
    RecoveredLine,
    RecoveryReceipt,
    RefundReceipt,
    RefundResult,
    SaleReceipt,
    layout_text,
    method_named,
    render_escpos,
)

log = logging.getLogger(__name__)

PAPER_OUT = "缺纸 Paper out: load paper, the receipt will print"
REPRINT_COPIES = {  # printer.reprint_copies
    "customer": (Copy.CUSTOMER,),
    "merchant": (Copy.MERCHANT,),
    "both": BOTH_COPIES,
}
# the slip's wording for each state a refund slip prints in
_RESULTS = {
    RefundState.SUCCESS: RefundResult.DONE,
    RefundState.PROCESSING: RefundResult.UNDER_WAY,
    RefundState.CLOSED: RefundResult.CLOSED,
}


@dataclass(frozen=True)
class _Once:
    """How a receipt that prints once knows it printed, and records that it did."""

    printed: Callable[[Journal], bool]
    mark: Callable[[Journal], None]


def _sale_printed(j: Journal, out_trade_no: str) -> bool:
    current = j.by_out_trade_no(out_trade_no)
    return current is not None and current.printed


def _unprinted(j: Journal) -> tuple[list[PaymentRow], list[RefundRow]]:
    return j.unprinted_sales(), RefundBook(j).unprinted()


def _reprintable(j: Journal, number: str | None) -> PaymentRow | RefundRow | None:
    """The approved sale or refund with a slip that `number` names; without one, the later of
    the latest of each."""
    if number is not None:
        sale = j.by_out_trade_no(number)
        if sale is not None:
            return sale if sale.state is RowState.APPROVED else None
        refund = RefundBook(j).by_out_refund_no(number)
        return refund if refund is not None and refund.state in SLIP_STATES else None
    latest_sale, latest_refund = j.latest_sale(), RefundBook(j).latest_slip()
    if latest_sale is None or latest_refund is None:
        return latest_sale or latest_refund
    sold = datetime.fromisoformat(latest_sale.success_time or latest_sale.updated_at)
    refunded = datetime.fromisoformat(latest_refund.updated_at)
    return latest_refund if refunded > sold else latest_sale


class ReceiptDesk:
    def __init__(
        self,
        config: Config,
        printer: ReceiptPrinter,
        journal: JournalWorker,
        post: Callable[[Event], None],
        tz: tzinfo,
    ) -> None:
        """`tz` is the merchant's time zone: receipts show times as the merchant's clock does."""
        self.config = config
        self.tz = tz
        self.printer = printer
        self.journal = journal
        self.post = post
        self.lines: tuple[str, ...] = ()  # the last receipt as text, for the console
        self._attention = False
        self._slip: RecoveryReceipt | None = None  # a recovery slip the printer still owes
        self._lock = asyncio.Lock()  # one job at a time, in order
        p = config.devices.printer
        self.profile = PrinterProfile(
            columns=p.columns,
            dots_per_line=p.dots_per_line,
            native_qr=p.native_qr,
            cutter=p.cutter,
            encoding=p.encoding,
        )
        self.reprint_copies = REPRINT_COPIES[p.reprint_copies]

    async def print_sale(self, out_trade_no: str) -> None:
        """The first print of an approved sale; the machine hears PrintDone either way."""
        row = await self.journal(lambda j: j.by_out_trade_no(out_trade_no))
        error = "no such sale in the journal" if row is None else await self._print_sale(row)
        self.post(PrintDone(error is None, error or ""))

    async def print_refund(self, refund: RefundRow) -> None:
        """The refund's slip (both copies) as the cashier's wait ended it. The slip of its end
        prints once (`refunds.printed`); one of PROCESSING is followed by the final one."""
        if refund.state in LAST_SLIP_STATES:
            await self._print_refund_once(refund)
        elif refund.state is RefundState.PROCESSING:
            await self._job(refund.out_refund_no, await self._refund_receipt(refund))

    async def print_recovery(self, rows: tuple[Resolved, ...], now: datetime) -> None:
        """The recovery slip for the merchant, then every receipt recovery made due; what the
        printer cannot print yet, the watch prints once it can."""
        merchant = self.config.merchant
        slip = RecoveryReceipt(
            merchant_name=merchant.name,
            store_id=merchant.store_id,
            terminal_id=merchant.terminal_id,
            time=now.astimezone(self.tz),
            lines=tuple(
                RecoveredLine(r.number, r.amount_fen, RESOLUTION_WORDS[r.resolution]) for r in rows
            ),
        )
        self._slip = slip
        await self._catch_up()

    async def reprint(self, number: str | None) -> None:
        """Print a sale or refund again (the latest receipt when no number is given), marked
        REPRINT; `number` is a sale's order number or a refund's number."""
        found = await self.journal(lambda j: _reprintable(j, number))
        if isinstance(found, PaymentRow):
            receipt = self.receipt_for(found, reprint=True)
            await self._job(f"{found.out_trade_no}-reprint", receipt, copies=self.reprint_copies)
        elif isinstance(found, RefundRow):
            slip = await self._refund_receipt(found, reprint=True)
            await self._job(f"{found.out_refund_no}-reprint", slip, copies=self.reprint_copies)
        else:
            log.info("reprint of %r: no approved sale or refund with that number", number)

    async def watch(self) -> None:
        """While receipts wait (on a failed printer, or a refund finished elsewhere: the
        background watch, recovery, the notification receiver), print them."""
        while True:
            await asyncio.sleep(self.config.devices.printer.check_interval_s)
            sales, refunds = await self.journal(_unprinted)
            if self._nothing_due(sales, refunds):
                continue
            if await self._paper() is PaperStatus.OUT:
                self._trouble(PAPER_OUT)
                continue
            await self._catch_up()

    def _nothing_due(self, sales: list[PaymentRow], refunds: list[RefundRow]) -> bool:
        return not (sales or refunds or self._attention or self._slip)

    async def _catch_up(self) -> None:
        """Print every receipt due, oldest first, stopping at the first that fails."""
        sales, refunds = await self.journal(_unprinted)
        if self._nothing_due(sales, refunds):
            return
        slip, self._slip = self._slip, None  # taken: the watch and recovery both catch up
        name = f"recovery-{slip.time:%Y%m%d%H%M%S}" if slip else ""
        if slip is not None and await self._job(name, slip) is not None:
            self._slip = slip  # not printed: the watch tries again
            return
        for sale in sales:
            if await self._print_sale(sale) is not None:
                return
        for refund in refunds:
            if await self._print_refund_once(refund) is not None:
                return
        self._fine()

    async def _print_sale(self, row: PaymentRow) -> str | None:
        number = row.out_trade_no
        once = _Once(lambda j: _sale_printed(j, number), lambda j: j.mark_printed(number))
        return await self._job(number, self.receipt_for(row, reprint=False), once)

    async def _print_refund_once(self, refund: RefundRow) -> str | None:
        once = _Once(
            lambda j: RefundBook(j).get(refund.id).printed,
            lambda j: RefundBook(j).mark_printed(refund.id),
        )
        return await self._job(refund.out_refund_no, await self._refund_receipt(refund), once)

    async def _refund_receipt(self, refund: RefundRow, *, reprint: bool = False) -> RefundReceipt:
        sale = await self.journal(lambda j: j.by_out_trade_no(refund.out_trade_no))
        if sale is None:  # the journal's foreign key makes this a broken journal
            raise JournalError(f"refund {refund.out_refund_no}: no sale {refund.out_trade_no}")
        merchant = self.config.merchant
        return RefundReceipt(
            merchant_name=merchant.name,
            store_id=merchant.store_id,
            terminal_id=merchant.terminal_id,
            time=datetime.fromisoformat(refund.updated_at).astimezone(self.tz),
            method=method_named(sale.method),
            refund_fen=refund.amount_fen,
            sale_amount_fen=refund.paid_fen,
            out_trade_no=refund.out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_id=refund.refund_id or "",
            masked_code=sale.masked_code,
            reason=refund.reason,
            result=_RESULTS[refund.state],
            reprint=reprint,
        )

    async def _job(
        self,
        name: str,
        receipt: Receipt,
        once: _Once | None = None,
        copies: tuple[Copy, ...] = BOTH_COPIES,
    ) -> str | None:
        """Print one receipt (`copies` of it); None when it printed (or had printed already, for
        a receipt that prints `once`), else why not: the printer needs attention, the watch
        prints it later."""
        async with self._lock:
            if once is not None and await self.journal(once.printed):
                return None
            try:
                if await self._paper() is PaperStatus.OUT:
                    raise DeviceError(PAPER_OUT)
                data = await asyncio.to_thread(render_escpos, receipt, self.profile, copies)
                await self.printer.print_job(name, data)
                if once is not None:
                    await self.journal(once.mark)
            except Exception as exc:  # one site per print job: the payment stays as it is
                log.warning("receipt %s not printed: %s", name, exc)
                self._trouble(str(exc))
                return str(exc)
        self.lines = tuple(layout_text(receipt, self.profile, Copy.CUSTOMER))
        self._fine()
        return None

    def receipt_for(self, row: PaymentRow, *, reprint: bool) -> SaleReceipt:
        merchant = self.config.merchant
        return SaleReceipt(
            merchant_name=merchant.name,
            store_id=merchant.store_id,
            terminal_id=merchant.terminal_id,
            # when WeChat says it was paid; rows approved before success_time was kept: updated
            time=datetime.fromisoformat(row.success_time or row.updated_at).astimezone(self.tz),
            method=method_named(row.method),
            amount_fen=row.amount_fen,
            out_trade_no=row.out_trade_no,
            transaction_id=row.transaction_id or "",
            masked_code=row.masked_code,
            reprint=reprint,
        )

    async def _paper(self) -> PaperStatus:
        try:
            return await self.printer.paper_status()
        except Exception:  # a status query is advice: failing it must not stop a print
            log.exception("paper status query failed")
            return PaperStatus.UNKNOWN

    def _trouble(self, message: str) -> None:
        self._attention = True
        self.post(PrinterChanged(False, message))

    def _fine(self) -> None:
        if self._attention:
            self._attention = False
            self.post(PrinterChanged(True))
