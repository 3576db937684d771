"""Boot-time resolution: every journal row left in doubt is made final before a new sale."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pos_terminal.journal import JournalWorker, PaymentRow, RowState
from pos_terminal.journal_refunds import RefundBook, RefundRow, RefundState
from pos_terminal.machine import Resolution, Resolved
from pos_terminal.payments.wechat_refund import WeChatRefunds
from pos_terminal.payments.wechat_settle import Settler

log = logging.getLogger(__name__)

# (position, total): recovery starts on the position-th of total rows (1-based)
Progress = Callable[[int, int], None]

_PAYMENT_ENDS = {
    RowState.APPROVED: Resolution.PAID,
    RowState.DECLINED: Resolution.NOT_PAID,
    RowState.CLOSED: Resolution.NOT_PAID,
    RowState.REVERSED: Resolution.REVERSED,
    RowState.EXCEPTION: Resolution.EXCEPTION,
}
_REFUND_ENDS = {
    RefundState.SUCCESS: Resolution.REFUNDED,
    RefundState.PROCESSING: Resolution.REFUND_UNDER_WAY,
}


@dataclass(frozen=True)
class Recovered:
    rows: tuple[Resolved, ...]  # payments, then refunds, each as it ended
    attention: int  # payments a supervisor must settle


def payment_resolution(row: PaymentRow) -> Resolution:
    """How a final payment row reads on the summary; approved with a flag: a refund is owed."""
    if row.state is RowState.APPROVED and row.attention:
        return Resolution.PAID_REFUND_OWED
    return _PAYMENT_ENDS[row.state]


def refund_resolution(row: RefundRow) -> Resolution:
    return _REFUND_ENDS.get(row.state, Resolution.NOT_REFUNDED)


async def recover(
    journal: JournalWorker, settler: Settler, refunds: WeChatRefunds, progress: Progress
) -> Recovered:
    """Resolve unresolved rows oldest first, retrying while WeChat cannot be reached.

    Does not return until every payment is final and every refund has reached WeChat: the
    terminal must not take a sale while an earlier outcome is unknown. (A PROCESSING refund is
    known to WeChat; it is only asked once.)
    """
    payments = await journal(lambda j: j.unresolved())
    pending = await journal(lambda j: RefundBook(j).unresolved())
    total = len(payments) + len(pending)
    rows: list[Resolved] = []
    for row in payments:
        progress(len(rows) + 1, total)
        final = await settler.resolve_until_final(row)
        log.info("recovered %s (%s): %s", row.out_trade_no, row.method, final.state)
        rows.append(Resolved(final.out_trade_no, final.amount_fen, payment_resolution(final)))
    for refund in pending:
        progress(len(rows) + 1, total)
        ended = await refunds.resolve(refund)
        log.info("recovered refund %s: %s", ended.out_refund_no, ended.state)
        rows.append(Resolved(ended.out_refund_no, ended.amount_fen, refund_resolution(ended)))
    flagged = await journal(lambda j: j.needing_attention())
    for flag in flagged:
        log.warning("payment %s needs a supervisor: %s", flag.out_trade_no, flag.attention)
    return Recovered(tuple(rows), len(flagged))
