"""Boot-time resolution: every journal row left in doubt is made final before a new sale."""

from __future__ import annotations

import logging

from pos_terminal.journal import JournalWorker
from pos_terminal.payments.wechat_flow import WeChatPayments
from pos_terminal.payments.wechat_refund import WeChatRefunds

log = logging.getLogger(__name__)


async def recover(journal: JournalWorker, payments: WeChatPayments, refunds: WeChatRefunds) -> int:
    """Resolve unresolved rows oldest first, retrying while WeChat cannot be reached.

    Returns the number of payments and refunds looked at. Does not return until every payment
    is final and every refund has reached WeChat: the terminal must not take a sale while an
    earlier outcome is unknown. (A PROCESSING refund is known to WeChat; it is only asked once.)
    """
    rows = await journal(lambda j: j.unresolved())
    for row in rows:
        final = await payments.resolve_until_final(row)
        log.info("recovered %s (%s): %s", row.out_trade_no, row.method, final)
    return len(rows) + await refunds.resolve()
