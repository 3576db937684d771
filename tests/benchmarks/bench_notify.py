"""Benchmark: how fast `notify-server` answers a notification (WeChat allows 5 s).

Each POST is a signed, AES-256-GCM-sealed TRANSACTION.SUCCESS for a journal row in flight, sent
over loopback HTTP; the receiver verifies, decrypts and commits the approval (SQLite, FULL sync)
before it answers. Then every notification is delivered again, as WeChat's duplicates are.
Run: `python -m tests.benchmarks.bench_notify [--count N]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from hw_mocks.wechat_sandbox import notify
from hw_mocks.wechat_sandbox.keys import PLATFORM_PRIVATE, load_or_create
from pos_terminal.journal import Journal, Method
from pos_terminal.notify_server import NotifyServer
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import load_merchant_json


def signed_post(
    http: httpx.Client, url: str, body: bytes, key: object, serial: str
) -> tuple[int, float]:
    """One delivery; returns the status and the round trip in ms."""
    timestamp, nonce = str(int(time.time())), wechat_sign.new_nonce()
    signature = wechat_sign.sign(key, wechat_sign.response_message(timestamp, nonce, body))  # type: ignore[arg-type]
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": wechat_sign.SCHEME,
    }
    started = time.perf_counter()
    status = http.post(url, content=body, headers=headers).status_code
    return status, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        keys = load_or_create(work / "sandbox")
        creds = load_merchant_json(work / "sandbox" / "merchant.json")
        platform = wechat_sign.load_private_key((work / "sandbox" / PLATFORM_PRIVATE).read_bytes())
        journal = Journal(work / "journal.sqlite")
        journal.open()
        numbers = [f"T0001BENCH{i:06d}" for i in range(count)]
        for number in numbers:
            journal.begin_sale(
                method=Method.WECHAT_NATIVE,
                amount_fen=1000,
                out_trade_no=number,
                masked_code=None,
                store_id="S1",
                terminal_id="T1",
                now=datetime.now().astimezone(),
            )
        journal.close()
        bodies = [
            notify.envelope(
                keys.apiv3_key,
                "TRANSACTION.SUCCESS",
                {"out_trade_no": n, "transaction_id": f"4200{i:024d}", "trade_state": "SUCCESS"},
                event_id=f"EV-{i}",
                at=time.time(),
            )
            for i, n in enumerate(numbers)
        ]
        server = NotifyServer(creds, work / "journal.sqlite")
        server.start()
        try:
            with httpx.Client(timeout=10) as http:
                first = [
                    signed_post(http, server.url, b, platform, keys.public_key_id) for b in bodies
                ]
                again = [
                    signed_post(http, server.url, b, platform, keys.public_key_id) for b in bodies
                ]
        finally:
            server.stop()
    for label, results in (("first delivery (approves)", first), ("duplicate (no change)", again)):
        times = sorted(ms for _, ms in results)
        statuses = {status for status, _ in results}
        p99 = times[int(len(times) * 0.99) - 1]
        print(
            f"notify-server, {label}: median {statistics.median(times):.1f} ms, "
            f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms (n={len(times)}, HTTP {sorted(statuses)})"
        )
    print(f"notify-server: {server.accepted} accepted, {server.refused} refused")


if __name__ == "__main__":
    main()
