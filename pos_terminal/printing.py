"""Receipts from the journal to the printer: first prints, reprints, and catching up after a fault.

A receipt is always built from the journal row, so a sale approved while the printer was out of
paper (or approved during recovery) prints the same receipt later, and a reprint is identical
but for its 重印 REPRINT mark; a reprint is the customer's copy unless `printer.reprint_copies`
says otherwise. The loop never waits on the printer: this runs as tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, tzinfo

from pos_terminal.config import Config
from pos_terminal.errors import DeviceError
from pos_terminal.journal import JournalWorker, PaymentRow, RowState
from pos_terminal.journal_refunds import RefundRow, RefundState
from pos_terminal.machine import Event, PrintDone, PrinterChanged
from pos_terminal.ports import PaperStatus, ReceiptPrinter
from pos_terminal.receipt import (
    BOTH_COPIES,
    Copy,
    PrinterProfile,
    RefundReceipt,
    SaleReceipt,
    layout_sale,
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
        error = "no such sale in the journal" if row is None else await self._print(row, False)
        self.post(PrintDone(error is None, error or ""))

    async def reprint(self, out_trade_no: str | None) -> None:
        """Print an approved sale again (the latest when no number is given), marked REPRINT."""
        if out_trade_no is None:
            row = await self.journal(lambda j: j.latest_sale())
        else:
            row = await self.journal(lambda j: j.by_out_trade_no(out_trade_no))
        if row is None or row.state is not RowState.APPROVED:
            log.info("reprint of %r: no approved sale with that number", out_trade_no)
            return
        await self._print(row, True)

    async def print_refund(self, refund: RefundRow) -> None:
        """The refund receipt (both copies); a failure leaves the printer-needs-attention note."""
        sale = await self.journal(lambda j: j.by_out_trade_no(refund.out_trade_no))
        if sale is None:
            return
        merchant = self.config.merchant
        receipt = RefundReceipt(
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
            in_progress=refund.state is RefundState.PROCESSING,
        )
        async with self._lock:
            try:
                data = await asyncio.to_thread(render_escpos, receipt, self.profile)
                await self.printer.print_job(refund.out_refund_no, data)
            except Exception as exc:  # one site per print job
                log.warning("refund receipt %s not printed: %s", refund.out_refund_no, exc)
                self._trouble(str(exc))
                return
        self.lines = tuple(layout_text(receipt, self.profile, Copy.CUSTOMER))
        self._fine()

    async def watch(self) -> None:
        """While receipts wait on a failed printer, check it and print them when it is back."""
        while True:
            await asyncio.sleep(self.config.devices.printer.check_interval_s)
            waiting = await self.journal(lambda j: j.unprinted_sales())
            if not waiting and not self._attention:
                continue
            if await self._paper() is PaperStatus.OUT:
                self._trouble(PAPER_OUT)
                continue
            for row in waiting:
                if await self._print(row, False) is not None:
                    break
            else:
                self._fine()

    async def _print(self, row: PaymentRow, reprint: bool) -> str | None:
        """Print one receipt; None when it printed, else why not (the printer needs attention)."""
        receipt = self.receipt_for(row, reprint=reprint)
        async with self._lock:
            if not reprint and await self._printed_meanwhile(row):
                return None
            try:
                if await self._paper() is PaperStatus.OUT:
                    raise DeviceError(PAPER_OUT)
                copies = self.reprint_copies if reprint else BOTH_COPIES
                data = await asyncio.to_thread(render_escpos, receipt, self.profile, copies)
                name = f"{row.out_trade_no}-reprint" if reprint else row.out_trade_no
                await self.printer.print_job(name, data)
                if not reprint:
                    await self.journal(lambda j: j.mark_printed(row.out_trade_no))
            except Exception as exc:  # one site per print job: the sale stays approved regardless
                log.warning("receipt for %s not printed: %s", row.out_trade_no, exc)
                self._trouble(str(exc))
                return str(exc)
        self.lines = tuple(layout_sale(receipt, self.profile))
        self._fine()
        return None

    async def _printed_meanwhile(self, row: PaymentRow) -> bool:
        """A sale prints once: the watcher and the first print may both reach for it."""
        current = await self.journal(lambda j: j.by_out_trade_no(row.out_trade_no))
        return current is not None and current.printed

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
