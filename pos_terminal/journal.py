"""The payment journal: SQLite, write-ahead, the single source of truth about every attempt.

A row is committed in PENDING before the request leaves the terminal; results move it through
guarded transitions (ALLOWED), and every change appends to payment_events in the same transaction.
One connection, one writer: the runtime calls these methods from a single worker thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pos_terminal.errors import PosError

# 2: refunds (journal_refunds.py); 3: attention, success_time; 4: who authorised a refund
SCHEMA_VERSION = 4
T = TypeVar("T")
MIN_SUFFIX = 4  # a refund finds its sale by at least this many trailing digits


class JournalError(PosError):
    """A journal rule was broken (illegal state change, unknown row, duplicate order number)."""


class RowState(StrEnum):
    PENDING = "PENDING"  # committed before the request; outcome unknown until resolved
    QR_SHOWN = "QR_SHOWN"  # Native order created, QR on screen
    # the decision to reverse, committed before the reverse leaves: a reverse takes effect
    # whenever it arrives, so the row can only end REVERSED (or, when WeChat refuses the reverse
    # for good, as the order is: paid with `attention`, or unpaid)
    REVERSING = "REVERSING"
    APPROVED = "APPROVED"  # paid (WeChat SUCCESS)
    DECLINED = "DECLINED"  # refused; no money moved
    CLOSED = "CLOSED"  # Native order closed unpaid
    REVERSED = "REVERSED"  # payment-code order reversed (WeChat REVOKED); any money returned
    # WeChat's answer contradicts the row (amount, merchant, app): never approved silently;
    # `attention` says what, and a supervisor settles it in the merchant portal
    EXCEPTION = "EXCEPTION"


FINAL_STATES = frozenset(
    {RowState.APPROVED, RowState.DECLINED, RowState.CLOSED, RowState.REVERSED, RowState.EXCEPTION}
)

ALLOWED: dict[RowState, frozenset[RowState]] = {
    RowState.PENDING: frozenset(
        {
            RowState.QR_SHOWN,
            RowState.REVERSING,
            RowState.APPROVED,
            RowState.DECLINED,
            RowState.CLOSED,
            RowState.REVERSED,
            RowState.EXCEPTION,
        }
    ),
    RowState.QR_SHOWN: frozenset({RowState.APPROVED, RowState.CLOSED, RowState.EXCEPTION}),
    # APPROVED only with `attention` (a reverse WeChat refused for good, on a paid order)
    RowState.REVERSING: frozenset({RowState.REVERSED, RowState.APPROVED, RowState.DECLINED}),
    **{final: frozenset() for final in FINAL_STATES},
}


class Method(StrEnum):
    WECHAT_CODE = "wechat_code"  # customer-presented payment code (codepay)
    WECHAT_NATIVE = "wechat_native"  # merchant-presented QR (Native)


@dataclass(frozen=True)
class PaymentRow:
    id: int
    kind: str
    method: Method
    amount_fen: int
    state: RowState
    out_trade_no: str
    transaction_id: str | None
    masked_code: str | None
    store_id: str
    terminal_id: str
    business_date: str
    created_at: str
    updated_at: str
    printed: bool
    note: str
    attention: str  # what a supervisor must settle (refund required, contradiction); "" if none
    success_time: str | None  # when WeChat says it was paid (RFC 3339), for approved rows


_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('sale')),
    method TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    discount_fen INTEGER NOT NULL DEFAULT 0,
    fee_fen INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    out_trade_no TEXT NOT NULL UNIQUE,
    transaction_id TEXT,
    masked_code TEXT,
    store_id TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    staff TEXT NOT NULL DEFAULT '',
    business_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    printed INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    attention TEXT NOT NULL DEFAULT '',
    success_time TEXT
);
CREATE INDEX IF NOT EXISTS payments_state ON payments(state);
CREATE TABLE IF NOT EXISTS payment_events (
    id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL REFERENCES payments(id),
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS payment_events_append_only_u BEFORE UPDATE ON payment_events
BEGIN SELECT RAISE(ABORT, 'payment_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS payment_events_append_only_d BEFORE DELETE ON payment_events
BEGIN SELECT RAISE(ABORT, 'payment_events is append-only'); END;
CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL REFERENCES payments(id),
    out_refund_no TEXT NOT NULL UNIQUE,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL,
    refund_id TEXT,
    reason TEXT NOT NULL DEFAULT '',
    staff TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    printed INTEGER NOT NULL DEFAULT 0,
    authorised_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS refund_events (
    id INTEGER PRIMARY KEY,
    refund_id INTEGER NOT NULL REFERENCES refunds(id),
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS refund_events_append_only_u BEFORE UPDATE ON refund_events
BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS refund_events_append_only_d BEFORE DELETE ON refund_events
BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END;
"""

