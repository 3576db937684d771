"""The sandbox as a server: request authentication, signed answers, validation, control, state dir.

Requests here are built by hand (httpx + wechat_sign) so the server is tested on its own terms.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hw_mocks.wechat_sandbox import ManualClock, SandboxStateError, WeChatSandbox
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatCredentials, load_merchant_json

CODE = "130061098828009406"
GOODS = {
    "merchant_goods_id": "6901234567890",
    "goods_name": "矿泉水",
    "quantity": 1,
    "unit_price": 100,
}
ROOT = Path(__file__).resolve().parent.parent


class Raw:
    """Signed requests built by hand, with every knob a test needs to break them."""

    def __init__(self, sandbox: WeChatSandbox, clock: ManualClock, http: httpx.Client) -> None:
        self.sandbox, self.clock, self.http = sandbox, clock, http
        self.creds: WeChatCredentials = load_merchant_json(sandbox.merchant_json)

    def body(self, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"appid": self.creds.appid, "mchid": self.creds.mchid}
        return {**base, **fields}

    def native(self, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "description": "收银 sale",
            "out_trade_no": "N0000001",
            "notify_url": "https://pos.example.com/notify",
            "amount": {"total": 100, "currency": "CNY"},
        }
        return {k: v for k, v in self.body(**{**fields, **overrides}).items() if v is not ...}

    def codepay(self, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "description": "收银 sale",
            "out_trade_no": "C0000001",
            "payer": {"auth_code": CODE},
            "amount": {"total": 100},
            "scene_info": {"device_id": "T0001", "store_info": {"out_id": "SH-0001"}},
        }
        return {k: v for k, v in self.body(**{**fields, **overrides}).items() if v is not ...}

    def send(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        signed_body: bytes | None = None,
        mchid: str | None = None,
        serial: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        key: Any = None,
        authorization: str | None = None,
        wechatpay_serial: str | None = "",
    ) -> httpx.Response:
        """`wechatpay_serial` "" sends the PUB_KEY_ID, as the terminal does; None sends none."""
        body = raw if raw is not None else b"" if payload is None else json.dumps(payload).encode()
        auth = wechat_sign.Authorization(
            mchid=mchid or self.creds.mchid,
            nonce_str=nonce or wechat_sign.new_nonce(),
            timestamp=str(timestamp if timestamp is not None else int(self.clock())),
            serial_no=serial or self.creds.merchant_serial,
            signature="",
        )
        message = wechat_sign.request_message(
            method,
            path,
            auth.timestamp,
            auth.nonce_str,
            body if signed_body is None else signed_body,
        )
        signature = wechat_sign.sign(key or self.creds.merchant_private_key, message)
        # parameters deliberately in yet another order than the client and the SDKs use
        header = (
            f'{wechat_sign.SCHEME} signature="{signature}",serial_no="{auth.serial_no}",'
            f'timestamp="{auth.timestamp}",mchid="{auth.mchid}",nonce_str="{auth.nonce_str}"'
        )
        headers = {"Authorization": authorization if authorization is not None else header}
        if wechatpay_serial is not None:
            headers["Wechatpay-Serial"] = wechatpay_serial or self.creds.public_key_id
        if method == "POST":
            headers["Content-Type"] = "application/json"
        return self.http.request(
            method, self.sandbox.base_url + path, content=body or None, headers=headers
        )

    def query_path(self, out_trade_no: str) -> str:
        return f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.creds.mchid}"

    def assert_signed(self, answer: httpx.Response, *, error_id: int = 0) -> None:
        """The answer carries valid Wechatpay-* headers and a Request-ID ending in its error id."""
        wechat_sign.check_signed_message(
            answer.headers,
            answer.content,
            keys={self.creds.public_key_id: self.creds.platform_public_key},
            now=self.clock(),
        )
        assert answer.headers["Request-ID"].endswith(f"-{error_id}")
        if answer.content:
            assert answer.headers["Content-Type"].startswith("application/json")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One plain-HTTP client for the module: building one per request costs ~30 ms."""
    with httpx.Client(timeout=5, verify=False) as client:
        yield client


@pytest.fixture
def raw(sandbox: WeChatSandbox, sandbox_clock: ManualClock, http: httpx.Client) -> Raw:
    return Raw(sandbox, sandbox_clock, http)


# ---------------------------------------------------------------- authentication


