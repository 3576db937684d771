"""The refund cap with two SQLite connections racing on one journal file, each on its own thread:
the terminal's (journaling refunds and WeChat's answers) and the notification receiver's
(recording REFUND.* notifications, honest, contradicting, early or duplicated). Whatever the
interleaving, what is refunded never exceeds what was paid, a refund that ended never comes
back, and no write is lost to a locked database.

In the product the receiver writes through the terminal's own journal thread (or runs alone,
holding the journal's lock), so two writers is the harder case: a state read outside the write
may be stale by the time it is written, and the journal's guard must refuse the stale move.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_terminal.business_day import BusinessDay
from pos_terminal.journal import Journal, JournalError, Method
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.payments.wechat_notify import Merchant, Notification, record
from tests.journal_rows import journal_with_sale

SALE = "T0001RACE000001"
PAID_FEN = 1000
# written from the rules, not read from the journal: a closed or refused refund holds nothing
NOT_COUNTED = {"CLOSED", "REFUSED"}
ENDED = {"SUCCESS", "CLOSED", "REFUSED"}  # nothing follows these
MERCHANT = Merchant(mchid="1900000001", appid="wx0000000000000001", business_day=BusinessDay(UTC))

# the terminal: refund `amount`, then what WeChat answers: nothing yet, a refusal, PROCESSING,
# or PROCESSING and then, asked again, an end
FOLLOWED = [("PROCESSING", end) for end in ("SUCCESS", "CLOSED", "ABNORMAL")]
terminal_steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=PAID_FEN + 200),
        st.sampled_from([(), ("REFUSED",), ("PROCESSING",), *FOLLOWED]),
    ),
    min_size=1,
    max_size=8,
)
# the receiver: a REFUND.* notification for the terminal's n-th refund (which may not exist yet),
# honest or claiming another amount
receiver_steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),
        st.sampled_from(["SUCCESS", "CLOSED", "ABNORMAL"]),
        st.booleans(),
    ),
    max_size=10,
)
pauses = st.lists(st.sampled_from([0.0, 0.0, 0.0005, 0.002]), min_size=18, max_size=18)


def number(n: int) -> str:
    return f"R0001RACE{n:06d}"


def run_both(*bodies: Callable[[], None]) -> list[BaseException]:
    """Start the bodies together on their own threads; the exceptions they raised."""
    start = threading.Barrier(len(bodies))
    failures: list[BaseException] = []

    def run(body: Callable[[], None]) -> None:
        start.wait()
        try:
            body()
        except BaseException as exc:  # reported to the test, which fails on it
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return failures


def counted_fen(db: sqlite3.Connection) -> int:
    marks = ",".join("?" * len(NOT_COUNTED))
    (total,) = db.execute(
        f"SELECT COALESCE(SUM(amount_fen), 0) FROM refunds WHERE state NOT IN ({marks})",
        tuple(NOT_COUNTED),
    ).fetchone()
    return int(total)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terminal=terminal_steps, receiver=receiver_steps, waits=pauses)
def test_refunds_never_exceed_the_sale_whatever_the_interleaving(
    tmp_path_factory: pytest.TempPathFactory,
    terminal: list[tuple[int, tuple[str, ...]]],
    receiver: list[tuple[int, str, bool]],
    waits: list[float],
) -> None:
    path = tmp_path_factory.mktemp("race") / "journal.sqlite"
    journal_with_sale(
        path, SALE, amount_fen=PAID_FEN, approved=True, method=Method.WECHAT_CODE
    ).close()
    ours, theirs = Journal(path), Journal(path)
    ours.open()
    theirs.open()
    accepted: dict[int, int] = {}  # the terminal's refund n -> its amount
    refused: list[tuple[int, str]] = []  # amounts the cap refused, and why
    peaks: list[int] = []
    stale: list[str] = []  # moves the journal refused because the other side moved first

    def guarded(move: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        try:
            move(*args, **kwargs)
        except JournalError as exc:
            assert "is not allowed" in str(exc), exc
            stale.append(str(exc))

    def sell_refunds() -> None:
        book = RefundBook(ours)
        for n, (amount, answers) in enumerate(terminal):
            time.sleep(waits[n])
            now = datetime.now(UTC)
            try:
                row = book.begin(
                    out_trade_no=SALE,
                    out_refund_no=number(n),
                    amount_fen=amount,
                    reason="",
                    now=now,
                )
            except JournalError as exc:
                refused.append((amount, str(exc)))
                continue
            accepted[n] = amount
            for answer in answers:
                refund_id = f"50{n:027d}"
                guarded(book.transition, row.id, RefundState(answer), now=now, refund_id=refund_id)
            peaks.append(counted_fen(ours.db))

    def receive_notifications() -> None:
        for k, (n, status, honest) in enumerate(receiver):
            time.sleep(waits[8 + k % 10])
            resource = {
                "out_refund_no": number(n),
                "out_trade_no": SALE,
                "refund_id": f"50{n:027d}",
                "refund_status": status,
                "amount": {"refund": terminal[n][0] if n < len(terminal) and honest else 1},
            }
            note = Notification(f"N{k}", f"REFUND.{status}", "", resource)
            guarded(record, theirs, note, now=datetime.now(UTC), merchant=MERCHANT)
            peaks.append(counted_fen(theirs.db))

    try:
        failures = run_both(sell_refunds, receive_notifications)
        assert not failures, failures  # a locked database or a rule broken mid-race
        db = ours.db
        assert max(peaks, default=0) <= PAID_FEN
        assert counted_fen(db) <= PAID_FEN
        stored = dict(db.execute("SELECT out_refund_no, amount_fen FROM refunds"))
        assert stored == {number(n): amount for n, amount in accepted.items()}  # none lost
        for amount, why in refused:
            assert "refundable" in why
            left = int(why.split("only ")[1].split(" fen")[0])
            assert amount > left  # refused only for want of room
        for (refund,) in db.execute("SELECT id FROM refunds"):
            events = "SELECT to_state FROM refund_events WHERE refund_id = ? ORDER BY id"
            states = [state for (state,) in db.execute(events, (refund,))]
            ends = [i for i, state in enumerate(states) if state in ENDED]
            if ends:  # notes may follow an end; a change of state may not
                assert set(states[ends[0] :]) == {states[ends[0]]}, states
    finally:
        ours.close()
        theirs.close()
