"""The defects that lost money or sales, each driven end to end: terminal, journal, sandbox.

Each test drives the real runtime against a real sandbox on loopback; faults are the sandbox's
own (held requests, refused reverses, contradicting answers) or a real SQLite failure (a trigger
that aborts a chosen write, as a full disk or an I/O error would).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from hw_mocks.customer import Wallet
from hw_mocks.wechat_sandbox import Faults, WeChatSandbox
from pos_terminal.config import Config
from pos_terminal.journal import Method, PaymentRow, RowState
from pos_terminal.machine import Phase
from pos_terminal.payments.wechat import WeChatPayClient, load_merchant_json
from pos_terminal.runtime import View
from tests.flow_harness import Harness, flow_config, running
from tests.journal_rows import journal_with_sale

DAY_S = 86400.0


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[WeChatSandbox]:
    """A sandbox that outlives the terminals of a test (it stands for WeChat)."""
    box = WeChatSandbox(tmp_path / "sandbox", userpaying_s=0.5)
    box.start()
    yield box
    box.stop()


def config_for(
    tmp_path: Path, sandbox: WeChatSandbox, *, deadline: float = 3.0, reverse_min_delay: float = 0.3
) -> Config:
    return flow_config(
        tmp_path,
        sandbox_url=sandbox.base_url,
        merchant_json=sandbox.merchant_json,
        deadline=deadline,
        reverse_min_delay=reverse_min_delay,
    )


def phases_seen(h: Harness) -> list[Phase]:
    seen: list[Phase] = []

    def watch(view: View) -> None:
        if not seen or seen[-1] is not view.state.phase:
            seen.append(view.state.phase)

    h.terminal.runtime.observers.append(watch)
    return seen


async def settled_row(h: Harness, timeout: float = 10.0) -> PaymentRow:
    """The test's only row, once it is final."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        [row] = await h.rows()
        if row.state in (
            RowState.APPROVED,
            RowState.DECLINED,
            RowState.CLOSED,
            RowState.REVERSED,
            RowState.EXCEPTION,
        ):
            return row
        assert loop.time() < deadline, f"row still {row.state}"
        await asyncio.sleep(0.05)


async def wait_remote(h: Harness, out_trade_no: str, state: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await h.remote(out_trade_no) != state:
        assert loop.time() < deadline, f"sandbox never said {state}"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- a payment just before a reverse


@pytest.mark.slow
def test_a_payment_that_lands_while_a_cancel_waits_to_reverse_is_an_approved_sale(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    """Cashier cancels at once; the customer finishes the password at 0.8 s; the reverse may
    not leave before 1.5 s: the query just before it finds the payment."""

    async def scenario() -> None:
        async with running(
            config_for(tmp_path, sandbox, reverse_min_delay=1.5), sandbox_url=sandbox.base_url
        ) as h:
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.SLOW, delay_s=0.8))
            await h.until(lambda s: s.phase is Phase.CHARGING_CODE)
            h.keypad.press("cancel")
            state = await h.result()
            assert state.phase is Phase.APPROVED
            row = await settled_row(h)
            assert row.state is RowState.APPROVED
            assert await h.remote(row.out_trade_no) == "SUCCESS"
            assert h.printer.jobs == 1

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_payment_that_lands_after_a_restart_is_approved_not_reversed(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    config = config_for(tmp_path, sandbox, reverse_min_delay=1.5, deadline=60)

    async def scenario() -> None:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.SLOW, delay_s=0.8))
            await h.until(lambda s: s.phase is Phase.CHARGING_CODE)
            for _ in range(100):
                rows = await h.rows()
                if rows and await h.remote(rows[0].out_trade_no) == "USERPAYING":
                    break
                await asyncio.sleep(0.02)
        # stopped while the customer types the password; recovery queries at once (USERPAYING)
        async with running(config, sandbox_url=sandbox.base_url) as h:
            row = await settled_row(h)
            assert row.state is RowState.APPROVED
            assert await h.remote(row.out_trade_no) == "SUCCESS"

    asyncio.run(scenario())


# ---------------------------------------------------------------- late deliveries