def test_a_correctly_signed_request_in_any_parameter_order_is_accepted_and_the_answer_signed(
    raw: Raw,
) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native())
    assert answer.status_code == 200, answer.text
    raw.assert_signed(answer)
    assert answer.json()["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")


def test_the_signature_is_checked_over_the_raw_bytes_received(raw: Raw) -> None:
    payload = raw.native()
    spaced = json.dumps(payload, indent=2, ensure_ascii=True).encode()
    assert raw.send("POST", "/v3/pay/transactions/native", raw=spaced).status_code == 200
    compact = json.dumps(raw.native(out_trade_no="N0000002"), separators=(",", ":")).encode()
    reformatted = json.dumps(raw.native(out_trade_no="N0000002")).encode()
    answer = raw.send("POST", "/v3/pay/transactions/native", raw=reformatted, signed_body=compact)
    assert answer.status_code == 401
    err = answer.json()
    assert err["code"] == "SIGN_ERROR"
    assert err["detail"]["field"] == "signature" and err["detail"]["location"] == "authorization"
    assert err["detail"]["detail"] == {"issue": "sign not match"}
    info = err["detail"]["sign_information"]
    assert info["method"] == "POST" and info["url"] == "/v3/pay/transactions/native"
    assert info["sign_message_length"] > len(reformatted)
    assert info["truncated_sign_message"].startswith("POST\n/v3/pay/transactions/native\n")
    raw.assert_signed(answer, error_id=268443699)


@pytest.mark.parametrize(
    ("knob", "field"),
    [
        ({"mchid": "1900000109"}, "mchid"),
        ({"serial": "0" * 40}, "serial_no"),
        ({"timestamp": 1}, "timestamp"),
        ({"authorization": ""}, "authorization"),
        ({"authorization": 'Bearer mchid="1"'}, "authorization"),
    ],
)
def test_bad_request_credentials_are_401_sign_error(
    raw: Raw, knob: dict[str, Any], field: str
) -> None:
    answer = raw.send("GET", raw.query_path("N0000001"), **knob)
    assert answer.status_code == 401
    assert answer.json()["code"] == "SIGN_ERROR" and answer.json()["detail"]["field"] == field


@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("-1", 400),
        ("abc", 400),
        ("²", 400),  # a digit to str.isdigit, not to int()
        ("12, 13", 400),
        (str(64 * 1024 + 1), 413),
    ],
)
def test_a_malformed_or_oversized_content_length_is_refused_unread(
    sandbox: WeChatSandbox, length: str, status: int
) -> None:
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    head = f"POST /v3/pay/transactions/native HTTP/1.1\r\nHost: x\r\nContent-Length: {length}"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n{}")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == str(status).encode(), answer[:200]


def test_a_timestamp_within_five_minutes_is_accepted_and_beyond_refused(
    raw: Raw, sandbox_clock: ManualClock
) -> None:
    now = int(sandbox_clock())
    assert raw.send("GET", raw.query_path("N1"), timestamp=now - 299).status_code == 404
    assert raw.send("GET", raw.query_path("N1"), timestamp=now + 299).status_code == 404
    assert raw.send("GET", raw.query_path("N1"), timestamp=now - 302).status_code == 401


def test_a_key_other_than_the_registered_one_is_refused(raw: Raw) -> None:
    answer = raw.send("GET", raw.query_path("N1"), key=wechat_sign.generate_private_key())
    assert answer.status_code == 401 and answer.json()["detail"]["field"] == "signature"


def test_a_replayed_nonce_is_refused(raw: Raw) -> None:
    assert raw.send("GET", raw.query_path("N1"), nonce="SAMENONCE").status_code == 404
    assert raw.send("GET", raw.query_path("N1"), nonce="SAMENONCE").status_code == 401


def test_the_body_mchid_must_be_the_signing_merchant(raw: Raw) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native(mchid="1900000109"))
    assert answer.status_code == 401 and answer.json()["detail"]["field"] == "mchid"


def test_a_query_needs_mchid_in_the_query_string(raw: Raw) -> None:
    answer = raw.send("GET", "/v3/pay/transactions/out-trade-no/N0000001")
    assert answer.status_code == 400 and answer.json()["detail"]["location"] == "query"


# ---------------------------------------------------------------- answers


