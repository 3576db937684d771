"""The runtime's own background tasks: supervised, shown on screen when they fail, restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hw_mocks.customer import Wallet
from pos_terminal.journal import RowState
from pos_terminal.machine import Phase
from pos_terminal.ports import PaperStatus
from tests.flow_harness import flow_config, running


@pytest.mark.slow
def test_a_printer_watch_that_dies_is_shown_restarted_and_prints_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(flow_config(tmp_path)) as h:
            journal = h.terminal.runtime.journal
            # the journal's sale table vanishes: the watch's next look at it raises
            await journal(lambda j: j.db.execute("ALTER TABLE payments RENAME TO away"))
            state = await h.until(lambda s: s.device_notices != ())
            [(device, trouble)] = state.device_notices
            assert device == "printer watch" and "no such table" in trouble
            await journal(lambda j: j.db.execute("ALTER TABLE away RENAME TO payments"))
            await h.until(lambda s: s.device_notices == ())

            h.printer.paper = PaperStatus.OUT
            await h.ring_up("1800")
            h.scanner.scan(await h.customer.present_code(Wallet.PAID))
            assert (await h.result()).phase is Phase.APPROVED
            h.printer.paper = PaperStatus.OK  # only a running watch prints the receipt now
            await h.until(lambda s: s.printer_notice == "")
            [row] = await h.rows()
            assert row.state is RowState.APPROVED and row.printed and h.printer.jobs == 1

    asyncio.run(scenario())
