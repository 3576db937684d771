"""Sandbox control: one-shot faults per request, the order clock, and orders kept on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox
from tests.test_wechat_sandbox import ROOT, Raw

QUERY_PREFIX = "/v3/pay/transactions/out-trade-no/"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def raw(sandbox: WeChatSandbox, sandbox_clock: ManualClock, http: httpx.Client) -> Raw:
    return Raw(sandbox, sandbox_clock, http)


def _post(raw: Raw, path: str, body: object) -> httpx.Response:
    return raw.http.post(raw.sandbox.base_url + path, json=body)


# ---------------------------------------------------------------- one-shot faults


def test_a_one_shot_429_hits_only_the_next_matching_request(raw: Raw) -> None:
    raw.sandbox.fault_next("POST", "/v3/pay/transactions/native", Faults(rate_limited=True))
    assert raw.send("GET", raw.query_path("N0000001")).status_code == 404  # not a match
    limited = raw.send("POST", "/v3/pay/transactions/native", raw.native())
    assert (limited.status_code, limited.json()["code"]) == (429, "FREQUENCY_LIMITED")
    raw.assert_signed(limited, error_id=268447840)
    assert raw.send("GET", raw.query_path("N0000001")).status_code == 404  # nothing was created
    assert raw.send("POST", "/v3/pay/transactions/native", raw.native()).status_code == 200
    assert raw.sandbox.pending_faults() == []


def test_a_one_shot_500_after_commit_hits_one_query_over_http(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    fault = {"method": "GET", "path": QUERY_PREFIX, "system_error_after_commit": True}
    pending = _post(raw, "/sandbox/faults/next", fault).json()["pending"]
    assert pending == [{**Faults().__dict__, **fault}]
    failed = raw.send("GET", raw.query_path("C0000001"))
    assert (failed.status_code, failed.json()["code"]) == (500, "SYSTEM_ERROR")
    assert raw.send("GET", raw.query_path("C0000001")).json()["trade_state"] == "SUCCESS"


def test_a_committed_codepay_answered_500_is_paid(raw: Raw) -> None:
    raw.sandbox.fault_next(
        "*", "/v3/pay/transactions/codepay", Faults(system_error_after_commit=True)
    )
    assert raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay()).status_code == 500
    assert raw.send("GET", raw.query_path("C0000001")).json()["trade_state"] == "SUCCESS"


def test_a_wildcard_path_drops_the_next_close_only(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/native", raw.native())
    _post(raw, "/sandbox/faults/next", {"path": QUERY_PREFIX + "*/close", "drop_connection": True})
    assert raw.send("GET", raw.query_path("N0000001")).status_code == 200  # a query: no match
    close = QUERY_PREFIX + "N0000001/close"
    with pytest.raises(httpx.HTTPError):
        raw.send("POST", close, {"mchid": raw.creds.mchid})
    assert raw.send("GET", raw.query_path("N0000001")).json()["trade_state"] == "CLOSED"
    assert raw.send("POST", close, {"mchid": raw.creds.mchid}).status_code == 204


def test_a_one_shot_delay_holds_back_one_codepay(raw: Raw) -> None:
    raw.sandbox.fault_next("POST", "/v3/pay/transactions/codepay", Faults(delay_s=0.4))
    started = time.monotonic()
    assert raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay()).status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    raw.send("GET", raw.query_path("C0000001"))
    assert time.monotonic() - started < 0.4


def test_a_held_create_takes_effect_only_after_the_hold_like_a_late_delivery(raw: Raw) -> None:
    raw.sandbox.fault_next("POST", "/v3/pay/transactions/native", Faults(hold_s=0.5))
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            raw.send("POST", "/v3/pay/transactions/native", raw.native()).status_code
        )
    )
    sender.start()
    time.sleep(0.2)
    assert raw.send("GET", raw.query_path("N0000001")).status_code == 404  # still on the wire
    sender.join(timeout=5)
    assert answers == [200]
    assert raw.send("GET", raw.query_path("N0000001")).json()["trade_state"] == "NOTPAY"


def test_a_reverse_refused_while_the_customer_pays_can_be_asked_again(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4002}))
    reverse = QUERY_PREFIX + "C0000001/reverse"
    raw.sandbox.fault_next("POST", reverse, Faults(reverse_refused_while_paying=True))
    refused = raw.send("POST", reverse, raw.body())
    assert (refused.status_code, refused.json()["code"]) == (400, "USER_PAYING")
    assert raw.send("GET", raw.query_path("C0000001")).json()["trade_state"] == "USERPAYING"
    assert raw.send("POST", reverse, raw.body()).status_code == 200
    assert raw.send("GET", raw.query_path("C0000001")).json()["trade_state"] == "REVOKED"


def test_a_contradicting_amount_is_signed_like_any_answer(raw: Raw) -> None:
    raw.sandbox.fault_next("POST", "/v3/pay/transactions/codepay", Faults(answer_amount_fen=1))
    paid = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    raw.assert_signed(paid)
    assert paid.json()["amount"]["total"] == 1
    assert raw.send("GET", raw.query_path("C0000001")).json()["amount"]["total"] == 100


def test_one_shot_faults_are_used_in_queue_order_and_beat_the_global_ones(raw: Raw) -> None:
    raw.sandbox.set_faults(Faults(sign_responses=False))
    raw.sandbox.fault_next("GET", QUERY_PREFIX, Faults(rate_limited=True))
    raw.sandbox.fault_next("GET", QUERY_PREFIX, Faults())
    assert raw.send("GET", raw.query_path("N1")).status_code == 429
    assert "Wechatpay-Signature" in raw.send("GET", raw.query_path("N1")).headers
    assert "Wechatpay-Signature" not in raw.send("GET", raw.query_path("N1")).headers


def test_the_fault_queue_is_listed_validated_and_cleared_over_http(raw: Raw) -> None:
    url = raw.sandbox.base_url + "/sandbox/faults/next"
    for bad in (
        {"delay_s": 1},
        {"path": "/sandbox/scan"},
        {"path": "/v3/x", "method": "PUT"},
        {"path": "/v3/x", "delay_s": -1},
        {"path": "/v3/x", "typo": True},
    ):
        assert raw.http.post(url, json=bad).status_code == 400, bad
    raw.http.post(url, json={"path": "/v3/x", "rate_limited": True})
    [item] = raw.http.get(url).json()["pending"]
    assert item["method"] == "*" and item["rate_limited"] is True
    assert raw.http.delete(url).json() == {"pending": []}
    with pytest.raises(ValueError, match="method"):
        raw.sandbox.fault_next("PUT", "/v3/x", Faults())


# ---------------------------------------------------------------- the order clock


def test_advancing_the_clock_over_http_settles_userpaying_and_keeps_signatures_working(
    raw: Raw,
) -> None:
    pending = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4001}))
    assert pending.status_code == 202
    before = raw.http.get(raw.sandbox.base_url + "/sandbox/clock").json()
    moved = _post(raw, "/sandbox/clock", {"advance_s": 3600}).json()
    assert moved["offset_s"] == 3600 and moved["now"] >= before["now"] + 3600
    answer = raw.send("GET", raw.query_path("C0000001"))  # request timestamp: unshifted time
    assert answer.json()["trade_state"] == "SUCCESS"
    raw.assert_signed(answer)  # answer timestamp: unshifted time too


def test_the_order_clock_runs_out_native_orders_and_the_reverse_window(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/native", raw.native())
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    raw.sandbox.advance_clock(7 * 86400 + 1)
    assert raw.send("GET", raw.query_path("N0000001")).json()["trade_state"] == "CLOSED"
    reverse = raw.send("POST", QUERY_PREFIX + "C0000001/reverse", raw.body())
    assert reverse.json()["code"] == "REVERSE_EXPIRE"


def test_wallet_codes_expire_on_the_order_clock(raw: Raw) -> None:
    code = _post(raw, "/sandbox/payment-codes", {"scenario": "paid"}).json()["auth_code"]
    _post(raw, "/sandbox/clock", {"advance_s": 61})
    answer = raw.send(
        "POST", "/v3/pay/transactions/codepay", raw.codepay(payer={"auth_code": code})
    )
    assert answer.status_code == 400 and "过期" in answer.json()["message"]


@pytest.mark.parametrize("body", [{"advance_s": -1}, {"advance_s": "1"}, {}, {"set": 1}])
def test_the_clock_only_moves_forward(raw: Raw, body: dict[str, object]) -> None:
    assert _post(raw, "/sandbox/clock", body).status_code == 400


# ---------------------------------------------------------------- orders on disk


def _copy_merchant(source: Path, state: Path) -> Path:
    """The session merchant's keys in a fresh state dir, without the cost of key generation."""
    state.mkdir()
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith("orders.sqlite"):
            (state / path.name).write_bytes(path.read_bytes())
    return state