def test_every_kind_of_answer_is_signed(raw: Raw, sandbox: WeChatSandbox) -> None:
    code_url = raw.send("POST", "/v3/pay/transactions/native", raw.native()).json()["code_url"]
    raw.assert_signed(raw.send("GET", raw.query_path("N0000001")))
    missing = raw.send("GET", raw.query_path("N0000404"))
    assert missing.status_code == 404 and missing.json()["code"] == "ORDER_NOT_EXIST"
    raw.assert_signed(missing, error_id=268512771)
    close_path = "/v3/pay/transactions/out-trade-no/N0000001/close"
    closed = raw.send("POST", close_path, {"mchid": raw.creds.mchid})
    assert closed.status_code == 204 and closed.content == b""
    raw.assert_signed(closed)
    assert "Content-Type" not in closed.headers
    pending = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4001}))
    assert pending.status_code == 202 and pending.json() == {"trade_state": "USERPAYING"}
    raw.assert_signed(pending)
    assert (
        raw.http.post(sandbox.base_url + "/sandbox/scan", json={"code_url": code_url}).status_code
        == 400
    )


def test_unpaid_queries_omit_payer_transaction_id_and_success_time(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/native", raw.native(attach="till 3"))
    tx = raw.send("GET", raw.query_path("N0000001")).json()
    assert tx["trade_state"] == "NOTPAY" and tx["attach"] == "till 3"
    assert not {"payer", "transaction_id", "success_time", "bank_type"} & set(tx)
    assert tx["amount"] == {"total": 100, "currency": "CNY"}


def test_query_by_transaction_id_works_once_paid(raw: Raw) -> None:
    paid = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay()).json()
    assert paid["trade_state"] == "SUCCESS" and paid["payer"]["openid"].startswith("o")
    assert paid["success_time"].endswith("+08:00") and paid["trade_type"] == "MICROPAY"
    assert paid["amount"]["payer_total"] == 100 and paid["scene_info"] == {"device_id": "T0001"}
    transaction_id = paid["transaction_id"]
    assert len(transaction_id) == 28 and transaction_id.isdigit()
    path = f"/v3/pay/transactions/id/{transaction_id}?mchid={raw.creds.mchid}"
    assert raw.send("GET", path).json()["out_trade_no"] == "C0000001"
    unknown = f"/v3/pay/transactions/id/{'4' * 28}?mchid={raw.creds.mchid}"
    assert raw.send("GET", unknown).status_code == 404


def test_reverse_answers_appid_mchid_out_trade_no(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4002}))
    answer = raw.send("POST", "/v3/pay/transactions/out-trade-no/C0000001/reverse", raw.body())
    assert answer.status_code == 200
    assert answer.json() == {
        "appid": raw.creds.appid,
        "mchid": raw.creds.mchid,
        "out_trade_no": "C0000001",
    }
    raw.assert_signed(answer)


def test_reverse_is_refused_after_seven_days(raw: Raw, sandbox_clock: ManualClock) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    sandbox_clock.advance(7 * 86400 + 1)
    answer = raw.send("POST", "/v3/pay/transactions/out-trade-no/C0000001/reverse", raw.body())
    assert answer.status_code == 400 and answer.json()["code"] == "REVERSE_EXPIRE"


def test_unpaid_native_orders_close_by_themselves_after_seven_days(
    raw: Raw, sandbox_clock: ManualClock
) -> None:
    raw.send("POST", "/v3/pay/transactions/native", raw.native())
    sandbox_clock.advance(7 * 86400)
    assert raw.send("GET", raw.query_path("N0000001")).json()["trade_state"] == "CLOSED"


def test_closing_an_unknown_order_answers_204(raw: Raw) -> None:
    path = "/v3/pay/transactions/out-trade-no/N0000404/close"
    assert raw.send("POST", path, {"mchid": raw.creds.mchid}).status_code == 204


def test_one_number_cannot_serve_two_trade_types(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/native", raw.native(out_trade_no="X0000001"))
    answer = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(out_trade_no="X0000001"))
    assert (answer.status_code, answer.json()["code"]) == (403, "OUT_TRADE_NO_USED")


