"""Benchmarks (`make bench`): cold start to ready, and the terminal's own cost per sale.

Figures are printed, never asserted: a slow machine must not fail anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hw_mocks.customer import Wallet
from tests.flow_harness import flow_config, running, sandbox_process

ROOT = Path(__file__).parents[2]


def cold_start_s(config: Path, work: Path) -> float:
    """Seconds from process start until the headless terminal prints `ready`."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pos_terminal.cli", "run", "--headless", "--config", str(config)],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                return time.perf_counter() - started
        raise RuntimeError(f"the terminal exited with {proc.wait()} before it was ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def bench_cold_start(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "terminal.yaml"
        text = (ROOT / "config" / "terminal.yaml").read_text(encoding="utf-8")
        config.write_text(text, encoding="utf-8")
        first = cold_start_s(config, work)  # generates the sandbox keys
        times = [cold_start_s(config, work) for _ in range(runs)]
    print(f"cold start to ready, first start (sandbox generates its keys): {first * 1000:.0f} ms")
    print(
        f"cold start to ready, later starts: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={runs})"
    )


async def _sales(
    sales: int, tmp: Path, sandbox_url: str, merchant_json: Path
) -> dict[str, list[float]]:
    config = flow_config(tmp, sandbox_url=sandbox_url, merchant_json=merchant_json, qr_poll=0.05)
    figures: dict[str, list[float]] = {"code wall": [], "code cpu": [], "qr wall": [], "qr cpu": []}
    async with running(config, sandbox_url=sandbox_url) as h:
        for i in range(sales):
            code = await h.customer.present_code(Wallet.PAID)  # customer side, not timed
            wall, cpu = time.perf_counter(), time.process_time()
            await h.ring_up(str(100 + i))
            h.scanner.scan(code)
            await h.result()
            figures["code wall"].append(time.perf_counter() - wall)
            figures["code cpu"].append(time.process_time() - cpu)

            await h.ring_up(str(200 + i))
            wall, cpu = time.perf_counter(), time.process_time()
            code_url = await h.show_qr()
            wall_qr, cpu_qr = time.perf_counter() - wall, time.process_time() - cpu
            await h.customer.pay_qr(code_url)  # the customer's scan: excluded
            wall, cpu = time.perf_counter(), time.process_time()
            await h.result()
            figures["qr wall"].append(wall_qr + time.perf_counter() - wall)
            figures["qr cpu"].append(cpu_qr + time.process_time() - cpu)
    return figures


def bench_sale_overhead(sales: int) -> None:
    """The sandbox runs in its own process, so this process's CPU time is the terminal's alone."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with sandbox_process(work / "sandbox") as url:
            merchant_json = work / "sandbox" / "merchant.json"
            figures = asyncio.run(_sales(sales, work, url, merchant_json))
    print(f"per sale, n={sales} of each kind, sandbox in another process, no customer delay:")
    for name, values in figures.items():
        print(f"  {name:9s}: median {statistics.median(values) * 1000:6.1f} ms")
    note = "print rendering included; QR sale includes the poll interval (50 ms) before the result"
    print(f"  ({note})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--sales", type=int, default=20)
    args = parser.parse_args()
    bench_cold_start(args.starts)
    bench_sale_overhead(args.sales)


if __name__ == "__main__":
    main()
