"""Refunds in the journal: persisted before the request, guarded, never more than was paid.

The refundable amount is checked inside the same `BEGIN IMMEDIATE` transaction that inserts the
refund row, so two refunds of one sale cannot both pass the check (reference §3.7, §4.5).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pos_terminal.journal import Journal, JournalError, RowState, immediate


class RefundState(StrEnum):
    PENDING = "PENDING"  # committed before the request; WeChat may or may not have it
    PROCESSING = "PROCESSING"  # accepted by WeChat, money on its way
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"  # WeChat closed it: nothing refunded, a new refund needs a new number
    ABNORMAL = "ABNORMAL"  # the customer's account refused it: handled in the merchant portal
    REFUSED = "REFUSED"  # WeChat refused the request: no refund exists


REFUND_FINAL = frozenset(
    {RefundState.SUCCESS, RefundState.CLOSED, RefundState.ABNORMAL, RefundState.REFUSED}
)
# what the log tells the merchant about an ABNORMAL refund
ABNORMAL_ADVICE = "the customer's account refused it; finish it in the merchant portal"
# a refund's slip prints once it ends in one of these (`printed` records it), whoever ended it;
# ABNORMAL is not an end for the customer: the merchant finishes it in the merchant portal
LAST_SLIP_STATES = frozenset({RefundState.SUCCESS, RefundState.CLOSED})
# and also when the cashier's wait ends with WeChat still PROCESSING: "on its way"
SLIP_STATES = LAST_SLIP_STATES | {RefundState.PROCESSING}
# refunds that still count against what may be refunded
COUNTED = frozenset(RefundState) - {RefundState.CLOSED, RefundState.REFUSED}

REFUND_ALLOWED: dict[RefundState, frozenset[RefundState]] = {
    RefundState.PENDING: frozenset(RefundState) - {RefundState.PENDING},
    RefundState.PROCESSING: frozenset(
        {RefundState.SUCCESS, RefundState.CLOSED, RefundState.ABNORMAL}
    ),
    RefundState.ABNORMAL: frozenset({RefundState.SUCCESS, RefundState.CLOSED}),
    RefundState.SUCCESS: frozenset(),
    RefundState.CLOSED: frozenset(),
    RefundState.REFUSED: frozenset(),
}


def _later(state: RefundState) -> frozenset[RefundState]:
    """Every state a refund can reach from `state`."""
    reached: set[RefundState] = set()
    frontier = set(REFUND_ALLOWED[state])
    while frontier:
        reached |= frontier
        frontier = {n for s in frontier for n in REFUND_ALLOWED[s]} - reached
    return frozenset(reached)


# a refund already in one of these has passed the state named: news of that state is stale
LATER = {state: _later(state) for state in RefundState}


@dataclass(frozen=True)
class RefundRow:
    id: int
    out_trade_no: str
    out_refund_no: str
    amount_fen: int  # this refund
    paid_fen: int  # the sale's amount (WeChat's amount.total)
    state: RefundState
    refund_id: str | None
    reason: str
    created_at: str
    updated_at: str
    authorised_by: str  # who authorised it ("supervisor": the supervisor PIN)
    printed: bool  # the slip of its final state came out


_SELECT = (
    "SELECT r.id, p.out_trade_no, r.out_refund_no, r.amount_fen, p.amount_fen, r.state,"
    " r.refund_id, r.reason, r.created_at, r.updated_at, r.authorised_by, r.printed"
    " FROM refunds r JOIN payments p ON p.id = r.payment_id"
)


class RefundBook:
    """Refund rows of one journal; same single-thread rule as the Journal itself."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def refundable_fen(self, out_trade_no: str) -> int:
        """What may still be refunded of an approved sale (0 when it is not approved)."""
        return _refundable(self.journal.db, out_trade_no)[1]

    def begin(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount_fen: int,
        reason: str,
        now: datetime,
        authorised_by: str = "",
    ) -> RefundRow:
        """Commit a PENDING refund; call before the request leaves the terminal.

        Raises:
            JournalError: the sale is not approved, or the amount exceeds what is refundable.
        """
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.journal.db) as db:
            payment_id, refundable = _refundable(db, out_trade_no)
            if amount_fen <= 0 or amount_fen > refundable:
                raise JournalError(
                    f"refund of {amount_fen} fen on {out_trade_no}:"
                    f" only {refundable} fen refundable"
                )
            try:
                cursor = db.execute(
                    "INSERT INTO refunds (payment_id, out_refund_no, amount_fen, state, reason,"
                    " authorised_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        payment_id,
                        out_refund_no,
                        amount_fen,
                        RefundState.PENDING,
                        reason,
                        authorised_by,
                        stamp,
                        stamp,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise JournalError(f"cannot record refund {out_refund_no}: {exc}") from exc
            row_id = cursor.lastrowid
            assert row_id is not None
            _event(db, row_id, stamp, None, RefundState.PENDING, f"{amount_fen} fen")
        return self.get(row_id)

    def transition(
        self,
        row_id: int,
        to: RefundState,
        *,
        now: datetime,
        note: str = "",
        refund_id: str | None = None,
    ) -> RefundRow:
        """Move a refund if REFUND_ALLOWED permits. To the state it is in, or to one it has
        already passed (a late answer saying PROCESSING after a notification said SUCCESS):
        a no-op.

        Raises:
            JournalError: unknown refund or a forbidden change.
        """
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.journal.db) as db:
            found = db.execute("SELECT state FROM refunds WHERE id = ?", (row_id,)).fetchone()
            if found is None:
                raise JournalError(f"no refund with id {row_id}")
            current = RefundState(found[0])
            if current is not to and current not in LATER[to]:
                if to not in REFUND_ALLOWED[current]:
                    raise JournalError(f"refund {row_id}: {current} -> {to} is not allowed")
                db.execute(
                    "UPDATE refunds SET state = ?, updated_at = ?,"
                    " refund_id = COALESCE(?, refund_id) WHERE id = ?",
                    (to, stamp, refund_id, row_id),
                )
                _event(db, row_id, stamp, current, to, note)
        return self.get(row_id)

    def note(self, row_id: int, note: str, *, now: datetime) -> None:
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.journal.db) as db:
            state = self.get(row_id).state
            _event(db, row_id, stamp, state, state, note)

    def mark_printed(self, row_id: int) -> None:
        with immediate(self.journal.db) as db:
            db.execute("UPDATE refunds SET printed = 1 WHERE id = ?", (row_id,))

    def unprinted(self) -> list[RefundRow]:
        """Refunds ended (LAST_SLIP_STATES) whose slip has not printed yet, oldest first."""
        marks = ",".join("?" for _ in LAST_SLIP_STATES)
        found = self.journal.db.execute(
            f"{_SELECT} WHERE r.state IN ({marks}) AND r.printed = 0 ORDER BY r.id",
            tuple(LAST_SLIP_STATES),
        ).fetchall()
        return [_row(r) for r in found]

    def latest_slip(self) -> RefundRow | None:
        """The most recent refund with a slip (what a reprint of the last receipt may be)."""
        marks = ",".join("?" for _ in SLIP_STATES)
        found = self.journal.db.execute(
            f"{_SELECT} WHERE r.state IN ({marks}) ORDER BY r.updated_at DESC, r.id DESC LIMIT 1",
            tuple(SLIP_STATES),
        ).fetchone()
        return None if found is None else _row(found)

    def get(self, row_id: int) -> RefundRow:
        found = self.journal.db.execute(f"{_SELECT} WHERE r.id = ?", (row_id,)).fetchone()
        if found is None:
            raise JournalError(f"no refund with id {row_id}")
        return _row(found)

    def by_out_refund_no(self, out_refund_no: str) -> RefundRow | None:
        found = self.journal.db.execute(
            f"{_SELECT} WHERE r.out_refund_no = ?", (out_refund_no,)
        ).fetchone()
        return None if found is None else _row(found)

    def unresolved(self) -> list[RefundRow]:
        """Refunds not final yet (PENDING first: those are in doubt), oldest first."""
        found = self.journal.db.execute(
            f"{_SELECT} WHERE r.state IN (?, ?) ORDER BY r.state = ? DESC, r.id",
            (RefundState.PENDING, RefundState.PROCESSING, RefundState.PENDING),
        ).fetchall()
        return [_row(r) for r in found]

    def of_sale(self, out_trade_no: str) -> list[RefundRow]:
        found = self.journal.db.execute(
            f"{_SELECT} WHERE p.out_trade_no = ? ORDER BY r.id", (out_trade_no,)
        ).fetchall()
        return [_row(r) for r in found]


