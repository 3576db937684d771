"""The crash test's child: a terminal ringing up scripted sales until it is killed.

`python -m tests.crash_terminal WORK_DIR SANDBOX_URL SEED [--recover-only]`. Each sale gets a
unique amount from a counter file, so the parent can tell one customer's sale from another's.
Some sales are refunded right after. With --recover-only it starts (which resolves the
journal), prints `recovered`, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from pathlib import Path

from hw_mocks.customer import Wallet
from pos_terminal.machine import Phase
from pos_terminal.ports import Key
from tests.flow_harness import Harness, flow_config, running

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


REVERSE_MIN_DELAY_S = 1.0  # above the longest late delivery of the crash test


async def main(work: Path, sandbox_url: str, seed: int, recover_only: bool) -> None:
    config = flow_config(
        work,
        sandbox_url=sandbox_url,
        merchant_json=work / "sandbox" / "merchant.json",
        deadline=1.0,
        reverse_min_delay=REVERSE_MIN_DELAY_S,
    )
    rng = random.Random(seed)
    async with running(config, sandbox_url=sandbox_url) as h:
        print("recovered" if recover_only else "ready", flush=True)
        if recover_only:
            return
        while True:
            amount = next_amount(work / "counter")
            await rng.choice([code_sale, qr_sale])(h, rng, amount)
            await h.until(lambda s: s.phase in (Phase.APPROVED, Phase.DECLINED))
            await maybe_refund(h, rng)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("sandbox_url")
    parser.add_argument("seed", type=int)
    parser.add_argument("--recover-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.work, args.sandbox_url, args.seed, args.recover_only))