_COLUMNS = (
    "id, kind, method, amount_fen, state, out_trade_no, transaction_id, masked_code, store_id, "
    "terminal_id, business_date, created_at, updated_at, printed, note, attention, success_time"
)
# columns added after a schema version: (version, table, column definition); a table older
# versions did not have yet is created whole by _SCHEMA
_ADDED_COLUMNS = (
    (3, "payments", "attention TEXT NOT NULL DEFAULT ''"),
    (3, "payments", "success_time TEXT"),
    (4, "refunds", "authorised_by TEXT NOT NULL DEFAULT ''"),
)


class Journal:
    """The journal file. Not thread-safe by design: exactly one thread may use an instance."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise JournalError(f"{self.path}: written by a newer version (schema {version})")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        for added_in, table, column in _ADDED_COLUMNS:
            if version < added_in and table in tables:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError("the journal is not open")
        return self._db

    def begin_sale(
        self,
        *,
        method: Method,
        amount_fen: int,
        out_trade_no: str,
        masked_code: str | None,
        store_id: str,
        terminal_id: str,
        now: datetime,
        business_date: str | None = None,
    ) -> PaymentRow:
        """Commit a PENDING row; call before the request leaves the terminal.

        `business_date` defaults to the civil date of `now`; approval sets the payment's own.
        """
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.db) as db:
            try:
                cursor = db.execute(
                    "INSERT INTO payments (kind, method, amount_fen, state, out_trade_no,"
                    " masked_code, store_id, terminal_id, business_date, created_at, updated_at)"
                    " VALUES ('sale', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        method,
                        amount_fen,
                        RowState.PENDING,
                        out_trade_no,
                        masked_code,
                        store_id,
                        terminal_id,
                        business_date or now.date().isoformat(),
                        stamp,
                        stamp,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise JournalError(f"cannot record order {out_trade_no}: {exc}") from exc
            row_id = cursor.lastrowid
            assert row_id is not None
            _append_event(db, row_id, stamp, None, RowState.PENDING, f"{method} {amount_fen} fen")
        return self.get(row_id)

    def transition(
        self,
        row_id: int,
        to: RowState,
        *,
        now: datetime,
        note: str = "",
        transaction_id: str | None = None,
        attention: str = "",
        success_time: str | None = None,
        business_date: str | None = None,
    ) -> PaymentRow:
        """Move a row to `to` if ALLOWED permits it; moving to the state it is in is a no-op.

        `attention` flags the row for a supervisor; `success_time` and `business_date` are
        set when WeChat's answer gives the payment's time.

        Raises:
            JournalError: unknown row or a transition the rules forbid.
        """
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.db) as db:
            current = _state_of(db, row_id)
            if current is to:
                return self.get(row_id)
            if to not in ALLOWED[current]:
                raise JournalError(f"payment {row_id}: {current} -> {to} is not allowed")
            if current is RowState.REVERSING and to is RowState.APPROVED and not attention:
                raise JournalError(
                    f"payment {row_id}: a reversing row is approved only when WeChat refused "
                    "the reverse for good, flagged for a supervisor"
                )
            db.execute(
                "UPDATE payments SET state = ?, updated_at = ?, note = ?,"
                " transaction_id = COALESCE(?, transaction_id), attention = ?,"
                " success_time = COALESCE(?, success_time),"
                " business_date = COALESCE(?, business_date) WHERE id = ?",
                (to, stamp, note, transaction_id, attention, success_time, business_date, row_id),
            )
            _append_event(
                db, row_id, stamp, current, to, note + (f" [{attention}]" * bool(attention))
            )
        return self.get(row_id)

    def note(self, row_id: int, note: str, *, now: datetime) -> None:
        """Append an event without changing state (a poll answer, a retried reverse ...)."""
        stamp = now.isoformat(timespec="milliseconds")
        with immediate(self.db) as db:
            state = _state_of(db, row_id)
            _append_event(db, row_id, stamp, state, state, note)

    def mark_printed(self, out_trade_no: str) -> None:
        with immediate(self.db) as db:
            db.execute("UPDATE payments SET printed = 1 WHERE out_trade_no = ?", (out_trade_no,))

    def get(self, row_id: int) -> PaymentRow:
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE id = ?", (row_id,)
        ).fetchone()
        if found is None:
            raise JournalError(f"no payment with id {row_id}")
        return _row(found)

    def by_out_trade_no(self, out_trade_no: str) -> PaymentRow | None:
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE out_trade_no = ?", (out_trade_no,)
        ).fetchone()
        return _row(found) if found is not None else None

    def find_sale(self, query: str) -> PaymentRow | str:
        """The approved sale a cashier's query names: its order number, or its last digits (at
        least MIN_SUFFIX of them) when they end one approved sale only. Otherwise, why not, in
        words for the cashier.
        """
        exact = self.by_out_trade_no(query)
        if exact is not None:
            if exact.state is RowState.APPROVED:
                return exact
            return f"交易未成功 {query} is not an approved sale ({exact.state.lower()})"
        if not query.isdigit():
            return f"找不到交易 No sale has order no. {query[:32]}"
        if len(query) < MIN_SUFFIX:
            return f"请至少输入{MIN_SUFFIX}位 Type at least {MIN_SUFFIX} digits of the order no."
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE state = ? AND out_trade_no LIKE ? LIMIT 2",
            (RowState.APPROVED, f"%{query}"),
        ).fetchall()
        if len(found) > 1:
            return f"多笔交易匹配 Several sales end in {query}: type more digits"
        if not found:
            return f"找不到交易 No approved sale ends in {query}"
        return _row(found[0])

    def unresolved(self) -> list[PaymentRow]:
        """Rows not in a final state, oldest first."""
        marks = ",".join("?" for _ in FINAL_STATES)
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE state NOT IN ({marks}) ORDER BY id",
            tuple(FINAL_STATES),
        ).fetchall()
        return [_row(r) for r in found]

    def unprinted_sales(self) -> list[PaymentRow]:
        """Approved sales whose receipt has not printed yet, oldest first."""
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE state = ? AND printed = 0 ORDER BY id",
            (RowState.APPROVED,),
        ).fetchall()
        return [_row(r) for r in found]

    def latest_sale(self) -> PaymentRow | None:
        """The most recent approved sale (what a reprint prints)."""
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE state = ? ORDER BY id DESC LIMIT 1",
            (RowState.APPROVED,),
        ).fetchone()
        return _row(found) if found is not None else None

    def needing_attention(self) -> list[PaymentRow]:
        """Rows a supervisor must settle (a refund owed, a contradiction), oldest first."""
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE attention != '' ORDER BY id"
        ).fetchall()
        return [_row(r) for r in found]

    def rows(self) -> list[PaymentRow]:
        return [_row(r) for r in self.db.execute(f"SELECT {_COLUMNS} FROM payments ORDER BY id")]

    def events(self, row_id: int) -> list[tuple[str | None, str, str]]:
        """(from_state, to_state, note) for a row, in order."""
        return list(
            self.db.execute(
                "SELECT from_state, to_state, note FROM payment_events"
                " WHERE payment_id = ? ORDER BY id",
                (row_id,),
            )
        )


class immediate:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _state_of(db: sqlite3.Connection, row_id: int) -> RowState:
    found = db.execute("SELECT state FROM payments WHERE id = ?", (row_id,)).fetchone()
    if found is None:
        raise JournalError(f"no payment with id {row_id}")
    return RowState(found[0])


def _append_event(
    db: sqlite3.Connection, row_id: int, stamp: str, before: str | None, after: str, note: str
) -> None:
    db.execute(
        "INSERT INTO payment_events (payment_id, at, from_state, to_state, note)"
        " VALUES (?, ?, ?, ?, ?)",
        (row_id, stamp, before, after, note),
    )


def _row(r: tuple[object, ...]) -> PaymentRow:
    return PaymentRow(
        id=int(r[0]),  # type: ignore[call-overload]
        kind=str(r[1]),
        method=Method(str(r[2])),
        amount_fen=int(r[3]),  # type: ignore[call-overload]
        state=RowState(str(r[4])),
        out_trade_no=str(r[5]),
        transaction_id=None if r[6] is None else str(r[6]),
        masked_code=None if r[7] is None else str(r[7]),
        store_id=str(r[8]),
        terminal_id=str(r[9]),
        business_date=str(r[10]),
        created_at=str(r[11]),
        updated_at=str(r[12]),
        printed=bool(r[13]),
        note=str(r[14]),
        attention=str(r[15]),
        success_time=None if r[16] is None else str(r[16]),
    )


class JournalWorker:
    """Runs journal calls on one dedicated thread so the event loop never waits on fsync."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")

    async def __call__(self, call: Callable[[Journal], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, self.journal)

    def shutdown(self) -> None:
        self._thread.shutdown(wait=True)
