"""What a stopped terminal leaves to the next start: the journal's unfinished rows, in words."""

from __future__ import annotations

from pos_terminal import money
from pos_terminal.journal import Journal
from pos_terminal.journal_refunds import RefundBook, RefundState

NEXT_START = "下次启动时核对 it will be resolved at the next start"
NOTHING = "无进行中的交易 No payment or refund was in flight"


def in_flight(journal: Journal) -> list[str]:
    """One line per payment or refund not final in the journal (what recovery will resolve)."""
    lines = [
        f"支付进行中 Payment in progress: order {row.out_trade_no} "
        f"{money.format_yuan(row.amount_fen)} ({row.state}) — {NEXT_START}"
        for row in journal.unresolved()
    ]
    for refund in RefundBook(journal).unresolved():
        where = (
            "WeChat is finishing it, asked again after the next start"
            if refund.state is RefundState.PROCESSING
            else NEXT_START
        )
        amount = money.format_yuan(refund.amount_fen)
        lines.append(
            f"退款进行中 Refund in progress: {refund.out_refund_no} of order "
            f"{refund.out_trade_no} {amount} ({refund.state}) — {where}"
        )
    return lines