def test_unknown_api_paths_are_404(raw: Raw) -> None:
    answer = raw.send("GET", f"/v3/pay/transactions/nothing?mchid={raw.creds.mchid}")
    assert answer.status_code == 404
    raw.assert_signed(answer, error_id=268512771)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        ({"amount": {"total": 0}}, "/amount/total", 0),
        ({"amount": {"total": "100"}}, "/amount/total", "100"),
        ({"amount": {"total": True}}, "/amount/total", True),
        ({"amount": {"total": 1, "currency": "USD"}}, "/amount/currency", "USD"),
        ({"amount": ...}, "/amount", None),
        ({"description": "x" * 128}, "/description", "x" * 128),
        ({"description": None}, "/description", None),
        ({"description": "矿泉水😀"}, "/description", "矿泉水😀"),  # 4 bytes in UTF-8
        ({"attach": "𠀀"}, "/attach", "𠀀"),  # a CJK character beyond U+FFFF
        (
            {"detail": {"goods_detail": [{**GOODS, "goods_name": "🍺"}]}},
            "/detail/goods_detail/0/goods_name",
            "🍺",
        ),
        ({"out_trade_no": "N0001"}, "/out_trade_no", "N0001"),
        ({"out_trade_no": "N" * 33}, "/out_trade_no", "N" * 33),
        ({"out_trade_no": "N000000#1"}, "/out_trade_no", "N000000#1"),
        (
            {"notify_url": "https://pos.example.com/n?x=1"},
            "/notify_url",
            "https://pos.example.com/n?x=1",
        ),
        ({"time_expire": "2030-01-01 12:00:00"}, "/time_expire", "2030-01-01 12:00:00"),
        ({"time_expire": "2030-01-01T12:00:00"}, "/time_expire", "2030-01-01T12:00:00"),
        ({"time_expire": "2000-01-01T12:00:00+08:00"}, "/time_expire", "2000-01-01T12:00:00+08:00"),
        ({"extra": 1}, "/extra", 1),
        ({"scene_info": {"payer_client_ip": "1.2.3.4", "shop": 1}}, "/scene_info/shop", 1),
    ],
)
def test_native_parameters_are_validated_with_param_error_detail(
    raw: Raw, overrides: dict[str, Any], field: str, value: Any
) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native(**overrides))
    assert answer.status_code == 400, answer.text
    err = answer.json()
    assert err["code"] == "PARAM_ERROR"
    assert err["detail"]["field"] == field and err["detail"]["value"] == value
    assert err["detail"]["location"] == "body" and err["detail"]["issue"]


LOOPBACK = [
    "https://localhost/notify",
    "https://api.localhost/notify",
    "https://127.0.0.1/notify",
    "https://127.8.9.10:8443/notify",
    "https://[::1]/notify",
]
PRIVATE = [
    "https://10.1.2.3/notify",  # RFC 1918
    "https://172.16.0.9/notify",
    "https://192.168.1.20/notify",
    "https://169.254.169.254/notify",  # link-local
    "https://0.0.0.0/notify",
    "https://[fd00::1]/notify",  # unique local
]
PLAIN_HTTP = "http://pos.example.com/wechatpay/notify"
REFUNDS = "/v3/refund/domestic/refunds"


def _refund(raw: Raw, no: str, notify_url: str) -> httpx.Response:
    amount = {"refund": 1, "total": 100, "currency": "CNY"}
    body = {"out_trade_no": "C0000001", "out_refund_no": no, "amount": amount}
    return raw.send("POST", REFUNDS, {**body, "notify_url": notify_url})


@pytest.mark.parametrize("url", [PLAIN_HTTP, *LOOPBACK, *PRIVATE, "https://[::1/notify"])
def test_a_notify_url_must_be_https_to_a_public_host(raw: Raw, url: str) -> None:
    native = raw.send("POST", "/v3/pay/transactions/native", raw.native(notify_url=url))
    assert (native.status_code, native.json()["code"]) == (400, "PARAM_ERROR")
    assert native.json()["detail"]["field"] == "/notify_url"
    raw.assert_signed(native, error_id=268435461)
    assert raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay()).status_code == 200
    refund = _refund(raw, "R0000001", url)
    assert (refund.status_code, refund.json()["detail"]["field"]) == (400, "/notify_url")
    [order] = raw.http.get(raw.sandbox.base_url + "/sandbox/orders").json()["orders"]
    assert order["refunds"] == []


@pytest.mark.parametrize(
    "url", ["https://pos.example.com/wechatpay/notify", "https://101.226.103.10:8443/n"]
)
def test_a_public_https_notify_url_is_taken(raw: Raw, url: str) -> None:
    native = raw.send("POST", "/v3/pay/transactions/native", raw.native(notify_url=url))
    assert native.status_code == 200, native.text
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    assert _refund(raw, "R0000001", url).status_code == 200