def _orders(box: WeChatSandbox, http: httpx.Client) -> dict[str, str]:
    views = http.get(box.base_url + "/sandbox/orders").json()["orders"]
    return {o["out_trade_no"]: o["trade_state"] for o in views}


def test_a_restarted_sandbox_keeps_orders_codes_and_clock(
    sandbox_state_dir: Path, tmp_path: Path, http: httpx.Client
) -> None:
    state = _copy_merchant(sandbox_state_dir, tmp_path / "state")
    clock = ManualClock()
    with WeChatSandbox(state, clock=clock, persist=True) as first:
        raw = Raw(first, clock, http)
        raw.send("POST", "/v3/pay/transactions/native", raw.native())
        raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
        slow = raw.codepay(out_trade_no="C0000002", amount={"total": 4002})
        slow["payer"] = {"auth_code": "131111111111111111"}
        assert raw.send("POST", "/v3/pay/transactions/codepay", slow).status_code == 202
        raw.send("POST", QUERY_PREFIX + "C0000002/reverse", raw.body())
        wallet = _post(raw, "/sandbox/payment-codes", {"scenario": "paid"}).json()["auth_code"]
        paid_id = raw.send("GET", raw.query_path("C0000001")).json()["transaction_id"]
        first.advance_clock(10)
        before = _orders(first, http)
    assert before == {"N0000001": "NOTPAY", "C0000001": "SUCCESS", "C0000002": "REVOKED"}
    with WeChatSandbox(state, clock=clock, persist=True) as second:
        raw = Raw(second, clock, http)
        assert _orders(second, http) == before
        path = f"/v3/pay/transactions/id/{paid_id}?mchid={raw.creds.mchid}"
        assert raw.send("GET", path).json()["out_trade_no"] == "C0000001"
        reused = raw.codepay(out_trade_no="C0000003")
        assert "仅限使用一次" in raw.send("POST", "/v3/pay/transactions/codepay", reused).text
        again = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())  # idempotent
        assert again.json()["transaction_id"] == paid_id
        fresh = raw.codepay(out_trade_no="C0000004", payer={"auth_code": wallet})
        assert raw.send("POST", "/v3/pay/transactions/codepay", fresh).status_code == 200
        assert http.get(second.base_url + "/sandbox/clock").json()["offset_s"] == 10
        second.reset()
        assert _orders(second, http) == {}
    with WeChatSandbox(state, clock=clock, persist=True) as third:
        assert _orders(third, http) == {}


