"""Garbage from the payment host: every answer gives a typed error and leaves the journal sane.

A loopback HTTP server answers with what hypothesis draws (any status, garbled or half-valid
JSON, wrong types, signed with the right key, the wrong key, or not at all); the real client and
the real recovery policy talk to it over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_terminal.business_day import BusinessDay
from pos_terminal.clock import SystemClock
from pos_terminal.config import PaymentConfig
from pos_terminal.journal import Journal, JournalWorker, Method, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatPayClient, WeChatPayError, load_merchant_json
from pos_terminal.payments.wechat_settle import Settler
from tests.helpers import sandbox_merchant

ORDER = "T0001GARBAGE0001"


class Reply:
    def __init__(self) -> None:
        self.status, self.body, self.signer = 200, b"{}", "platform"
        self.script: list[tuple[int, bytes]] = []  # answers to give first, one per request


def _handler(reply: Reply, platform_key: object, key_id: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer()

        def _answer(self) -> None:
            status, body = reply.script.pop(0) if reply.script else (reply.status, reply.body)
            self.send_response(status)
            if reply.signer != "none":
                ts, nonce = str(int(time.time())), wechat_sign.new_nonce()
                message = wechat_sign.response_message(ts, nonce, body)
                key = (
                    platform_key
                    if reply.signer == "platform"
                    else wechat_sign.generate_private_key()
                )
                self.send_header("Wechatpay-Timestamp", ts)
                self.send_header("Wechatpay-Nonce", nonce)
                self.send_header("Wechatpay-Serial", key_id)
                self.send_header("Wechatpay-Signature", wechat_sign.sign(key, message))  # type: ignore[arg-type]
                self.send_header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def garbage_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Reply]]:
    state = tmp_path_factory.mktemp("garbage")
    merchant_json, platform_key = sandbox_merchant(state)
    key_id = load_merchant_json(merchant_json).public_key_id
    reply = Reply()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reply, platform_key, key_id))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", merchant_json, reply
    server.shutdown()


async def resolve_once(
    url: str, merchant_json: Path, tmp_path: Path, timeout_s: float = 0.3
) -> RowState:
    """Journal a Native sale left in doubt, resolve it against `url`, return its state."""
    journal = Journal(tmp_path / f"j{time.monotonic_ns()}.sqlite")
    worker = JournalWorker(journal)
    await worker(lambda j: j.open())
    settings_ = PaymentConfig(reverse_min_delay_s=0.0, retry_backoff_s=0.01)
    try:
        async with WeChatPayClient(load_merchant_json(merchant_json), base_urls=[url]) as client:
            clock = SystemClock()
            settler = Settler(client, worker, clock, settings_, BusinessDay(clock.tz))
            row = await worker(
                lambda j: j.begin_sale(
                    method=Method.WECHAT_NATIVE,
                    amount_fen=100,
                    out_trade_no=ORDER,
                    masked_code=None,
                    store_id="S1",
                    terminal_id="T1",
                    now=datetime.now().astimezone(),
                )
            )
            try:
                await asyncio.wait_for(settler.resolve(row), timeout_s)
            except WeChatPayError:
                pass  # typed: recovery retries later
            except TimeoutError:
                pass  # the policy keeps retrying a close the host never acknowledges
            return (await worker(lambda j: j.get(row.id))).state
    finally:
        await worker(lambda j: j.close())
        worker.shutdown()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
half_valid = st.fixed_dictionaries(
    {},
    optional={
        "out_trade_no": st.sampled_from([ORDER, "OTHER", 7]),
        "trade_state": st.sampled_from(["SUCCESS", "NOTPAY", "CLOSED", "bogus", None, 3]),
        "transaction_id": st.text(max_size=30) | st.integers(),
        "amount": json_values,
        "code": st.sampled_from(["SYSTEM_ERROR", "ORDERNOTEXIST", "PARAM_ERROR", 5]),
        "message": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    half_valid.map(lambda v: json.dumps(v).encode()),
)


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    status=st.sampled_from([200, 202, 204, 400, 403, 404, 429, 500, 502]),
    body=bodies,
    signer=st.sampled_from(["platform", "stranger", "none"]),
)
def test_any_answer_is_a_result_or_a_typed_error_and_the_row_stays_sane(
    garbage_host: tuple[str, Path, Reply], tmp_path: Path, status: int, body: bytes, signer: str
) -> None:
    url, merchant_json, reply = garbage_host
    reply.status, reply.body, reply.signer = status, body, signer

    state = asyncio.run(resolve_once(url, merchant_json, tmp_path))
    assert state in outcomes(status, body, signer), (status, body, signer)


def outcomes(status: int, body: bytes, signer: str) -> set[RowState]:
    """Where a Native row in doubt may end when every request gets this one answer, read from
    the answer alone: only a signed, well-formed verdict on our order moves the row."""
    if signer == "stranger" or (signer == "none" and status < 300):
        return {RowState.PENDING}  # a verdict WeChat did not sign changes nothing
    # an unsigned error answer is taken as it is (WeChat's gateway does not sign every error)
    try:
        answer = json.loads(body)
    except ValueError:
        return {RowState.PENDING}
    if not isinstance(answer, dict):
        return {RowState.PENDING}
    malformed = {RowState.PENDING}  # a field of the wrong type makes the answer unusable
    if status >= 400 and answer.get("code") == "ORDERNOTEXIST":
        return {RowState.CLOSED} | malformed  # no such order, and old enough: never created
    if status == 200 and answer.get("out_trade_no") == ORDER:
        if answer.get("trade_state") == "CLOSED":
            return {RowState.CLOSED} | malformed
        if answer.get("trade_state") == "SUCCESS":
            # paid, but naming no merchant, app or our amount: never approved
            return {RowState.EXCEPTION} | malformed
    return {RowState.PENDING}


def test_a_close_answered_orderpaid_is_approved_even_when_queries_fail_for_a_while(
    garbage_host: tuple[str, Path, Reply], tmp_path: Path
) -> None:
    url, merchant_json, reply = garbage_host
    merchant = json.loads(merchant_json.read_text(encoding="utf-8"))
    ours = {"out_trade_no": ORDER, "mchid": merchant["mchid"], "appid": merchant["appid"]}
    unpaid = {**ours, "trade_state": "NOTPAY", "amount": {"total": 100}}
    paid = {**ours, "trade_state": "SUCCESS", "transaction_id": "4" * 28, "amount": {"total": 100}}
    error = json.dumps({"code": "SYSTEM_ERROR", "message": "busy"}).encode()
    reply.script = [
        (200, json.dumps(unpaid).encode()),  # query
        (400, json.dumps({"code": "ORDERPAID", "message": "paid"}).encode()),  # close
        *[(500, error)] * 5,  # more failed queries than an unpaid close waits for
        (200, json.dumps(paid).encode()),
    ]
    reply.status, reply.body, reply.signer = 500, error, "platform"
    assert asyncio.run(resolve_once(url, merchant_json, tmp_path, 5)) is RowState.APPROVED


@pytest.mark.parametrize(
    ("status", "fields", "signer", "expected"),
    [
        (200, {"trade_state": "SUCCESS", "amount": {"total": 100}}, "platform", "APPROVED"),
        (200, {"trade_state": "SUCCESS", "amount": {"total": 99}}, "platform", "EXCEPTION"),
        (200, {"trade_state": "SUCCESS", "amount": {"total": 100}}, "stranger", "PENDING"),
        (200, {"trade_state": "CLOSED", "amount": {"total": 100}}, "platform", "CLOSED"),
        (404, {"code": "ORDER_NOT_EXIST", "message": "no such order"}, "platform", "CLOSED"),
        (200, {"trade_state": "CLOSED", "amount": {"total": 100}}, "none", "PENDING"),
        (404, {"code": "ORDER_NOT_EXIST", "message": "no such order"}, "stranger", "PENDING"),
    ],
)
def test_a_well_formed_verdict_ends_the_row_as_it_says_only_when_signed(
    garbage_host: tuple[str, Path, Reply],
    tmp_path: Path,
    status: int,
    fields: dict[str, object],
    signer: str,
    expected: str,
) -> None:
    url, merchant_json, reply = garbage_host
    merchant = json.loads(merchant_json.read_text(encoding="utf-8"))
    ours = {"out_trade_no": ORDER, "mchid": merchant["mchid"], "appid": merchant["appid"]}
    if fields["trade_state" if "trade_state" in fields else "code"] == "SUCCESS":
        ours["transaction_id"] = "4" * 28
    body = fields if status >= 400 else {**ours, **fields}
    reply.script = []
    reply.status, reply.body, reply.signer = status, json.dumps(body).encode(), signer
    assert asyncio.run(resolve_once(url, merchant_json, tmp_path)) is RowState(expected)
