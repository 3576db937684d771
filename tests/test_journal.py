"""The journal: write-ahead rows, guarded transitions, append-only events, durability settings."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from pos_terminal.journal import Journal, JournalError, Method, RowState
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.machine import Phase
from tests.flow_harness import flow_config, running

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "j.sqlite")
    j.open()
    yield j
    j.close()


def begin(journal: Journal, no: str = "T1000001", method: Method = Method.WECHAT_CODE) -> int:
    row = journal.begin_sale(
        method=method,
        amount_fen=1234,
        out_trade_no=no,
        masked_code="1345**********6789",
        store_id="S1",
        terminal_id="T1",
        now=NOW,
    )
    return row.id


def test_a_new_row_is_pending_and_dated(journal: Journal) -> None:
    row = journal.get(begin(journal))
    assert row.state is RowState.PENDING
    assert row.business_date == "2026-11-26"
    assert row.created_at.startswith("2026-11-26T09:30:00.000+08:00")
    assert journal.unresolved() == [row]


def test_durability_settings(journal: Journal) -> None:
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_out_trade_no_is_unique(journal: Journal) -> None:
    begin(journal)
    with pytest.raises(JournalError, match="T1000001"):
        begin(journal)


# The rules, written out from the design rather than read from the journal's own table: a
# pending row may go anywhere; a shown QR is paid, closed or contradicted, never reversed; a
# decided reverse ends reversed, or as the order is when WeChat refuses it for good.
LEGAL_MOVES = {
    RowState.PENDING: {
        "QR_SHOWN",
        "REVERSING",
        "APPROVED",
        "DECLINED",
        "CLOSED",
        "REVERSED",
        "EXCEPTION",
    },
    RowState.QR_SHOWN: {"APPROVED", "CLOSED", "EXCEPTION"},
    RowState.REVERSING: {"REVERSED", "DECLINED"},  # APPROVED only flagged: see below
}
LEADING_TO = {
    RowState.PENDING: [],
    RowState.QR_SHOWN: [RowState.QR_SHOWN],
    RowState.REVERSING: [RowState.REVERSING],
}


@pytest.mark.parametrize("start", list(LEGAL_MOVES))
@pytest.mark.parametrize("to", list(RowState))
def test_transitions_follow_the_rules(journal: Journal, start: RowState, to: RowState) -> None:
    row_id = begin(journal)
    for step in LEADING_TO[start]:
        journal.transition(row_id, step, now=NOW)
    if to is start or to.value in LEGAL_MOVES[start]:
        assert journal.transition(row_id, to, now=NOW).state is to
    else:
        with pytest.raises(JournalError):
            journal.transition(row_id, to, now=NOW)
        assert journal.get(row_id).state is start


@pytest.mark.parametrize("final", ["APPROVED", "DECLINED", "CLOSED", "REVERSED", "EXCEPTION"])
def test_final_states_never_move(journal: Journal, final: str) -> None:
    row_id = begin(journal)
    journal.transition(row_id, RowState(final), now=NOW)
    for other in RowState:
        if other != final:
            with pytest.raises(JournalError):
                journal.transition(row_id, other, now=NOW)
    assert journal.unresolved() == []


def test_every_change_is_logged_in_order(journal: Journal) -> None:
    row_id = begin(journal, method=Method.WECHAT_NATIVE)
    journal.transition(row_id, RowState.QR_SHOWN, now=NOW, note="QR shown")
    journal.note(row_id, "query: NOTPAY", now=NOW)
    journal.transition(row_id, RowState.APPROVED, now=NOW, note="paid", transaction_id="42" * 14)
    assert [e[1] for e in journal.events(row_id)] == ["PENDING", "QR_SHOWN", "QR_SHOWN", "APPROVED"]
    assert journal.get(row_id).transaction_id == "42" * 14


def test_the_event_log_is_append_only(journal: Journal) -> None:
    begin(journal)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal.db.execute("UPDATE payment_events SET note = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal.db.execute("DELETE FROM payment_events")


def test_rows_survive_reopening(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j.sqlite")
    first.open()
    row_id = begin(first)
    first.close()
    second = Journal(tmp_path / "j.sqlite")
    second.open()
    assert second.get(row_id).out_trade_no == "T1000001"
    assert second.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    second.close()


@pytest.mark.slow
def test_a_scanned_payment_code_is_kept_masked_and_never_whole(tmp_path: Path) -> None:
    """Through the real runtime: the scanner reads the whole code, the journal keeps 4 + 4."""

    async def sale_and_refund() -> str:
        async with running(flow_config(tmp_path)) as h:
            await h.ring_up("880")
            code = await h.customer.present_code(Wallet.PAID)
            h.scanner.scan(code)
            assert (await h.result()).phase is Phase.APPROVED
            [row] = await h.rows()
            await h.terminal.runtime.refunds.refund(row.out_trade_no, 100, "test")
            return code

    code = asyncio.run(sale_and_refund())
    assert len(code) == 18 and code.isdigit()
    journal = Journal(tmp_path / "journal.sqlite")
    journal.open()
    try:
        [row] = journal.rows()
        assert row.masked_code == code[:4] + "**********" + code[-4:]
        dump = "\n".join(journal.db.iterdump())
    finally:
        journal.close()
    assert code not in dump and code[4:14] not in dump
    for stored in tmp_path.glob("journal.sqlite*"):  # the database, its WAL, anything beside
        assert code.encode() not in stored.read_bytes(), stored.name


def test_a_journal_from_the_previous_version_gains_the_new_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, method TEXT NOT NULL,
            amount_fen INTEGER NOT NULL, discount_fen INTEGER NOT NULL DEFAULT 0,
            fee_fen INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
            out_trade_no TEXT NOT NULL UNIQUE, transaction_id TEXT, masked_code TEXT,
            store_id TEXT NOT NULL, terminal_id TEXT NOT NULL, staff TEXT NOT NULL DEFAULT '',
            business_date TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            printed INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT ''
        );
        INSERT INTO payments (kind, method, amount_fen, state, out_trade_no, store_id,
            terminal_id, business_date, created_at, updated_at)
        VALUES ('sale', 'wechat_code', 500, 'APPROVED', 'T0001OLD', 'S1', 'T1', '2026-11-01',
            '2026-11-01T10:00:00.000+08:00', '2026-11-01T10:00:01.000+08:00');
        PRAGMA user_version=2;
        """
    )
    db.close()
    journal = Journal(path)
    journal.open()
    try:
        [row] = journal.rows()
        assert (row.out_trade_no, row.state, row.attention, row.success_time) == (
            "T0001OLD",
            RowState.APPROVED,
            "",
            None,
        )
        assert journal.db.execute("PRAGMA user_version").fetchone()[0] == 4
    finally:
        journal.close()


