"""The crash test's child: a terminal ringing up scripted sales until it is killed.

`python -m tests.crash_terminal WORK_DIR SANDBOX_URL SEED [--recover-only]`. Each sale gets a
unique amount from a counter file, so the parent can tell one customer's sale from another's.
Some sales are refunded right after. With --recover-only it starts (which resolves the
journal), prints `recovered`, and exits.

`... --scenario NAME (--trace | --kill-at POINT)` starts (recovering the journal), prints
`ready`, waits for `go` on stdin while the parent checks the journal, then rings up one sale of
that scenario: with --trace it prints `point NAME` for each step boundary reached (see
tests/kill_points.py) and `done`; with --kill-at it dies by SIGKILL at that boundary, or prints
`survived` when the sale never reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from hw_mocks.customer import Wallet
from pos_terminal.machine import Phase
from pos_terminal.ports import Key
from tests.flow_harness import Harness, flow_config, running
from tests.kill_points import KillPoints

BASE_AMOUNT_FEN = 10_000


def next_amount(counter: Path) -> int:
    """A fen amount no earlier sale used, made durable before the sale starts.

    Written to a new file and renamed over the old one: a kill mid-write must never leave the
    counter empty (it once did, and every later child died at start).
    """
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    fresh = counter.with_suffix(".new")
    with open(fresh, "w") as f:
        f.write(str(n))
        f.flush()
        os.fsync(f.fileno())
    os.replace(fresh, counter)
    return BASE_AMOUNT_FEN + n


async def maybe_refund(h: Harness, rng: random.Random) -> None:
    """Now and then the customer comes back: refund part or all of the sale just made."""
    sale = h.terminal.runtime.state.last_sale
    if h.terminal.runtime.state.phase is Phase.APPROVED and sale and rng.random() < 0.3:
        amount = rng.choice([sale.amount_fen, rng.randint(1, sale.amount_fen)])
        await h.terminal.runtime.refunds.refund(sale.out_trade_no, amount, "crash test")


async def code_sale(h: Harness, rng: random.Random, amount: int) -> None:
    wallet = rng.choice([Wallet.PAID, Wallet.PAID, Wallet.SLOW, Wallet.NEVER, Wallet.NOT_ENOUGH])
    await h.ring_up(str(amount))
    h.scanner.scan(await h.customer.present_code(wallet, delay_s=rng.uniform(0.05, 0.6)))
    if rng.random() < 0.2:
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        h.keypad.press(Key.CANCEL)
    await h.result()


async def qr_sale(h: Harness, rng: random.Random, amount: int) -> None:
    await h.ring_up(str(amount))
    code_url = await h.show_qr()
    await asyncio.sleep(rng.uniform(0.0, 0.3))
    if rng.random() < 0.7:
        await h.customer.pay_qr(code_url)
    if rng.random() < 0.5:
        h.keypad.press(Key.CANCEL)
    await h.result()


async def paid_by_code(h: Harness, amount: int) -> None:
    await h.ring_up(str(amount))
    h.scanner.scan(await h.customer.present_code(Wallet.PAID))
    await h.result()


async def paid_by_qr(h: Harness, amount: int) -> None:
    await h.ring_up(str(amount))
    assert await h.customer.pay_qr(await h.show_qr())
    await h.result()


async def reversed_at_the_deadline(h: Harness, amount: int) -> None:
    await h.ring_up(str(amount))
    h.scanner.scan(await h.customer.present_code(Wallet.NEVER))
    await h.result()


async def closed_by_cancel(h: Harness, amount: int) -> None:
    await h.ring_up(str(amount))
    await h.show_qr()
    h.keypad.press(Key.CANCEL)
    await h.result()


async def paid_then_refunded(h: Harness, amount: int) -> None:
    await paid_by_code(h, amount)
    sale = h.terminal.runtime.state.last_sale
    assert sale is not None
    await h.terminal.runtime.refunds.refund(sale.out_trade_no, amount, "crash test")


SCENARIOS: dict[str, Callable[[Harness, int], Awaitable[None]]] = {
    "code": paid_by_code,
    "qr": paid_by_qr,
    "reverse": reversed_at_the_deadline,
    "close": closed_by_cancel,
    "refund": paid_then_refunded,
}
SETTLE_S = 0.5  # after the sale: its receipt prints, a refund's end is asked


REVERSE_MIN_DELAY_S = 1.0  # above the longest late delivery of the crash test


async def one_scenario(h: Harness, work: Path, name: str, kill_at: str | None) -> None:
    """Ring up one sale of scenario `name`, killed at `kill_at` or tracing every boundary."""
    points = KillPoints(report=lambda point: print(f"point {point}", flush=True))
    points.install(h.terminal.runtime.payments.settler.client, h.terminal.runtime.journal)
    go = await asyncio.to_thread(sys.stdin.readline)
    assert go.strip() == "go", go
    if kill_at is not None:
        points.arm(kill_at)
    await SCENARIOS[name](h, next_amount(work / "counter"))
    await asyncio.sleep(SETTLE_S)
    print("done" if kill_at is None else "survived", flush=True)


async def main(
    work: Path,
    sandbox_url: str,
    seed: int,
    recover_only: bool,
    scenario: str | None = None,
    kill_at: str | None = None,
) -> None:
    config = flow_config(
        work,
        sandbox_url=sandbox_url,
        merchant_json=work / "sandbox" / "merchant.json",
        deadline=1.0,
        # a killed scenario leaves no request on the wire: the bound on late delivery is moot
        reverse_min_delay=REVERSE_MIN_DELAY_S if scenario is None else 0.3,
    )
    rng = random.Random(seed)
    async with running(config, sandbox_url=sandbox_url) as h:
        print("recovered" if recover_only else "ready", flush=True)
        if recover_only:
            return
        if scenario is not None:
            return await one_scenario(h, work, scenario, kill_at)
        while True:
            amount = next_amount(work / "counter")
            await rng.choice([code_sale, qr_sale])(h, rng, amount)
            await h.until(lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED, Phase.CANCELLED))
            await maybe_refund(h, rng)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("sandbox_url")
    parser.add_argument("seed", type=int)
    parser.add_argument("--recover-only", action="store_true")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--trace", action="store_true")
    mode.add_argument("--kill-at")
    args = parser.parse_args()
    # to the parent's child.log: when a round fails, its tail says what the terminal was doing
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(
        main(args.work, args.sandbox_url, args.seed, args.recover_only, args.scenario, args.kill_at)
    )
