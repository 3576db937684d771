"""Boot-time resolution: every journal row left in doubt is made final before a new sale."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pos_terminal.journal import JournalWorker
from pos_terminal.payments.wechat_refund import WeChatRefunds
from pos_terminal.payments.wechat_settle import Settler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    resolved: int  # payments and refunds looked at
    attention: int  # payments a supervisor must settle


async def recover(journal: JournalWorker, settler: Settler, refunds: WeChatRefunds) -> Recovered:
    """Resolve unresolved rows oldest first, retrying while WeChat cannot be reached.

    Does not return until every payment is final and every refund has reached WeChat: the
    terminal must not take a sale while an earlier outcome is unknown. (A PROCESSING refund is
    known to WeChat; it is only asked once.)
    """
    rows = await journal(lambda j: j.unresolved())
    for row in rows:
        final = await settler.resolve_until_final(row)
        log.info("recovered %s (%s): %s", row.out_trade_no, row.method, final.state)
    resolved = len(rows) + await refunds.resolve()
    flagged = await journal(lambda j: j.needing_attention())
    for row in flagged:
        log.warning("payment %s needs a supervisor: %s", row.out_trade_no, row.attention)
    return Recovered(resolved, len(flagged))