def test_the_loopback_option_takes_loopback_also_over_http_and_nothing_else(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, http: httpx.Client
) -> None:
    raw = Raw(start_sandbox(allow_loopback_notify=True), sandbox_clock, http)
    native = "/v3/pay/transactions/native"
    for n, url in enumerate([*LOOPBACK, *(u.replace("https:", "http:") for u in LOOPBACK)]):
        answer = raw.send("POST", native, raw.native(out_trade_no=f"N{n:07}", notify_url=url))
        assert answer.status_code == 200, (url, answer.text)
    for url in [PLAIN_HTTP, *PRIVATE]:
        answer = raw.send("POST", native, raw.native(notify_url=url))
        assert answer.json()["detail"]["field"] == "/notify_url", url


def test_text_of_one_to_three_utf8_bytes_a_character_is_taken(raw: Raw) -> None:
    text = "好邻居便利店 ¥12.34 €ü（南京西路）"
    body = raw.native(description=text, attach=text, detail={"goods_detail": [GOODS]})
    assert raw.send("POST", "/v3/pay/transactions/native", body).status_code == 200
    paid = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(description=text))
    assert paid.status_code == 200
    amount = {"refund": 1, "total": 100, "currency": "CNY"}
    refund = {"out_trade_no": "C0000001", "out_refund_no": "R1", "amount": amount, "reason": text}
    assert raw.send("POST", REFUNDS, refund).status_code == 200
    emoji = raw.send("POST", REFUNDS, {**refund, "out_refund_no": "R2", "reason": "退货🙏"})
    assert emoji.json()["detail"]["field"] == "/reason"
    description = raw.send(
        "POST",
        "/v3/pay/transactions/codepay",
        raw.codepay(out_trade_no="C0000002", description="😀"),
    )
    assert description.json()["detail"]["field"] == "/description"


def test_unknown_fields_carry_their_own_error_id(raw: Raw) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native(extra=1))
    assert answer.headers["Request-ID"].endswith("-270924358")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"payer": {"auth_code": "280061098828009406"}}, "/payer/auth_code"),
        ({"payer": {"auth_code": "13006109882800940"}}, "/payer/auth_code"),
        ({"payer": ...}, "/payer"),
        ({"scene_info": {"device_id": "T1"}}, "/scene_info/store_info"),
        ({"scene_info": {"store_info": {}}}, "/scene_info/store_info"),
        ({"notify_url": "https://pos.example.com/n"}, "/notify_url"),
    ],
)
def test_codepay_parameters_are_validated(raw: Raw, overrides: dict[str, Any], field: str) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(**overrides))
    assert answer.status_code == 400 and answer.json()["detail"]["field"] == field


def test_garbage_json_and_a_foreign_appid_are_refused(raw: Raw) -> None:
    assert raw.send("POST", "/v3/pay/transactions/native", raw=b"{not json").status_code == 400
    assert raw.send("POST", "/v3/pay/transactions/native", raw=b"[1]").status_code == 400
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native(appid="wx0000000000000000"))
    assert answer.json()["code"] == "APPID_MCHID_NOT_MATCH"


def test_close_and_reverse_bodies_are_validated(raw: Raw) -> None:
    close_path = "/v3/pay/transactions/out-trade-no/N0000001/close"
    assert raw.send("POST", close_path, raw.body()).status_code == 400  # appid is not a close field
    reverse_path = "/v3/pay/transactions/out-trade-no/N0000001/reverse"
    assert raw.send("POST", reverse_path, {"mchid": raw.creds.mchid}).status_code == 400


# ---------------------------------------------------------------- control endpoints


def test_control_endpoints_validate_and_report(raw: Raw, sandbox: WeChatSandbox) -> None:
    base = sandbox.base_url
    assert (
        raw.http.post(base + "/sandbox/payment-codes", json={"scenario": "rich"}).status_code == 400
    )
    bad_delay = {"scenario": "paid", "delay_s": -1}
    assert raw.http.post(base + "/sandbox/payment-codes", json=bad_delay).status_code == 400
    assert raw.http.post(base + "/sandbox/scan", json={"code_url": "weixin://x"}).status_code == 404
    assert raw.http.post(base + "/sandbox/scan", json={}).status_code == 400
    assert raw.http.get(base + "/sandbox/orders/N0000404").status_code == 404
    assert raw.http.get(base + "/sandbox/nothing").status_code == 404
    raw.send("POST", "/v3/pay/transactions/native", raw.native())
    [order] = raw.http.get(base + "/sandbox/orders").json()["orders"]
    assert order["out_trade_no"] == "N0000001" and order["trade_state"] == "NOTPAY"
    assert order["trade_type"] == "NATIVE" and order["amount_total"] == 100


