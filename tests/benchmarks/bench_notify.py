"""Benchmark: how fast the notification receiver answers a notification (WeChat allows 5 s).

Each POST is a signed, AES-256-GCM-sealed TRANSACTION.SUCCESS for a journal row in flight, sent
over loopback HTTP to the receiver stand-alone (uvicorn, its own journal thread); it verifies,
decrypts and commits the approval (SQLite, FULL sync) before it answers. Then every
notification is delivered again, as WeChat's duplicates are.
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
from cryptography.hazmat.primitives.asymmetric import rsa

from hw_mocks.wechat_sandbox import notify
from hw_mocks.wechat_sandbox.keys import PLATFORM_PRIVATE, load_or_create
from pos_terminal.journal import Journal, Method, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import load_merchant_json
from tests.notify_receiver import receiver_thread, signed_headers


def signed_post(
    http: httpx.Client, url: str, body: bytes, key: rsa.RSAPrivateKey, serial: str
) -> tuple[int, float]:
    """One delivery; returns the status and the round trip in ms."""
    headers = signed_headers(key, serial, body)
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
                {
                    "mchid": creds.mchid,
                    "appid": creds.appid,
                    "out_trade_no": n,
                    "transaction_id": f"4200{i:024d}",
                    "trade_state": "SUCCESS",
                    "amount": {"total": 1000},
                },
                event_id=f"EV-{i}",
                at=time.time(),
            )
            for i, n in enumerate(numbers)
        ]
        with (
            receiver_thread(creds, work / "journal.sqlite") as receiver,
            httpx.Client(timeout=10) as http,
        ):
            first = [
                signed_post(http, receiver.url, b, platform, keys.public_key_id) for b in bodies
            ]
            again = [
                signed_post(http, receiver.url, b, platform, keys.public_key_id) for b in bodies
            ]
            accepted, refused = receiver.server.accepted, receiver.server.refused
            approved = receiver.journal(
                lambda j: sum(row.state is RowState.APPROVED for row in j.rows())
            )
    for label, results in (("first delivery (approves)", first), ("duplicate (no change)", again)):
        times = sorted(ms for _, ms in results)
        statuses = {status for status, _ in results}
        p99 = times[int(len(times) * 0.99) - 1]
        print(
            f"notify-server, {label}: median {statistics.median(times):.1f} ms, "
            f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms (n={len(times)}, HTTP {sorted(statuses)})"
        )
    print(f"notify-server: {accepted} accepted, {refused} refused, {approved} rows approved")


if __name__ == "__main__":
    main()
