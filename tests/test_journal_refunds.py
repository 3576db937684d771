"""Refund rows: persisted first, guarded, and never more than the sale paid."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_terminal.journal import Journal, JournalError, Method
from pos_terminal.journal_refunds import RefundBook, RefundState
from tests.journal_rows import journal_with_sale as open_with_sale

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))
SALE = "T0001SALE000001"


def journal_with_sale(path: Path, *, approved: bool = True, paid: int = 1000) -> Journal:
    return open_with_sale(
        path, SALE, amount_fen=paid, approved=approved, method=Method.WECHAT_CODE, now=NOW
    )


def begin(book: RefundBook, number: str, amount: int) -> int:
    row = book.begin(out_trade_no=SALE, out_refund_no=number, amount_fen=amount, reason="", now=NOW)
    return row.id


def test_partial_refunds_add_up_to_the_paid_amount_and_no_further(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    begin(book, "R1", 300)
    begin(book, "R2", 700)
    assert book.refundable_fen(SALE) == 0
    with pytest.raises(JournalError, match="only 0 fen refundable"):
        begin(book, "R3", 1)
    assert [r.state for r in book.unresolved()] == [RefundState.PENDING] * 2


def test_a_closed_or_refused_refund_gives_its_amount_back(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    first = begin(book, "R1", 1000)
    book.transition(first, RefundState.PROCESSING, now=NOW, refund_id="5" * 29)
    book.transition(first, RefundState.CLOSED, now=NOW)
    assert book.refundable_fen(SALE) == 1000
    second = begin(book, "R2", 1000)
    book.transition(second, RefundState.REFUSED, now=NOW)
    assert book.refundable_fen(SALE) == 1000


def test_only_approved_sales_can_be_refunded(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite", approved=False))
    with pytest.raises(JournalError, match="only 0 fen refundable"):
        begin(book, "R1", 1)
    with pytest.raises(JournalError, match="no sale"):
        book.begin(out_trade_no="NOPE", out_refund_no="R2", amount_fen=1, reason="", now=NOW)


def test_a_refund_number_is_used_once(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    begin(book, "R1", 100)
    with pytest.raises(JournalError, match="R1"):
        begin(book, "R1", 100)


# Written out by hand, row = the refund's state, column = the news: "move" changes the row,
# "stale" is news of a state the refund has already passed (nothing changes), "-" is refused.
# A refund goes PENDING -> PROCESSING -> (ABNORMAL ->) SUCCESS or CLOSED, or PENDING -> REFUSED.
NEWS = ("PENDING", "PROCESSING", "SUCCESS", "CLOSED", "ABNORMAL", "REFUSED")
RULES = {
    "PENDING": ("same", "move", "move", "move", "move", "move"),
    "PROCESSING": ("stale", "same", "move", "move", "move", "-"),
    "ABNORMAL": ("stale", "stale", "move", "move", "same", "-"),
    "SUCCESS": ("stale", "stale", "same", "-", "stale", "-"),
    "CLOSED": ("stale", "stale", "-", "same", "stale", "-"),
    "REFUSED": ("stale", "-", "-", "-", "-", "same"),
}
# what still holds part of the sale's amount: all but a closed or refused refund
COUNTED = {"PENDING", "PROCESSING", "SUCCESS", "ABNORMAL"}


def test_the_rules_table_names_every_state() -> None:
    assert set(NEWS) == set(RULES) == {s.value for s in RefundState}


@pytest.mark.parametrize("start", list(RULES))
@pytest.mark.parametrize("to", NEWS)
def test_refund_transitions_follow_the_rules(tmp_path: Path, start: str, to: str) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    row_id = begin(book, "R1", 100)
    path = {"PENDING": [], "REFUSED": ["REFUSED"]}.get(start, ["PROCESSING", start])
    for step in path:
        book.transition(row_id, RefundState(step), now=NOW)
    rule = RULES[start][NEWS.index(to)]
    if rule == "-":
        with pytest.raises(JournalError, match="not allowed"):
            book.transition(row_id, RefundState(to), now=NOW)
    else:
        moved = book.transition(row_id, RefundState(to), now=NOW).state
        assert moved == (start if rule == "stale" else to)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=1200), st.sampled_from(list(RefundState))),
        max_size=12,
    )
)
def test_counted_refunds_never_exceed_the_paid_amount(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, RefundState]]
) -> None:
    journal = journal_with_sale(tmp_path_factory.mktemp("j") / "j.sqlite")
    book = RefundBook(journal)
    for n, (amount, outcome) in enumerate(steps):
        try:
            row_id = begin(book, f"R{n}", amount)
        except JournalError:
            continue
        if outcome is not RefundState.PENDING:
            book.transition(
                row_id,
                RefundState.PROCESSING if outcome is RefundState.ABNORMAL else outcome,
                now=NOW,
            )
    counted = sum(r.amount_fen for r in book.of_sale(SALE) if r.state in COUNTED)
    assert counted <= 1000
    assert book.refundable_fen(SALE) == 1000 - counted
    journal.close()


def test_a_refund_row_records_who_authorised_it_and_why(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    row = book.begin(
        out_trade_no=SALE,
        out_refund_no="R1",
        amount_fen=300,
        reason="顾客退货 Customer return",
        now=NOW,
        authorised_by="supervisor",
    )
    again = book.get(row.id)
    assert (again.authorised_by, again.reason) == ("supervisor", "顾客退货 Customer return")


def test_an_ended_refund_waits_for_its_slip_until_it_is_marked_printed(tmp_path: Path) -> None:
    book = RefundBook(journal_with_sale(tmp_path / "j.sqlite"))
    done, on_its_way, closed = begin(book, "R1", 100), begin(book, "R2", 200), begin(book, "R3", 50)
    book.transition(done, RefundState.SUCCESS, now=NOW)
    book.transition(on_its_way, RefundState.PROCESSING, now=NOW)
    book.transition(closed, RefundState.PROCESSING, now=NOW)
    book.transition(closed, RefundState.CLOSED, now=NOW)
    # the money back, or WeChat closed it (nothing refunded): both end with a slip
    assert [r.out_refund_no for r in book.unprinted()] == ["R1", "R3"]
    book.mark_printed(done)
    book.mark_printed(closed)
    assert book.unprinted() == [] and book.get(done).printed
    book.transition(on_its_way, RefundState.SUCCESS, now=NOW + timedelta(seconds=5))
    assert [r.out_refund_no for r in book.unprinted()] == ["R2"]
    latest = book.latest_slip()
    assert latest is not None and latest.out_refund_no == "R2"