def test_without_persist_the_orders_file_is_left_alone(tmp_path: Path, http: httpx.Client) -> None:
    clock = ManualClock()
    with WeChatSandbox(tmp_path, clock=clock, persist=True) as first:
        Raw(first, clock, http).send(
            "POST", "/v3/pay/transactions/codepay", Raw(first, clock, http).codepay()
        )
    with WeChatSandbox(tmp_path, clock=clock) as memory:
        assert _orders(memory, http) == {}
    with WeChatSandbox(tmp_path, clock=clock, persist=True) as again:
        assert _orders(again, http) == {"C0000001": "SUCCESS"}


def test_orders_survive_a_killed_sandbox_process(sandbox_state_dir: Path, tmp_path: Path) -> None:
    state = _copy_merchant(sandbox_state_dir, tmp_path / "state")
    code = (
        "import sys; from pathlib import Path; from hw_mocks.wechat_sandbox import serve_forever; "
        "sys.exit(serve_forever(0, Path(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def spawn() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(state)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        return proc, url

    proc, url = spawn()
    try:
        with httpx.Client(timeout=5) as http:
            auth = http.post(url + "/sandbox/payment-codes", json={"scenario": "paid"}).json()
            raw = _RemoteRaw(url, state, http)
            body = raw.codepay(payer={"auth_code": auth["auth_code"]})
            assert raw.send("POST", "/v3/pay/transactions/codepay", body).status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    proc, url = spawn()
    try:
        with httpx.Client(timeout=5) as http:
            [order] = http.get(url + "/sandbox/orders").json()["orders"]
            assert (order["out_trade_no"], order["trade_state"]) == ("C0000001", "SUCCESS")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


class _RemoteRaw(Raw):
    """`Raw` for a sandbox in another process: only its URL and state dir are known."""

    def __init__(self, url: str, state: Path, http: httpx.Client) -> None:
        class _Box:
            base_url = url
            merchant_json = state / "merchant.json"

        super().__init__(_Box(), time.time, http)  # type: ignore[arg-type]
