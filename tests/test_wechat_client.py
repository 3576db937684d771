"""WeChatPayClient against the sandbox over real HTTP on loopback: scenarios and faults."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import (
    TradeState,
    Transaction,
    WeChatApiError,
    WeChatCredentials,
    WeChatPayClient,
    WeChatPayError,
    WeChatResponseError,
    WeChatTransportError,
    load_merchant_json,
    parse_api_error,
    parse_transaction,
)
from tests.conftest import SWITCHING
from tests.helpers import sandbox_control

pytestmark = pytest.mark.anyio

NOTIFY = "https://pos.example.com/wechatpay/notify"
CODE = "130061098828009406"


def _code(n: int) -> str:
    return f"13{n:016d}"


async def _pay_code(
    client: WeChatPayClient, amount: int, code: str, no: str = "C0000001"
) -> Transaction:
    return await client.create_codepay(
        out_trade_no=no,
        amount_fen=amount,
        description="收银 sale",
        auth_code=code,
        store_id="SH-0001",
        device_id="T0001",
        device_ip="10.0.0.2",
    )


async def _native(
    client: WeChatPayClient, no: str = "N0000001", amount: int = 100, **kw: Any
) -> str:
    return await client.create_native(
        out_trade_no=no, amount_fen=amount, description="收银 sale", notify_url=NOTIFY, **kw
    )


def _wallet(sandbox: WeChatSandbox, scenario: str, delay_s: float | None = None) -> str:
    body: dict[str, Any] = {"scenario": scenario}
    if delay_s is not None:
        body["delay_s"] = delay_s
    answer = sandbox_control(sandbox.base_url, "POST", "/sandbox/payment-codes", body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["auth_code"])


def _client(sandbox: WeChatSandbox, clock: Callable[[], float], **kw: Any) -> WeChatPayClient:
    creds = kw.pop("creds", None) or load_merchant_json(sandbox.merchant_json)
    kw.setdefault("base_urls", [sandbox.base_url])
    return WeChatPayClient(creds, clock=clock, connect_timeout_s=1.0, read_timeout_s=5.0, **kw)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- Native QR


async def test_native_order_is_unpaid_until_the_customer_scans(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    code_url = await _native(wechat_client)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    tx = await wechat_client.query(out_trade_no="N0000001")
    assert tx.trade_state is TradeState.NOTPAY and tx.trade_type == "NATIVE"
    assert (tx.transaction_id, tx.payer_openid, tx.success_time, tx.payer_total_fen) == (None,) * 4
    assert tx.amount_total_fen == 100

    scan = sandbox_control(sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url})
    assert scan.json() == {"out_trade_no": "N0000001", "trade_state": "SUCCESS"}
    tx = await wechat_client.query(out_trade_no="N0000001")
    assert tx.trade_state is TradeState.SUCCESS
    assert (
        tx.transaction_id is not None
        and len(tx.transaction_id) == 28
        and tx.transaction_id.isdigit()
    )
    assert tx.payer_total_fen == 100 and tx.payer_openid and tx.success_time and tx.bank_type


async def test_native_resubmission_with_the_same_body_returns_the_same_code_url(
    wechat_client: WeChatPayClient,
) -> None:
    first = await _native(wechat_client)
    assert await _native(wechat_client) == first


async def test_native_resubmission_with_a_different_body_is_invalid_request(
    wechat_client: WeChatPayClient,
) -> None:
    await _native(wechat_client)
    with pytest.raises(WeChatApiError) as err:
        await _native(wechat_client, amount=101)
    assert (err.value.status, err.value.code) == (400, "INVALID_REQUEST")
    assert err.value.request_id.endswith("-268498688")
    assert not err.value.outcome_unknown


async def test_scan_after_time_expire_fails(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    expire = datetime.fromtimestamp(sandbox_clock() + 60, UTC).astimezone(
        datetime.now().astimezone().tzinfo
    )
    code_url = await _native(wechat_client, time_expire=expire)
    sandbox_clock.advance(61)
    answer = sandbox_control(sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url})
    assert answer.status_code == 400
    assert (await wechat_client.query(out_trade_no="N0000001")).trade_state is TradeState.NOTPAY


async def test_a_code_url_is_payable_for_two_hours_at_most(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    code_url = await _native(wechat_client)
    sandbox_clock.advance(2 * 3600 + 1)
    assert (
        sandbox_control(
            sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url}
        ).status_code
        == 400
    )


async def test_time_expire_must_be_timezone_aware(wechat_client: WeChatPayClient) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await _native(wechat_client, time_expire=datetime(2030, 1, 1, 12, 0))


async def test_closing_an_unpaid_native_order_is_idempotent_and_stops_payment(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    code_url = await _native(wechat_client)
    await wechat_client.close(out_trade_no="N0000001")
    await wechat_client.close(out_trade_no="N0000001")
    assert (await wechat_client.query(out_trade_no="N0000001")).trade_state is TradeState.CLOSED
    assert (
        sandbox_control(
            sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url}
        ).status_code
        == 400
    )
    with pytest.raises(WeChatApiError) as err:
        await _native(wechat_client)
    assert err.value.code == "ORDER_CLOSED"


async def test_closing_a_paid_order_is_orderpaid(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    code_url = await _native(wechat_client)
    sandbox_control(sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url})
    assert (
        sandbox_control(
            sandbox.base_url, "POST", "/sandbox/scan", {"code_url": code_url}
        ).status_code
        == 400
    )
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.close(out_trade_no="N0000001")
    assert err.value.normalized_code == "ORDERPAID"


async def test_querying_an_unknown_order_is_order_not_exist(wechat_client: WeChatPayClient) -> None:
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.query(out_trade_no="NOPE000001")
    assert (err.value.status, err.value.normalized_code) == (404, "ORDERNOTEXIST")


# ---------------------------------------------------------------- payment code, magic amounts


async def test_plain_amount_is_paid_at_once(wechat_client: WeChatPayClient) -> None:
    tx = await _pay_code(wechat_client, 1234, CODE)
    assert tx.trade_state is TradeState.SUCCESS and tx.trade_type == "MICROPAY"
    assert tx.amount_total_fen == 1234 and tx.transaction_id is not None


async def test_4001_is_userpaying_then_paid_after_userpaying_s(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    tx = await _pay_code(wechat_client, 4001, CODE)
    assert tx == Transaction(out_trade_no="C0000001", trade_state=TradeState.USERPAYING)
    sandbox_clock.advance(2.9)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.USERPAYING
    sandbox_clock.advance(0.2)
    paid = await wechat_client.query(out_trade_no="C0000001")
    assert paid.trade_state is TradeState.SUCCESS and paid.transaction_id is not None


async def test_4002_stays_userpaying_until_reversed(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    assert (await _pay_code(wechat_client, 4002, CODE)).trade_state is TradeState.USERPAYING
    sandbox_clock.advance(3600)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.USERPAYING
    await wechat_client.reverse(out_trade_no="C0000001")
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.REVOKED


async def test_4003_is_not_enough(wechat_client: WeChatPayClient) -> None:
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 4003, CODE)
    assert (err.value.status, err.value.normalized_code) == (403, "NOTENOUGH")
    assert not err.value.outcome_unknown
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.PAYERROR


async def test_4004_is_userpaying_then_payerror(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    assert (await _pay_code(wechat_client, 4004, CODE)).trade_state is TradeState.USERPAYING
    sandbox_clock.advance(3)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.PAYERROR
    await wechat_client.reverse(out_trade_no="C0000001")
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.REVOKED


# ---------------------------------------------------------------- payment code, wallet codes


@pytest.mark.parametrize(
    ("scenario", "first", "later"),
    [
        ("paid", TradeState.SUCCESS, TradeState.SUCCESS),
        ("userpaying_then_paid", TradeState.USERPAYING, TradeState.SUCCESS),
        ("userpaying_until_reversed", TradeState.USERPAYING, TradeState.USERPAYING),
        ("payerror", TradeState.USERPAYING, TradeState.PAYERROR),
    ],
)
async def test_wallet_codes_follow_their_scenario_at_any_amount(
    wechat_client: WeChatPayClient,
    sandbox: WeChatSandbox,
    sandbox_clock: ManualClock,
    scenario: str,
    first: TradeState,
    later: TradeState,
) -> None:
    code = _wallet(sandbox, scenario)
    assert len(code) == 18 and code.isdigit()
    assert (await _pay_code(wechat_client, 4001, code)).trade_state is first
    sandbox_clock.advance(3)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is later


async def test_wallet_not_enough_code(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 1, _wallet(sandbox, "not_enough"))
    assert err.value.normalized_code == "NOTENOUGH"


async def test_wallet_delay_sets_when_userpaying_ends(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    await _pay_code(wechat_client, 1, _wallet(sandbox, "userpaying_then_paid", delay_s=10))
    sandbox_clock.advance(9)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.USERPAYING
    sandbox_clock.advance(1)
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.SUCCESS


async def test_a_wallet_code_expires_after_a_minute(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    code = _wallet(sandbox, "paid")
    sandbox_clock.advance(61)
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 1, code)
    assert err.value.status == 400 and err.value.message.startswith("101")


# ---------------------------------------------------------------- payment code, re-entry and codes


async def test_a_payment_code_works_only_once(wechat_client: WeChatPayClient) -> None:
    await _pay_code(wechat_client, 100, CODE, "C0000001")
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 100, CODE, "C0000002")
    assert err.value.status == 400 and "每个二维码仅限使用一次" in err.value.message


async def test_a_payment_code_is_used_up_even_when_the_payment_failed(
    wechat_client: WeChatPayClient,
) -> None:
    with pytest.raises(WeChatApiError):
        await _pay_code(wechat_client, 4003, CODE, "C0000001")
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 100, CODE, "C0000002")
    assert err.value.message.startswith("101")


async def test_identical_codepay_resubmission_replays_the_result(
    wechat_client: WeChatPayClient,
) -> None:
    first = await _pay_code(wechat_client, 100, CODE)
    again = await _pay_code(wechat_client, 100, CODE)
    assert again.transaction_id == first.transaction_id and again.trade_state is TradeState.SUCCESS
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 4003, _code(1), "C0000002")
    with pytest.raises(WeChatApiError) as again_err:
        await _pay_code(wechat_client, 4003, _code(1), "C0000002")
    assert again_err.value.code == err.value.code == "NOT_ENOUGH"


async def test_a_new_code_under_a_paid_number_is_orderpaid(wechat_client: WeChatPayClient) -> None:
    await _pay_code(wechat_client, 100, CODE)
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 100, _code(7))
    assert err.value.normalized_code == "ORDERPAID"


async def test_a_different_body_under_a_pending_number_is_invalid_request(
    wechat_client: WeChatPayClient,
) -> None:
    await _pay_code(wechat_client, 4002, CODE)
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 4002, _code(8))
    assert err.value.code == "INVALID_REQUEST"


async def test_codepay_orders_cannot_be_closed_only_reversed(
    wechat_client: WeChatPayClient,
) -> None:
    await _pay_code(wechat_client, 4002, CODE)
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.close(out_trade_no="C0000001")
    assert err.value.code == "INVALID_REQUEST" and "只能撤销" in err.value.message


async def test_reversing_a_paid_order_returns_the_money_and_is_idempotent(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    await _pay_code(wechat_client, 100, CODE)
    await wechat_client.reverse(out_trade_no="C0000001")
    await wechat_client.reverse(out_trade_no="C0000001")
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.REVOKED
    view = sandbox_control(sandbox.base_url, "GET", "/sandbox/orders/C0000001").json()
    assert view["trade_state"] == "REVOKED" and view["refunded"] is True
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 100, CODE)
    assert err.value.code == "ORDER_CLOSED"


async def test_reversing_an_unknown_order_is_order_not_exist(
    wechat_client: WeChatPayClient,
) -> None:
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.reverse(out_trade_no="C0000404")
    assert err.value.normalized_code == "ORDERNOTEXIST"


async def test_native_orders_cannot_be_reversed(wechat_client: WeChatPayClient) -> None:
    await _native(wechat_client)
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.reverse(out_trade_no="N0000001")
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"amount": 0}, "/amount/total"),
        ({"code": "123456"}, "/payer/auth_code"),
        ({"code": "160061098828009406"}, "/payer/auth_code"),
        ({"no": "abc"}, "/out_trade_no"),
        ({"no": "has space 123"}, "/out_trade_no"),
    ],
)
async def test_bad_parameters_are_param_error_naming_the_field(
    wechat_client: WeChatPayClient, kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(
            wechat_client, kw.get("amount", 100), kw.get("code", CODE), kw.get("no", "C0000001")
        )
    assert (err.value.status, err.value.code) == (400, "PARAM_ERROR")
    assert err.value.detail["field"] == field and err.value.detail["location"] == "body"


async def test_a_too_long_description_is_param_error(wechat_client: WeChatPayClient) -> None:
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.create_native(
            out_trade_no="N0000001", amount_fen=1, description="x" * 128, notify_url=NOTIFY
        )
    assert err.value.detail["field"] == "/description"


# ---------------------------------------------------------------- request authentication


async def test_a_wrong_merchant_key_is_sign_error_with_diagnostics(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    creds = dataclasses.replace(
        load_merchant_json(sandbox.merchant_json),
        merchant_private_key=wechat_sign.generate_private_key(),
    )
    async with _client(sandbox, sandbox_clock, creds=creds) as client:
        with pytest.raises(WeChatApiError) as err:
            await client.query(out_trade_no="N0000001")
    assert (err.value.status, err.value.code) == (401, "SIGN_ERROR")
    info = err.value.detail["sign_information"]
    assert info["method"] == "GET" and info["url"].startswith(
        "/v3/pay/transactions/out-trade-no/N0000001?"
    )
    assert info["sign_message_length"] > 0 and err.value.request_id.endswith("-268443699")


async def test_a_wrong_serial_or_a_skewed_clock_is_sign_error(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    creds = load_merchant_json(sandbox.merchant_json)
    wrong_serial = dataclasses.replace(creds, merchant_serial="0" * 40)
    async with _client(sandbox, sandbox_clock, creds=wrong_serial) as client:
        with pytest.raises(WeChatApiError) as err:
            await client.query(out_trade_no="N0000001")
    assert err.value.detail["field"] == "serial_no"
    async with _client(sandbox, lambda: sandbox_clock() - 301) as client:
        with pytest.raises(WeChatApiError) as err:
            await client.query(out_trade_no="N0000001")
    assert err.value.code == "SIGN_ERROR" and err.value.detail["field"] == "timestamp"


# ---------------------------------------------------------------- answer verification


async def test_an_unsigned_2xx_is_refused(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(sign_responses=False))
    with pytest.raises(WeChatResponseError, match="not signed"):
        await _native(wechat_client)


async def test_an_unsigned_error_is_still_an_api_error(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(sign_responses=False))
    with pytest.raises(WeChatApiError) as err:
        await wechat_client.query(out_trade_no="NOPE000001")
    assert err.value.code == "ORDER_NOT_EXIST"


async def test_a_tampered_body_is_refused(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(tamper_body=True))
    with pytest.raises(WeChatResponseError, match="does not match"):
        await _native(wechat_client)
    with pytest.raises(WeChatResponseError):
        await wechat_client.query(out_trade_no="N0000001")  # a signed error body, tampered


async def test_a_signature_failure_is_counted_and_logged_as_a_warning(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    await _native(wechat_client)
    assert wechat_client.signature_failures == 0  # a good answer is no event
    sandbox.set_faults(Faults(tamper_body=True))
    with caplog.at_level(logging.INFO, logger="pos_terminal.payments.wechat"):
        for _ in range(2):
            with pytest.raises(WeChatResponseError):
                await wechat_client.query(out_trade_no="N0000001")
    assert wechat_client.signature_failures == 2
    levels = [r.levelno for r in caplog.records if r.name == "pos_terminal.payments.wechat"]
    assert levels.count(logging.WARNING) == 2


async def test_answers_signed_by_another_key_or_serial_are_refused(
    sandbox_state_dir: Path, sandbox_clock: ManualClock
) -> None:
    # a public-key-only merchant: an unknown PUB_KEY_ID is never worth a certificate download
    with WeChatSandbox(sandbox_state_dir, clock=sandbox_clock, key_modes=["public_key"]) as box:
        creds = load_merchant_json(box.merchant_json)
        other_key = dataclasses.replace(
            creds, platform_public_key=wechat_sign.generate_private_key().public_key()
        )
        other_serial = dataclasses.replace(
            creds, public_key_id="PUB_KEY_ID_0000000000000000000000000000000001"
        )
        for bad, reason in ((other_key, "does not match"), (other_serial, "unknown key")):
            async with _client(box, sandbox_clock, creds=bad) as client:
                with pytest.raises(WeChatResponseError, match=reason):
                    await _native(client)


async def test_a_stale_answer_timestamp_is_refused(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    # the client reads its clock twice: once to sign (200 s ahead: accepted by the sandbox),
    # once to check the answer (400 s ahead of the answer's timestamp: refused)
    offsets = iter([200.0, 400.0])
    async with _client(sandbox, lambda: sandbox_clock() + next(offsets)) as client:
        with pytest.raises(WeChatResponseError, match="off our clock"):
            await _native(client)


# ---------------------------------------------------------------- transport


async def test_failover_to_the_backup_host_when_the_primary_refuses(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock, closed_port_url: str
) -> None:
    async with _client(
        sandbox, sandbox_clock, base_urls=[closed_port_url, sandbox.base_url]
    ) as client:
        assert (await _pay_code(client, 100, CODE)).trade_state is TradeState.SUCCESS


async def test_no_reachable_host_is_a_transport_error_that_was_not_sent(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock, closed_port_url: str
) -> None:
    async with _client(sandbox, sandbox_clock, base_urls=[closed_port_url]) as client:
        with pytest.raises(WeChatTransportError) as err:
            await _pay_code(client, 100, CODE)
    assert err.value.maybe_sent is False


async def test_a_read_timeout_is_maybe_sent_and_not_retried(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    sandbox.set_faults(Faults(delay_s=2.0))
    backup_never_used = "http://127.0.0.1:9"
    async with WeChatPayClient(
        load_merchant_json(sandbox.merchant_json),
        base_urls=[sandbox.base_url, backup_never_used],
        read_timeout_s=0.2,
        clock=sandbox_clock,
    ) as client:
        with pytest.raises(WeChatTransportError) as err:
            await _pay_code(client, 100, CODE)
    assert err.value.maybe_sent is True
    sandbox.set_faults(Faults())
    assert (
        sandbox_control(sandbox.base_url, "GET", "/sandbox/orders/C0000001").json()["trade_state"]
        == "SUCCESS"
    )


async def test_a_dropped_connection_is_maybe_sent(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(drop_connection=True))
    with pytest.raises(WeChatTransportError) as err:
        await _pay_code(wechat_client, 100, CODE)
    assert err.value.maybe_sent is True


async def test_system_error_after_commit_is_outcome_unknown_and_query_finds_the_payment(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(system_error_after_commit=True))
    with pytest.raises(WeChatApiError) as err:
        await _pay_code(wechat_client, 100, CODE)
    assert err.value.status == 500 and err.value.outcome_unknown
    sandbox.set_faults(Faults())
    assert (await wechat_client.query(out_trade_no="C0000001")).trade_state is TradeState.SUCCESS


Queued = list[tuple[int, dict[str, str], bytes]]  # status, headers, body: one per request


class RogueServer(ThreadingHTTPServer):
    """Closing joins the handler threads, so whatever they print lands in the test that ran them;
    a client hanging up (as on a refused answer) is routine, not a traceback."""

    daemon_threads = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def rogue_server() -> Iterator[tuple[str, Queued, RogueServer]]:
    """A loopback server answering whatever the test queues: for answers the sandbox never gives."""
    queue: Queued = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, headers, body = queue.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = RogueServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", queue, server
    server.close()


async def test_a_huge_answer_is_refused_unread_and_the_hang_up_stays_quiet(
    sandbox: WeChatSandbox,
    sandbox_clock: ManualClock,
    rogue_server: tuple[str, Queued, RogueServer],
    capfd: pytest.CaptureFixture[str],
) -> None:
    url, queue, server = rogue_server
    # far more than socket buffers hold: the server is still writing when the client hangs up
    huge = b'{"code_url":"' + b"x" * (16 << 20) + b'"}'
    queue.append((200, {"Content-Type": "application/json"}, huge))
    queue.append((502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"))
    async with _client(sandbox, sandbox_clock, base_urls=[url]) as client:
        with pytest.raises(WeChatResponseError, match="exceeds"):
            await _native(client)
        with pytest.raises(WeChatApiError) as err:
            await _native(client)
    assert err.value.status == 502 and err.value.outcome_unknown
    server.close()  # the handlers have finished, and said what they had to say
    assert capfd.readouterr().err == ""  # no traceback in the middle of a passing run


# ---------------------------------------------------------------- parsing, credentials, logs


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["out_trade_no", "trade_state", "transaction_id", "amount", "payer", "success_time"]
TX_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "out_trade_no": JSON | st.just("C0000001"),
        "trade_state": JSON | st.sampled_from(list(TradeState)),
        "transaction_id": JSON,
        "amount": JSON | st.fixed_dictionaries({}, optional={"total": JSON, "payer_total": JSON}),
        "payer": JSON | st.fixed_dictionaries({}, optional={"openid": JSON}),
        "success_time": JSON,
        "trade_type": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        JSON.map(json.dumps).map(str.encode),
        TX_LIKE.map(json.dumps).map(str.encode),
    )
)
def test_the_transaction_parser_raises_only_response_errors(body: bytes) -> None:
    try:
        tx = parse_transaction(body)
    except WeChatResponseError:
        return
    assert isinstance(tx.out_trade_no, str) and isinstance(tx.trade_state, TradeState)
    assert tx.amount_total_fen is None or type(tx.amount_total_fen) is int


@given(
    st.integers(400, 599), st.one_of(st.binary(max_size=64), JSON.map(json.dumps).map(str.encode))
)
def test_the_error_parser_never_raises(status: int, body: bytes) -> None:
    err = parse_api_error(status, body, "RID-1")
    assert err.status == status and isinstance(err.code, str)


def test_a_transaction_needs_its_required_fields_with_the_right_types() -> None:
    with pytest.raises(WeChatResponseError, match="trade_state"):
        parse_transaction(b'{"out_trade_no":"C0000001"}')
    with pytest.raises(WeChatResponseError, match="out_trade_no"):
        parse_transaction(b'{"trade_state":"SUCCESS"}')
    with pytest.raises(WeChatResponseError, match="total"):
        parse_transaction(b'{"out_trade_no":"C1","trade_state":"SUCCESS","amount":{"total":"1"}}')
    with pytest.raises(WeChatResponseError, match="total"):
        parse_transaction(b'{"out_trade_no":"C1","trade_state":"SUCCESS","amount":{"total":true}}')
    with pytest.raises(WeChatResponseError, match="unknown trade_state"):
        parse_transaction(b'{"out_trade_no":"C1","trade_state":"PAID"}')
    tx = parse_transaction(b'{"out_trade_no":"C1","trade_state":"SUCCESS","new_field":[1]}')
    assert tx.trade_state is TradeState.SUCCESS


@pytest.mark.parametrize(
    ("status", "code", "normalized", "unknown"),
    [
        (500, "SYSTEM_ERROR", "SYSTEMERROR", True),
        (400, "SYSTEMERROR", "SYSTEMERROR", True),
        (500, "BANK_ERROR", "BANKERROR", True),
        (429, "FREQUENCY_LIMITED", "FREQUENCYLIMITED", True),
        (403, "NOT_ENOUGH", "NOTENOUGH", False),
        (400, "PARAM_ERROR", "PARAMERROR", False),
        (404, "order_not_exist", "ORDERNOTEXIST", False),
    ],
)
def test_error_codes_normalise_and_classify(
    status: int, code: str, normalized: str, unknown: bool
) -> None:
    err = WeChatApiError(status, code, "m", None, "R-1")
    assert (err.normalized_code, err.outcome_unknown) == (normalized, unknown)
    assert isinstance(err, WeChatPayError)


def test_credentials_never_show_key_material(sandbox: WeChatSandbox) -> None:
    creds = load_merchant_json(sandbox.merchant_json)
    text = repr(creds)
    assert creds.apiv3_key not in text and "Key" not in text and creds.mchid in text


def test_load_merchant_json_reports_missing_and_malformed_files(
    tmp_path: Any, sandbox: WeChatSandbox
) -> None:
    with pytest.raises(WeChatPayError, match="cannot load"):
        load_merchant_json(tmp_path / "missing.json")
    data = json.loads(sandbox.merchant_json.read_text())
    data["merchant_private_key"] = str(sandbox.merchant_json.parent / data["merchant_private_key"])
    data["platform_public_key"] = str(sandbox.merchant_json.parent / data["platform_public_key"])
    absolute = tmp_path / "absolute.json"
    absolute.write_text(json.dumps(data))
    assert load_merchant_json(absolute).mchid == data["mchid"]
    del data["apiv3_key"]
    absolute.write_text(json.dumps(data))
    with pytest.raises(WeChatPayError, match="apiv3_key"):
        load_merchant_json(absolute)


def test_load_merchant_json_takes_files_with_and_without_key_modes_and_a_certificate(
    start_sandbox: Callable[..., WeChatSandbox], tmp_path: Path
) -> None:
    box = start_sandbox(key_modes=SWITCHING)
    data = json.loads(box.merchant_json.read_text())
    assert {"key_modes", "platform_certificate", "platform_certificate_serial"} <= data.keys()
    creds = load_merchant_json(box.merchant_json)
    for name in ("key_modes", "platform_certificate", "platform_certificate_serial"):
        del data[name]  # as a merchant.json written before key modes existed
    for name in ("merchant_private_key", "platform_public_key"):
        data[name] = str(box.merchant_json.parent / data[name])
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    loaded = load_merchant_json(older)
    private = loaded.merchant_private_key  # private key objects do not compare equal
    assert private.private_numbers() == creds.merchant_private_key.private_numbers()
    assert dataclasses.replace(loaded, merchant_private_key=creds.merchant_private_key) == creds


async def test_the_client_must_be_opened_first(sandbox: WeChatSandbox) -> None:
    client = WeChatPayClient(
        load_merchant_json(sandbox.merchant_json), base_urls=[sandbox.base_url]
    )
    with pytest.raises(RuntimeError, match="async with"):
        await client.query(out_trade_no="C0000001")
    with pytest.raises(ValueError):
        WeChatPayClient(load_merchant_json(sandbox.merchant_json), base_urls=[])


async def test_logs_carry_no_auth_code_key_or_signature(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _pay_code(wechat_client, 100, CODE)
    with pytest.raises(WeChatApiError):
        await _pay_code(wechat_client, 100, CODE, "C0000002")
    creds: WeChatCredentials = load_merchant_json(sandbox.merchant_json)
    text = caplog.text
    assert CODE not in text and creds.apiv3_key not in text and "signature=" not in text
    assert "PRIVATE KEY" not in text
    client_lines = [r for r in caplog.records if r.name == "pos_terminal.payments.wechat"]
    assert len(client_lines) == 2 and all(r.levelno == logging.INFO for r in client_lines)
