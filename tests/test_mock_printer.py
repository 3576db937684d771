"""The mock receipt printer: files per job, the last decoded receipt, safe names, paper faults."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hw_mocks.printer import NAMES_KEPT, MockPrinter, job_file_stem
from pos_terminal.errors import DeviceError
from pos_terminal.ports import PaperStatus
from pos_terminal.receipt import WECHAT_CODE, PrinterProfile, SaleReceipt, render_escpos

RECEIPT = SaleReceipt(
    merchant_name="好邻居便利店",
    store_id="S001",
    terminal_id="T01",
    time=datetime(2024, 5, 1, 12, 34, 56, tzinfo=timezone(timedelta(hours=8))),
    method=WECHAT_CODE,
    amount_fen=1234,
    out_trade_no="POS20240501123456A1",
    transaction_id="4200001234202405011234567890",
    masked_code="1345********6789",
)


def test_a_job_writes_the_bytes_and_the_decoded_text(tmp_path: Path) -> None:
    data = render_escpos(RECEIPT, PrinterProfile(cutter=True))

    async def scenario() -> MockPrinter:
        async with MockPrinter(tmp_path / "receipts") as printer:
            await printer.print_job(RECEIPT.out_trade_no, data)
            return printer

    printer = asyncio.run(scenario())
    assert (tmp_path / "receipts" / "POS20240501123456A1.bin").read_bytes() == data
    text = (tmp_path / "receipts" / "POS20240501123456A1.txt").read_text(encoding="utf-8")
    assert "￥12.34" in text and "[QR: POS20240501123456A1]" in text
    assert text.rstrip().endswith("--- cut ---")
    assert (tmp_path / "receipts" / "POS20240501123456A1.png").read_bytes()[
        :8
    ] == b"\x89PNG\r\n\x1a\n"
    assert printer.jobs == 1 and printer.last is not None
    assert printer.last.qr_payloads == ["POS20240501123456A1"] * 2  # both copies


def test_jobs_are_counted_and_last_is_the_newest(tmp_path: Path) -> None:
    async def scenario() -> MockPrinter:
        printer = MockPrinter(tmp_path, encoding="gbk")
        await printer.open()
        await printer.print_job("a", "第一张\n".encode("gbk"))
        await printer.print_job("b", "第二张\n".encode("gbk"))
        await printer.close()
        return printer

    printer = asyncio.run(scenario())
    assert printer.jobs == 2 and printer.last is not None and printer.last.lines == ["第二张"]


def test_job_names_cannot_leave_the_output_directory(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with MockPrinter(tmp_path / "out") as printer:
            await printer.print_job("../../etc/passwd", b"x\n")

    asyncio.run(scenario())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_.._etc_passwd.bin",
        "_.._etc_passwd.png",
        "_.._etc_passwd.txt",
    ]
    assert job_file_stem("..") == "job" and "/" not in job_file_stem("a/b\\c")


def test_printing_before_open_is_a_device_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="open"):
        asyncio.run(MockPrinter(tmp_path).print_job("x", b"x\n"))


def test_paper_out_in_the_middle_of_a_sale_then_reprint_after_reload(tmp_path: Path) -> None:
    data = render_escpos(RECEIPT, PrinterProfile())
    reprint = render_escpos(dataclasses.replace(RECEIPT, reprint=True), PrinterProfile())

    async def scenario() -> tuple[list[PaperStatus], MockPrinter]:
        async with MockPrinter(tmp_path, png=False) as printer:
            seen = [await printer.paper_status()]
            printer.paper = PaperStatus.OUT  # the roll ran out while the customer paid
            seen.append(await printer.paper_status())
            with pytest.raises(DeviceError, match="paper out"):
                await printer.print_job(RECEIPT.out_trade_no, data)
            assert printer.jobs == 0 and not list(tmp_path.iterdir())
            printer.paper = PaperStatus.OK  # the cashier loads a roll and reprints
            await printer.print_job(RECEIPT.out_trade_no + "-reprint", reprint)
            return seen, printer

    seen, printer = asyncio.run(scenario())
    assert seen == [PaperStatus.OK, PaperStatus.OUT]
    assert list(printer.names) == ["POS20240501123456A1-reprint"] and printer.last is not None
    assert sum("重印 REPRINT" in line for line in printer.last.lines) == 2


def test_offline_printer_fails_jobs_and_does_not_answer_status(tmp_path: Path) -> None:
    async def scenario() -> PaperStatus:
        async with MockPrinter(tmp_path, png=False) as printer:
            printer.online = False
            with pytest.raises(DeviceError, match="offline"):
                await printer.print_job("x", b"x\n")
            return await printer.paper_status()

    assert asyncio.run(scenario()) is PaperStatus.UNKNOWN


def test_near_end_still_prints(tmp_path: Path) -> None:
    async def scenario() -> int:
        async with MockPrinter(tmp_path, png=False) as printer:
            printer.paper = PaperStatus.NEAR_END
            await printer.print_job("x", b"x\n")
            return printer.jobs

    assert asyncio.run(scenario()) == 1


def test_a_long_run_keeps_only_the_latest_job_names(tmp_path: Path) -> None:
    async def scenario() -> MockPrinter:
        async with MockPrinter(tmp_path, png=False) as printer:
            for n in range(NAMES_KEPT + 5):
                await printer.print_job(f"job{n}", b"\x1b@sale\n")
            return printer

    printer = asyncio.run(scenario())
    assert printer.jobs == NAMES_KEPT + 5
    assert list(printer.names) == [f"job{n}" for n in range(5, NAMES_KEPT + 5)]