def test_a_version_3_journal_keeps_its_refunds_which_gain_who_authorised_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, method TEXT NOT NULL,
            amount_fen INTEGER NOT NULL, discount_fen INTEGER NOT NULL DEFAULT 0,
            fee_fen INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
            out_trade_no TEXT NOT NULL UNIQUE, transaction_id TEXT, masked_code TEXT,
            store_id TEXT NOT NULL, terminal_id TEXT NOT NULL, staff TEXT NOT NULL DEFAULT '',
            business_date TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            printed INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '',
            attention TEXT NOT NULL DEFAULT '', success_time TEXT
        );
        CREATE TABLE refunds (
            id INTEGER PRIMARY KEY, payment_id INTEGER NOT NULL REFERENCES payments(id),
            out_refund_no TEXT NOT NULL UNIQUE, amount_fen INTEGER NOT NULL, state TEXT NOT NULL,
            refund_id TEXT, reason TEXT NOT NULL DEFAULT '', staff TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            printed INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO payments (kind, method, amount_fen, state, out_trade_no, store_id,
            terminal_id, business_date, created_at, updated_at)
        VALUES ('sale', 'wechat_code', 500, 'APPROVED', 'T0001OLD', 'S1', 'T1', '2026-11-01',
            '2026-11-01T10:00:00.000+08:00', '2026-11-01T10:00:01.000+08:00');
        INSERT INTO refunds (payment_id, out_refund_no, amount_fen, state, reason, created_at,
            updated_at, printed)
        VALUES (1, 'R0001OLD', 200, 'SUCCESS', 'damaged', '2026-11-01T11:00:00.000+08:00',
            '2026-11-01T11:00:02.000+08:00', 1);
        PRAGMA user_version=3;
        """
    )
    db.close()
    journal = Journal(path)
    journal.open()
    try:
        old = RefundBook(journal).by_out_refund_no("R0001OLD")
        assert old is not None
        assert (old.amount_fen, old.state, old.reason, old.printed, old.authorised_by) == (
            200,
            RefundState.SUCCESS,
            "damaged",
            True,
            "",
        )
        assert RefundBook(journal).refundable_fen("T0001OLD") == 300
        assert journal.db.execute("PRAGMA user_version").fetchone()[0] == 4
    finally:
        journal.close()
    again = Journal(path)
    again.open()  # opening a current journal migrates nothing twice
    again.close()


def test_a_reversing_row_is_approved_only_when_flagged_for_a_supervisor(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.open()
    now = datetime.now().astimezone()
    try:
        row = journal.begin_sale(
            method=Method.WECHAT_CODE,
            amount_fen=100,
            out_trade_no="T0001REV",
            masked_code=None,
            store_id="S1",
            terminal_id="T1",
            now=now,
        )
        journal.transition(row.id, RowState.REVERSING, now=now)
        with pytest.raises(JournalError, match="only when WeChat refused"):
            journal.transition(row.id, RowState.APPROVED, now=now)  # a late SUCCESS
        flagged = journal.transition(
            row.id, RowState.APPROVED, now=now, attention="refund required: REVERSE_EXPIRE"
        )
        assert flagged.state is RowState.APPROVED
        assert [r.out_trade_no for r in journal.needing_attention()] == ["T0001REV"]
    finally:
        journal.close()