def test_faults_can_be_set_over_http(raw: Raw, sandbox: WeChatSandbox) -> None:
    base = sandbox.base_url
    assert raw.http.post(base + "/sandbox/faults", json={"sign_responses": "no"}).status_code == 400
    assert raw.http.post(base + "/sandbox/faults", json={"typo": True}).status_code == 400
    assert (
        raw.http.post(base + "/sandbox/faults", json={"sign_responses": False}).status_code == 200
    )
    unsigned = raw.send("GET", raw.query_path("N1"))
    assert "Wechatpay-Signature" not in unsigned.headers and unsigned.status_code == 404
    faults = raw.http.post(base + "/sandbox/faults", json={}).json()
    assert faults["sign_responses"] is True and faults["delay_s"] == 0.0
    assert "Wechatpay-Signature" in raw.send("GET", raw.query_path("N1")).headers


# ---------------------------------------------------------------- state dir and lifecycle


def test_the_state_dir_holds_merchant_json_and_keys_with_private_files_0600(
    sandbox: WeChatSandbox,
) -> None:
    folder = sandbox.merchant_json.parent
    info = json.loads(sandbox.merchant_json.read_text(encoding="utf-8"))
    assert set(info) == {
        "mchid",
        "appid",
        "merchant_serial",
        "merchant_private_key",
        "platform_public_key",
        "public_key_id",
        "apiv3_key",
        "key_modes",
    }
    assert info["key_modes"] == ["public_key"]  # no platform certificate to name
    assert (
        len(info["merchant_serial"]) == 40
        and info["merchant_serial"] == info["merchant_serial"].upper()
    )
    assert info["public_key_id"].startswith("PUB_KEY_ID_") and len(info["apiv3_key"]) == 32
    assert "PRIVATE" in (folder / info["merchant_private_key"]).read_text()
    assert "PUBLIC" in (folder / info["platform_public_key"]).read_text()
    private = ("sandbox_platform_private.pem", "sandbox_platform_cert_private.pem", "merchant.json")
    for name in (info["merchant_private_key"], *private):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert "platform_private" not in json.dumps(info)
    assert "CERTIFICATE" in (folder / "platform_cert.pem").read_text()


def test_a_restart_reuses_the_merchant(tmp_path: Path) -> None:
    with WeChatSandbox(tmp_path) as first:
        before = first.merchant_json.read_bytes()
    with WeChatSandbox(tmp_path) as second:
        assert second.merchant_json.read_bytes() == before
    (tmp_path / "pub_key.pem").unlink()
    with pytest.raises(SandboxStateError, match=r"pub_key\.pem"):
        WeChatSandbox(tmp_path).start()


def test_the_sandbox_refuses_to_start_twice_and_reports_when_stopped(
    sandbox_state_dir: Path,
) -> None:
    box = WeChatSandbox(sandbox_state_dir)
    with pytest.raises(RuntimeError, match="not running"):
        _ = box.base_url
    with box:
        with pytest.raises(RuntimeError, match="already"):
            box.start()
        assert box.base_url == f"http://127.0.0.1:{box.port}"
    box.stop()  # stopping twice is harmless


def test_a_held_back_answer_does_not_block_stop(sandbox_state_dir: Path) -> None:
    from hw_mocks.wechat_sandbox import Faults

    box = WeChatSandbox(sandbox_state_dir)
    box.start()
    box.set_faults(Faults(delay_s=30))
    with pytest.raises(httpx.HTTPError):
        httpx.get(box.base_url + "/v3/x", timeout=0.2)
    box.stop()


def test_serve_forever_prints_the_url_and_exits_zero_on_sigterm(
    sandbox_state_dir: Path, http: httpx.Client
) -> None:
    code = (
        "import sys; from pathlib import Path; from hw_mocks.wechat_sandbox import serve_forever; "
        "sys.exit(serve_forever(0, Path(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sandbox_state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "merchant.json" in line
        url = line.split()[line.split().index("at") + 1]
        assert http.get(url + "/sandbox/orders").json() == {"orders": []}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
