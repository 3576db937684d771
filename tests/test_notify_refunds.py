"""REFUND.* notifications recorded into the journal: idempotent, and never against the journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pos_terminal.business_day import BusinessDay
from pos_terminal.journal import Journal
from pos_terminal.journal_refunds import RefundBook, RefundRow, RefundState
from pos_terminal.payments.wechat_notify import Merchant, Notification, record
from tests.journal_rows import journal_with_sale

SALE = "T0001REFNOTE01"
NOW = datetime(2026, 11, 26, 12, 0).astimezone()
MERCHANT = Merchant("1900000001", "wx0000000000000001", BusinessDay(UTC))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = journal_with_sale(
        tmp_path / "journal.sqlite", SALE, amount_fen=5000, approved=True, now=NOW
    )
    yield journal
    journal.close()


def processing(journal: Journal, number: str = "RT0001A", fen: int = 2000) -> RefundRow:
    book = RefundBook(journal)
    row = book.begin(out_trade_no=SALE, out_refund_no=number, amount_fen=fen, reason="", now=NOW)
    return book.transition(row.id, RefundState.PROCESSING, now=NOW)


def notice(status: str, number: str = "RT0001A", fen: int = 2000, **extra: Any) -> Notification:
    resource = {
        "mchid": "1900000001",
        "out_trade_no": SALE,
        "transaction_id": "4200" + "0" * 24,
        "out_refund_no": number,
        "refund_id": "50300000000000000000000000001",
        "refund_status": status,
        "user_received_account": "支付用户零钱",
        "amount": {"total": 5000, "refund": fen, "payer_total": 5000, "payer_refund": fen},
        **extra,
    }
    return Notification("EV-1", f"REFUND.{status}", "退款", resource)


def events(journal: Journal, row: RefundRow) -> list[tuple[str, str]]:
    found = journal.db.execute(
        "SELECT to_state, note FROM refund_events WHERE refund_id = ? ORDER BY id", (row.id,)
    ).fetchall()
    return [(str(state), str(note)) for state, note in found]


@pytest.mark.parametrize("status", ["SUCCESS", "ABNORMAL", "CLOSED"])
def test_a_refund_notification_ends_the_refund_once(journal: Journal, status: str) -> None:
    row = processing(journal)
    assert record(journal, notice(status), now=NOW, merchant=MERCHANT).endswith("by notification")
    assert "duplicate" in record(journal, notice(status), now=NOW, merchant=MERCHANT)
    ended = RefundBook(journal).get(row.id)
    assert ended.state is RefundState(status)
    assert ended.refund_id == "50300000000000000000000000001"
    assert [state for state, _ in events(journal, row)] == ["PENDING", "PROCESSING", status]


def test_a_refund_left_pending_by_a_crash_is_ended_by_its_notification(journal: Journal) -> None:
    book = RefundBook(journal)
    row = book.begin(
        out_trade_no=SALE, out_refund_no="RT0001A", amount_fen=2000, reason="", now=NOW
    )
    record(journal, notice("SUCCESS"), now=NOW, merchant=MERCHANT)
    assert book.get(row.id).state is RefundState.SUCCESS


def test_a_contradicting_notification_changes_nothing_and_is_flagged(journal: Journal) -> None:
    row = processing(journal)
    assert "CONFLICT" in record(journal, notice("SUCCESS", fen=2001), now=NOW, merchant=MERCHANT)
    # the event type and the resource disagree
    assert "CONFLICT" in record(
        journal, notice("SUCCESS", refund_status="PROCESSING"), now=NOW, merchant=MERCHANT
    )
    assert RefundBook(journal).get(row.id).state is RefundState.PROCESSING
    record(journal, notice("CLOSED"), now=NOW, merchant=MERCHANT)
    assert "CONFLICT" in record(
        journal, notice("SUCCESS"), now=NOW, merchant=MERCHANT
    )  # closed stays closed
    assert RefundBook(journal).get(row.id).state is RefundState.CLOSED
    flagged = [note for _, note in events(journal, row) if "notification" in note]
    assert len(flagged) == 4 and "2001" in flagged[0] and "'PROCESSING'" in flagged[1]
    assert "journal says CLOSED" in flagged[3]


def test_a_late_abnormal_after_success_is_stale_not_a_conflict(journal: Journal) -> None:
    row = processing(journal)
    record(journal, notice("SUCCESS"), now=NOW, merchant=MERCHANT)
    assert "already SUCCESS" in record(journal, notice("ABNORMAL"), now=NOW, merchant=MERCHANT)
    assert RefundBook(journal).get(row.id).state is RefundState.SUCCESS
    assert len(events(journal, row)) == 3


@pytest.mark.parametrize(
    "bad",
    [
        notice("SUCCESS", number="RT0001UNKNOWN"),
        Notification("EV-2", "REFUND.SUCCESS", "", {"out_refund_no": ["RT0001A"]}),
        Notification("EV-3", "REFUND.SUCCESS", "", {}),
    ],
)
def test_notifications_that_name_no_refund_of_ours_change_nothing(
    journal: Journal, bad: Notification
) -> None:
    row = processing(journal)
    record(journal, bad, now=NOW, merchant=MERCHANT)
    assert RefundBook(journal).get(row.id).state is RefundState.PROCESSING
    assert len(events(journal, row)) == 2
