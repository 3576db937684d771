"""Boot-time resolution: every journal row left in doubt is made final before a new sale."""

from __future__ import annotations

import logging

from pos_terminal.clock import Clock
from pos_terminal.journal import JournalWorker
from pos_terminal.payments.wechat import WeChatPayError
from pos_terminal.payments.wechat_flow import WeChatPayments

log = logging.getLogger(__name__)


async def recover(
    journal: JournalWorker, payments: WeChatPayments, clock: Clock, backoff_s: float
) -> int:
    """Resolve unresolved rows oldest first, retrying while WeChat cannot be reached.

    Returns the number of rows resolved. Does not return until all are final: the terminal
    must not take a sale while an earlier payment's outcome is unknown.
    """
    rows = await journal(lambda j: j.unresolved())
    for row in rows:
        delay = backoff_s
        while True:
            try:
                final = await payments.resolve(row)
                log.info("recovered %s (%s): %s", row.out_trade_no, row.method, final)
                break
            except WeChatPayError as exc:
                log.warning(
                    "cannot resolve %s yet: %s; retrying in %.0f s", row.out_trade_no, exc, delay
                )
                await clock.sleep(delay)
                delay = min(delay * 2, 60.0)
    return len(rows)