@pytest.mark.slow
def test_a_reverse_still_on_the_wire_at_a_crash_is_completed_never_approved(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    """The first terminal decides to reverse and dies while the reverse is held back; the
    customer pays meanwhile; the next start must finish the reverse, as WeChat will."""
    config = config_for(tmp_path, sandbox, deadline=1.0)
    reverse = "/v3/pay/transactions/out-trade-no/*/reverse"

    async def scenario() -> None:
        sandbox.fault_next("POST", reverse, Faults(hold_s=2.0))
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.SLOW, delay_s=1.5))
            for _ in range(200):
                rows = await h.rows()
                row = rows[0] if rows else None
                if row is None:
                    await asyncio.sleep(0.02)
                    continue
                if row.state is RowState.REVERSING:
                    break
                await asyncio.sleep(0.02)
            assert row is not None
            assert row.state is RowState.REVERSING  # journaled before the reverse left
        await wait_remote(h, row.out_trade_no, "SUCCESS")  # the customer paid meanwhile
        async with running(config, sandbox_url=sandbox.base_url) as h:
            final = await settled_row(h)
            assert final.state is RowState.REVERSED
            await asyncio.sleep(2.5)  # the held reverse lands too
            assert await h.remote(final.out_trade_no) == "REVOKED"

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_qr_order_created_late_after_a_crash_is_closed_before_the_row_says_closed(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    """The create is held back past the terminal's death; recovery must not call the row
    CLOSED on "no such order" while the create can still land."""
    config = config_for(tmp_path, sandbox, reverse_min_delay=2.0)

    async def scenario() -> None:
        sandbox.fault_next("POST", "/v3/pay/transactions/native", Faults(hold_s=1.0))
        async with running(config, sandbox_url=sandbox.base_url) as h:
            await h.ring_up("2500")
            h.keypad.press("qr")
            await h.until(lambda s: s.phase is Phase.SHOWING_QR)
            await asyncio.sleep(0.2)  # the create is held at "WeChat"
        async with running(config, sandbox_url=sandbox.base_url) as h:
            row = await settled_row(h)
            assert row.state is RowState.CLOSED
            assert await h.remote(row.out_trade_no) == "CLOSED"

    asyncio.run(scenario())


# ---------------------------------------------------------------- answers that never change


async def _codepay(sandbox: WeChatSandbox, out_trade_no: str, amount_fen: int) -> None:
    creds = load_merchant_json(sandbox.merchant_json)
    async with WeChatPayClient(creds, base_urls=[sandbox.base_url]) as client:
        await client.create_codepay(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            description="POS",
            auth_code="134567890123456" + out_trade_no[-3:],
            store_id="S1",
            device_id="T1",
            device_ip="127.0.0.1",
        )


def _journal_row(path: Path, out_trade_no: str, amount_fen: int, state: RowState) -> None:
    journal = journal_with_sale(
        path, out_trade_no, amount_fen=amount_fen, method=Method.WECHAT_CODE
    )
    if state is not RowState.PENDING:
        [row] = journal.rows()
        journal.transition(row.id, state, now=datetime.now().astimezone(), note="crashed here")
    journal.close()


def test_a_pending_code_order_too_old_to_reverse_ends_declined_and_the_terminal_gets_ready(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    asyncio.run(_codepay(sandbox, "T0001OLD00000101", 4002))  # USERPAYING until reversed
    _journal_row(tmp_path / "journal.sqlite", "T0001OLD00000101", 4002, RowState.PENDING)
    sandbox.advance_clock(8 * DAY_S)  # a long closure: WeChat answers REVERSE_EXPIRE now

    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            [row] = await h.rows()
            assert row.state is RowState.DECLINED
            assert "REVERSE_EXPIRE" in row.note and "unpaid" in row.note

    asyncio.run(scenario())


def test_a_paid_order_whose_reverse_was_decided_but_expired_is_approved_for_a_supervisor(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    asyncio.run(_codepay(sandbox, "T0001OLD00000102", 2500))  # paid at once
    _journal_row(tmp_path / "journal.sqlite", "T0001OLD00000102", 2500, RowState.REVERSING)
    sandbox.advance_clock(8 * DAY_S)

    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            [row] = await h.rows()
            assert row.state is RowState.APPROVED
            assert row.attention.startswith("refund required")
            await h.until(lambda s: s.phase is Phase.RECOVERED)
            summary = h.terminal.runtime.screen.lines
            assert summary[0] == "00000102 ¥25.00 应退款 Refund owed"
            await h.acknowledge_recovery()
            await h.until(lambda s: "supervisor" in s.notice)
            assert await h.remote(row.out_trade_no) == "SUCCESS"

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_reverse_refused_while_the_customer_is_paying_is_asked_again(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    reverse = "/v3/pay/transactions/out-trade-no/*/reverse"
    sandbox.fault_next("POST", reverse, Faults(reverse_refused_while_paying=True))

    async def scenario() -> None:
        async with running(
            config_for(tmp_path, sandbox, deadline=1.0), sandbox_url=sandbox.base_url
        ) as h:
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.NEVER))
            assert (await h.result()).phase is Phase.DECLINED
            row = await settled_row(h)
            assert row.state is RowState.REVERSED
            assert await h.remote(row.out_trade_no) == "REVOKED"
            events = await h.terminal.runtime.journal(lambda j: j.events(row.id))
            assert any("USER_PAYING" in note for _, _, note in events)

    asyncio.run(scenario())


# ---------------------------------------------------------------- contradictions


def test_a_paid_answer_with_another_amount_is_an_exception_not_a_sale(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    sandbox.fault_next("POST", "/v3/pay/transactions/codepay", Faults(answer_amount_fen=1))

    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            state = await h.until(lambda s: s.phase is Phase.EXCEPTION)
            assert "amount.total 1 (ours 2500)" in state.notice
            [row] = await h.rows()
            assert row.state is RowState.EXCEPTION and "amount.total" in row.attention
            assert h.printer.jobs == 0

    asyncio.run(scenario())


# ---------------------------------------------------------------- a journal that fails


def _fail_writes(journal: Path, when: str) -> None:
    """Make the journal refuse a chosen write, as a full disk would: a real SQLite failure."""
    with sqlite3.connect(journal) as db:
        db.execute(
            "CREATE TRIGGER test_fault BEFORE UPDATE OF state ON payments"
            f" WHEN NEW.state = '{when}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            if when != "INSERT"
            else "CREATE TRIGGER test_fault BEFORE INSERT ON payments"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )


def _heal(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        db.execute("DROP TRIGGER test_fault")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pay", "failing", "outcome", "remote"),
    [
        ("code", "APPROVED", Phase.APPROVED, "SUCCESS"),  # paid; recording it fails
        ("qr", "APPROVED", Phase.APPROVED, "SUCCESS"),  # paid by scan; recording it fails
        ("qr", "QR_SHOWN", Phase.DECLINED, "CLOSED"),  # created; recording the QR fails
    ],
)
def test_a_journal_write_that_fails_after_the_request_left_is_in_doubt_until_resolved(
    tmp_path: Path, sandbox: WeChatSandbox, pay: str, failing: str, outcome: Phase, remote: str
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            seen = phases_seen(h)
            journal = Path(h.terminal.config.journal.path)
            _fail_writes(journal, failing)
            await h.ring_up("2500")
            if pay == "code":
                h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            elif failing == "APPROVED":
                assert await h.customer.pay_qr(await h.show_qr())
            else:
                h.keypad.press("qr")
            await h.until(lambda s: s.phase is not Phase.AWAITING_PAYMENT)
            if failing == "APPROVED":  # resolving needs that very write: in doubt until healed
                await h.until(lambda s: s.phase is Phase.IN_DOUBT)
                assert "Do not charge again" in " ".join(h.terminal.runtime.screen.lines)
                await asyncio.sleep(0.5)
                assert h.terminal.runtime.state.phase is Phase.IN_DOUBT
                _heal(journal)
            state = await h.until(lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED))
            assert state.phase is outcome
            assert Phase.IN_DOUBT in seen
            assert Phase.DECLINED not in seen[: seen.index(Phase.IN_DOUBT)]
            row = await settled_row(h)
            assert await h.remote(row.out_trade_no) == remote
            assert h.printer.jobs == (1 if outcome is Phase.APPROVED else 0)

    asyncio.run(scenario())


def test_a_new_row_the_journal_refuses_is_a_plain_decline_and_nothing_is_sent(
    tmp_path: Path, sandbox: WeChatSandbox
) -> None:
    async def scenario() -> None:
        async with running(config_for(tmp_path, sandbox), sandbox_url=sandbox.base_url) as h:
            _fail_writes(Path(h.terminal.config.journal.path), "INSERT")
            await h.ring_up("2500")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            state = await h.result()
            assert state.phase is Phase.DECLINED and "nothing charged" in state.notice
            assert await h.rows() == []
            async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
                assert (await http.get("/sandbox/orders")).json() == {"orders": []}

    asyncio.run(scenario())
