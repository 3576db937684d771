"""One sale in a journal, for tests and benchmarks that start from a given row."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pos_terminal.journal import Journal, Method, RowState


def journal_with_sale(
    path: Path,
    out_trade_no: str,
    *,
    amount_fen: int = 1000,
    approved: bool = False,
    method: Method = Method.WECHAT_NATIVE,
    now: datetime | None = None,
) -> Journal:
    """An open journal holding the sale (PENDING, or APPROVED with a transaction id)."""
    journal = Journal(path)
    journal.open()
    add_sale(
        journal, out_trade_no, amount_fen=amount_fen, approved=approved, method=method, now=now
    )
    return journal


def add_sale(
    journal: Journal,
    out_trade_no: str,
    *,
    amount_fen: int = 1000,
    approved: bool = False,
    method: Method = Method.WECHAT_NATIVE,
    now: datetime | None = None,
) -> None:
    """One more sale in `journal` (PENDING, or APPROVED with a transaction id)."""
    now = now or datetime.now().astimezone()
    row = journal.begin_sale(
        method=method,
        amount_fen=amount_fen,
        out_trade_no=out_trade_no,
        masked_code=None,
        store_id="S1",
        terminal_id="T1",
        now=now,
    )
    if approved:
        journal.transition(row.id, RowState.APPROVED, now=now, transaction_id="4200" + "0" * 24)