def _refundable(db: sqlite3.Connection, out_trade_no: str) -> tuple[int, int]:
    found = db.execute(
        "SELECT id, amount_fen, state FROM payments WHERE out_trade_no = ?", (out_trade_no,)
    ).fetchone()
    if found is None:
        raise JournalError(f"no sale {out_trade_no} in this journal")
    payment_id, paid, state = int(found[0]), int(found[1]), RowState(found[2])
    if state is not RowState.APPROVED:
        return payment_id, 0
    marks = ",".join("?" for _ in COUNTED)
    (refunded,) = db.execute(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds"
        f" WHERE payment_id = ? AND state IN ({marks})",
        (payment_id, *COUNTED),
    ).fetchone()
    return payment_id, paid - int(refunded)


def _event(
    db: sqlite3.Connection, row_id: int, stamp: str, before: str | None, after: str, note: str
) -> None:
    db.execute(
        "INSERT INTO refund_events (refund_id, at, from_state, to_state, note)"
        " VALUES (?, ?, ?, ?, ?)",
        (row_id, stamp, before, after, note),
    )


def _row(r: tuple[object, ...]) -> RefundRow:
    return RefundRow(
        id=int(r[0]),  # type: ignore[call-overload]
        out_trade_no=str(r[1]),
        out_refund_no=str(r[2]),
        amount_fen=int(r[3]),  # type: ignore[call-overload]
        paid_fen=int(r[4]),  # type: ignore[call-overload]
        state=RefundState(str(r[5])),
        refund_id=None if r[6] is None else str(r[6]),
        reason=str(r[7]),
        created_at=str(r[8]),
        updated_at=str(r[9]),
        authorised_by=str(r[10]),
        printed=bool(r[11]),
    )
