"""The sandbox's notifications over real HTTP: into our receiver, or a scripted one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from hw_mocks.wechat_sandbox import NotifySettings, WeChatSandbox
from hw_mocks.wechat_sandbox.keys import load_or_create
from pos_terminal.journal import Journal, Method, RowState
from pos_terminal.journal_refunds import RefundBook, RefundState
from pos_terminal.notify_server import certificate_refresh
from pos_terminal.payments.wechat import load_merchant_json
from pos_terminal.payments.wechat_keys import PlatformKeys, looks_like_certificate_serial
from tests.conftest import PUBLIC_KEY_ONLY, SWITCHING
from tests.flow_harness import flow_config, running
from tests.helpers import wait_for
from tests.notify_receiver import Receiver, free_port, receiver_thread
from tests.test_wechat_sandbox import Raw

NATIVE = "/v3/pay/transactions/native"
# WeChat's published retry spacing after a failed delivery: 15 s, 15 s, 30 s, 3 min, 10 min,
# 20 min, 30 min x3, 1 h, 3 h x3, 6 h x2, then it gives up
WECHAT_RETRIES_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, *[10800] * 3, *[21600] * 2)
REFUNDS = "/v3/refund/domestic/refunds"
StartSandbox = Callable[..., Raw]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def notifying(start_sandbox: Callable[..., WeChatSandbox], http: httpx.Client) -> StartSandbox:
    """Start a sandbox that notifies, with the given key modes and NotifySettings options; on
    real time, so refunds end by themselves."""

    def start(
        key_modes: tuple[str, ...] = PUBLIC_KEY_ONLY, refund_delay_s: float = 0.2, **options: Any
    ) -> Raw:
        settings = NotifySettings(**{"time_scale": 0.001, **options})
        box = start_sandbox(
            notify=settings,
            refund_delay_s=refund_delay_s,
            refund_interval_s=0,
            clock=time.time,
            key_modes=key_modes,
            allow_loopback_notify=True,  # the receivers here listen on 127.0.0.1
        )
        return Raw(box, time.time, http)

    return start


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def receiver(sandbox_state_dir: Path, journal_path: Path) -> Iterator[Receiver]:
    load_or_create(sandbox_state_dir)  # the session's merchant, made on first use
    creds = load_merchant_json(sandbox_state_dir / "merchant.json")
    with receiver_thread(creds, journal_path) as server:
        yield server


class Scripted:
    """A notify_url that answers each POST as scripted: a status, or ("sleep", s, status)."""

    def __init__(self, script: list[Any], then: int = 204) -> None:
        self.script, self.then = list(script), then
        self.arrivals: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.arrivals.append(time.monotonic())
                step = outer.script.pop(0) if outer.script else outer.then
                if isinstance(step, tuple):
                    time.sleep(step[1])
                    step = step[2]
                self.send_response(step)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/notify"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(script: list[Any], then: int = 204) -> Scripted:
        made.append(Scripted(script, then))
        return made[-1]

    yield make
    for one in made:
        one.close()


def paid_native(raw: Raw, out_trade_no: str, notify_url: str, total: int = 1234) -> None:
    amount = {"total": total, "currency": "CNY"}
    body = raw.native(out_trade_no=out_trade_no, notify_url=notify_url, amount=amount)
    answer = raw.send("POST", NATIVE, body)
    assert answer.status_code == 200, answer.text
    paid = raw.http.post(
        raw.sandbox.base_url + "/sandbox/scan", json={"code_url": answer.json()["code_url"]}
    )
    assert paid.status_code == 200, paid.text


def refund(raw: Raw, out_trade_no: str, number: str, fen: int, total: int, url: str) -> None:
    body = {
        "out_trade_no": out_trade_no,
        "out_refund_no": number,
        "notify_url": url,
        "amount": {"refund": fen, "total": total, "currency": "CNY"},
    }
    answer = raw.send("POST", REFUNDS, body)
    assert answer.status_code == 200, answer.text


def journal_sale(receiver: Receiver, out_trade_no: str, amount_fen: int = 1234) -> None:
    """A PENDING sale, written through the receiver: the journal keeps one writer."""
    receiver.journal(
        lambda j: j.begin_sale(
            method=Method.WECHAT_NATIVE,
            amount_fen=amount_fen,
            out_trade_no=out_trade_no,
            masked_code=None,
            store_id="S1",
            terminal_id="T1",
            now=datetime.now().astimezone(),
        )
    )


def read_journal(path: Path, out_trade_no: str) -> tuple[RowState, int, list[RefundState]]:
    """The sale's state, how many times it was approved, and its refunds' states."""
    journal = Journal(path)
    journal.open()
    try:
        row = journal.by_out_trade_no(out_trade_no)
        assert row is not None
        approvals = sum(1 for e in journal.events(row.id) if e[1] == "APPROVED")
        refunds = [r.state for r in RefundBook(journal).of_sale(out_trade_no)]
        return row.state, approvals, refunds
    finally:
        journal.close()


def outbox(raw: Raw) -> list[dict[str, Any]]:
    answer = raw.http.get(raw.sandbox.base_url + "/sandbox/notifications").json()
    assert answer["enabled"] is True
    return list(answer["notifications"])


def settled(raw: Raw, count: int) -> list[dict[str, Any]]:
    """Wait until `count` notifications exist and none is pending or owes a duplicate."""

    def done() -> bool:
        items = outbox(raw)
        return len(items) >= count and all(i["state"] != "pending" for i in items)

    wait_for(done)
    return outbox(raw)


def test_a_paid_qr_is_notified_once_probed_and_duplicated_and_approved_once(
    notifying: StartSandbox, receiver: Receiver, journal_path: Path
) -> None:
    raw = notifying(probe_rate=1.0, duplicate_rate=1.0)
    journal_sale(receiver, "T0001NOTE0001")
    paid_native(raw, "T0001NOTE0001", receiver.url)
    wait_for(lambda: len(outbox(raw)[0]["attempts"]) == 3)  # probe, delivery, duplicate
    [item] = outbox(raw)
    assert item["event_type"] == "TRANSACTION.SUCCESS" and item["state"] == "delivered"
    kinds = [(a["kind"], a["status"]) for a in item["attempts"]]
    assert kinds == [("probe", 400), ("delivery", 204), ("duplicate", 204)]
    assert read_journal(journal_path, "T0001NOTE0001") == (RowState.APPROVED, 1, [])
    assert (receiver.server.accepted, receiver.server.refused) == (2, 1)


def test_payment_code_orders_are_never_notified(
    notifying: StartSandbox, receiver: Receiver
) -> None:
    raw = notifying()
    code = raw.http.post(
        raw.sandbox.base_url + "/sandbox/payment-codes", json={"scenario": "paid"}
    ).json()["auth_code"]
    body = raw.codepay(out_trade_no="T0001NOTE0002", payer={"auth_code": code})
    assert raw.send("POST", "/v3/pay/transactions/codepay", body).status_code == 200
    paid_native(raw, "T0001NOTE0003", receiver.url)  # notified at once, after the code sale
    assert [i["subject"] for i in settled(raw, 1)] == ["T0001NOTE0003"]


def test_refund_endings_are_notified_and_end_the_journal_refunds(
    notifying: StartSandbox, receiver: Receiver, journal_path: Path
) -> None:
    raw = notifying()
    journal_sale(receiver, "T0001NOTE0004", 10000)
    paid_native(raw, "T0001NOTE0004", receiver.url, total=10000)
    wait_for(lambda: read_journal(journal_path, "T0001NOTE0004")[0] is RowState.APPROVED)
    now = datetime.now().astimezone()
    for number, fen in (("RNOTE0001", 4005), ("RNOTE0002", 4006), ("RNOTE0003", 1000)):

        def processing(journal: Journal, number: str = number, fen: int = fen) -> None:
            book = RefundBook(journal)
            row = book.begin(
                out_trade_no="T0001NOTE0004",
                out_refund_no=number,
                amount_fen=fen,
                reason="",
                now=now,
            )
            book.transition(row.id, RefundState.PROCESSING, now=now)

        receiver.journal(processing)
        refund(raw, "T0001NOTE0004", number, fen, 10000, receiver.url)
    items = settled(raw, 4)
    assert sorted(i["event_type"] for i in items) == [
        "REFUND.ABNORMAL",
        "REFUND.CLOSED",
        "REFUND.SUCCESS",
        "TRANSACTION.SUCCESS",
    ]
    # the refunds ended without anyone querying them: the notifier settles them when due
    assert read_journal(journal_path, "T0001NOTE0004")[2] == [
        RefundState.ABNORMAL,
        RefundState.CLOSED,
        RefundState.SUCCESS,
    ]


def test_during_the_key_switch_the_receiver_learns_the_certificate_and_accepts(
    notifying: StartSandbox, sandbox_state_dir: Path, journal_path: Path
) -> None:
    raw = notifying(SWITCHING, gray_rate=1.0)  # every notification signed by the certificate
    creds = load_merchant_json(sandbox_state_dir / "merchant.json")
    keys = PlatformKeys.from_credentials(creds)
    refresh = certificate_refresh(creds, [raw.sandbox.base_url], keys)
    with receiver_thread(creds, journal_path, keys=keys, refresh=refresh) as receiver:
        journal_sale(receiver, "T0001NOTE0008")
        paid_native(raw, "T0001NOTE0008", receiver.url)
        [item] = settled(raw, 1)
    [attempt] = item["attempts"]
    assert attempt["status"] == 204 and looks_like_certificate_serial(attempt["serial"])
    assert attempt["serial"] in keys
    assert read_journal(journal_path, "T0001NOTE0008") == (RowState.APPROVED, 1, [])


@pytest.mark.slow
def test_the_terminal_receives_its_notifications_and_a_stand_alone_receiver_takes_over(
    notifying: StartSandbox, sandbox_state_dir: Path, tmp_path: Path, journal_path: Path
) -> None:
    """The terminal's own receiver takes the payment's notification while the terminal polls
    too (one approval); a refund it left PROCESSING when it stopped is ended by REFUND.SUCCESS
    at the stand-alone receiver started on the same journal and port once it had stopped."""
    raw = notifying(refund_delay_s=2.0)  # the refund ends after the terminal has stopped
    port = free_port()
    config = flow_config(
        tmp_path,
        sandbox_url=raw.sandbox.base_url,
        merchant_json=raw.sandbox.merchant_json,
        notify_port=port,
    )
    assert config.journal.path == str(journal_path)
    config = replace(config, payment=replace(config.payment, refund_wait_s=0, refund_follow_s=3600))

    async def at_the_till() -> tuple[str, RefundState]:
        async with running(config, sandbox_url=raw.sandbox.base_url) as h:
            receiver = h.terminal.notify
            assert receiver is not None and receiver.url == config.wechat.notify_url
            await h.ring_up("2500")
            assert await h.customer.pay_qr(await h.show_qr())
            sale = (await h.result()).last_sale
            assert sale is not None
            while receiver.accepted < 1:
                await asyncio.sleep(0.02)
            row = await h.terminal.runtime.refunds.refund(sale.out_trade_no, 500)
            return sale.out_trade_no, row.state

    sale, state_at_stop = asyncio.run(at_the_till())
    assert state_at_stop is RefundState.PROCESSING
    creds = load_merchant_json(sandbox_state_dir / "merchant.json")
    with receiver_thread(creds, journal_path, port=port) as stand_alone:
        wait_for(lambda: read_journal(journal_path, sale)[2] == [RefundState.SUCCESS])
        assert stand_alone.server.accepted == 1
    assert read_journal(journal_path, sale)[:2] == (RowState.APPROVED, 1)
    assert sorted(i["event_type"] for i in settled(raw, 2)) == [
        "REFUND.SUCCESS",
        "TRANSACTION.SUCCESS",
    ]


@pytest.mark.slow
def test_a_refund_due_after_a_sandbox_restart_still_ends_and_is_notified(
    tmp_path: Path, http: httpx.Client, scripted: Callable[..., Scripted]
) -> None:
    target = scripted([])
    options: dict[str, Any] = {
        "persist": True,
        "notify": NotifySettings(time_scale=0.001),
        "refund_interval_s": 0,
        "allow_loopback_notify": True,
    }
    first = WeChatSandbox(tmp_path / "sb", refund_delay_s=1.0, **options)
    first.start()
    try:
        raw = Raw(first, time.time, http)
        paid_native(raw, "T0001NOTE0009", target.url)
        refund(raw, "T0001NOTE0009", "RNOTE0009", 100, 1234, target.url)
    finally:
        first.stop()  # the refund is still PROCESSING on disk
    second = WeChatSandbox(tmp_path / "sb", refund_delay_s=1.0, **options)
    second.start()
    try:
        wait_for(lambda: [i["event_type"] for i in second.notifications()] == ["REFUND.SUCCESS"])
    finally:
        second.stop()


def test_failed_deliveries_are_retried_on_the_official_schedule(
    notifying: StartSandbox, scripted: Callable[..., Scripted]
) -> None:
    raw = notifying(time_scale=0.01)
    target = scripted([500, 503, 404])
    paid_native(raw, "T0001NOTE0005", target.url)
    [item] = settled(raw, 1)
    assert item["state"] == "delivered" and item["failures"] == 3
    assert [a["status"] for a in item["attempts"]] == [500, 503, 404, 204]
    gaps = [later - earlier for earlier, later in pairwise(target.arrivals)]
    for gap, step in zip(gaps, WECHAT_RETRIES_S, strict=False):
        assert gap >= step * 0.01 * 0.9, (gaps, WECHAT_RETRIES_S[:3])  # never sooner


def test_a_slow_answer_is_a_failure_and_retried(
    notifying: StartSandbox, scripted: Callable[..., Scripted]
) -> None:
    raw = notifying(answer_timeout_s=0.2)
    target = scripted([("sleep", 0.5, 204)])
    paid_native(raw, "T0001NOTE0006", target.url)
    [item] = settled(raw, 1)
    first, second = item["attempts"]
    assert first["status"] is None and "Timeout" in first["error"]
    assert second["status"] == 204 and item["state"] == "delivered"


@pytest.mark.slow
def test_delivery_gives_up_after_the_last_retry(
    notifying: StartSandbox, scripted: Callable[..., Scripted]
) -> None:
    raw = notifying(time_scale=0.00001)  # WeChat's 24 h of retries in under a second
    target = scripted([], then=500)
    paid_native(raw, "T0001NOTE0007", target.url)
    [item] = settled(raw, 1)
    assert item["state"] == "given_up"
    assert len(item["attempts"]) == 1 + len(WECHAT_RETRIES_S) == len(target.arrivals)


def test_notifications_are_off_unless_asked_for(sandbox: WeChatSandbox) -> None:
    answer = httpx.get(sandbox.base_url + "/sandbox/notifications", timeout=5).json()
    assert answer == {"enabled": False, "notifications": []}


@pytest.mark.parametrize(
    "options",
    [{"probe_rate": 1.5}, {"duplicate_rate": -0.1}, {"gray_rate": 2}, {"time_scale": 0}],
)
def test_bad_notify_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        NotifySettings(**options)
