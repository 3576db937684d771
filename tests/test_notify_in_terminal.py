"""The receiver inside the terminal: WeChat's notifications for its own orders are written through
its journal thread while it sells, polls and refunds, and every row ends as WeChat says."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hw_mocks.customer import Wallet
from hw_mocks.wechat_sandbox import NotifySettings, WeChatSandbox
from pos_terminal.app import open_terminal
from pos_terminal.http_server import ListenError
from pos_terminal.journal import Journal, Method, RowState
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.machine import Phase
from tests.flow_harness import flow_config, running
from tests.notify_receiver import free_port

SALES = 12  # every third paid by payment code (never notified), the rest by QR
REFUNDED = 4


@pytest.mark.slow
def test_the_terminal_and_its_receiver_write_at_once_and_every_row_agrees_with_wechat(
    start_sandbox: Callable[..., WeChatSandbox], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = start_sandbox(
        notify=NotifySettings(time_scale=0.001, duplicate_rate=1.0, probe_rate=0.5),
        refund_delay_s=0.2,
        refund_interval_s=0,
        clock=time.time,
        allow_loopback_notify=True,
    )
    config = flow_config(
        tmp_path,
        sandbox_url=sandbox.base_url,
        merchant_json=sandbox.merchant_json,
        qr_poll=0.05,  # WeChat's notification and the terminal's own query race for each QR
        notify_port=free_port(),
    )

    async def at_the_till() -> tuple[list[str], dict[str, str], int, int, list[list[Any]]]:
        async with running(config, sandbox_url=sandbox.base_url) as h:
            receiver = h.terminal.notify
            assert receiver is not None
            sales = []
            for i in range(SALES):
                await h.ring_up(str(1000 + i))
                if i % 3 == 2:
                    h.scanner.scan(await h.customer.present_code(Wallet.PAID))
                else:
                    assert await h.customer.pay_qr(await h.show_qr())
                state = await h.result()
                assert state.phase is Phase.APPROVED and state.last_sale is not None
                sales.append(state.last_sale.out_trade_no)
            for out_trade_no in sales[:REFUNDED]:  # REFUND.SUCCESS races the refund's own query
                refund = await h.terminal.runtime.refunds.refund(out_trade_no, 100)
                assert refund.state is RefundState.SUCCESS
            async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
                outbox: list[dict[str, Any]] = []
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    outbox = (await http.get("/sandbox/notifications")).json()["notifications"]
                    if len(outbox) == SALES - SALES // 3 + REFUNDED and all(
                        i["state"] == "delivered"
                        and any(a["kind"] == "duplicate" for a in i["attempts"])
                        for i in outbox
                    ):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"notifications still owed: {outbox}")
            remote = {no: await h.remote(no) for no in sales}
            attempts = [item["attempts"] for item in outbox]
            return sales, remote, receiver.accepted, receiver.refused, attempts

    with caplog.at_level(logging.INFO):
        sales, remote, accepted, refused, attempts = asyncio.run(at_the_till())
    assert [r.levelname for r in caplog.records if r.levelno >= logging.ERROR] == []

    journal = Journal(tmp_path / "journal.sqlite")
    journal.open()
    try:
        rows = journal.rows()
        assert [row.out_trade_no for row in rows] == sales  # nothing lost, nothing doubled
        approving_notes = []
        for row in rows:
            approvals = [e for e in journal.events(row.id) if e[1] == RowState.APPROVED]
            assert row.state is RowState.APPROVED and len(approvals) == 1
            assert remote[row.out_trade_no] in ("SUCCESS", "REFUND")
            if row.method is Method.WECHAT_NATIVE:
                approving_notes.append(approvals[0][2])
        book = RefundBook(journal)
        for out_trade_no in sales:
            ended = [r.state for r in book.of_sale(out_trade_no)]
            assert ended == ([RefundState.SUCCESS] if out_trade_no in sales[:REFUNDED] else [])
            assert remote[out_trade_no] == ("REFUND" if ended else "SUCCESS")
    finally:
        journal.close()
    assert any(note.startswith("paid (notification") for note in approving_notes)
    statuses = [(a["kind"], a["status"]) for item in attempts for a in item]
    assert {s for k, s in statuses if k != "probe"} == {204}
    assert {s for k, s in statuses if k == "probe"} <= {400}
    assert (accepted, refused) == (
        sum(k != "probe" for k, _ in statuses),
        sum(k == "probe" for k, _ in statuses),
    )


def test_a_terminal_whose_receiver_cannot_listen_does_not_start(tmp_path: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = flow_config(tmp_path, notify_port=taken.getsockname()[1])

        async def start() -> None:
            async with open_terminal(config):
                raise AssertionError("started beside a port in use")

        with pytest.raises(ListenError, match=r"notify\.listen"):
            asyncio.run(start())
