"""Refunds: WeChatPayClient.create_refund/query_refund against the sandbox over real HTTP.

Sandbox rules (reference §3.7, §5, sandbox item 10) are driven by the shared manual clock:
refunds settle after `refund_delay_s` (2 s) and one order's refunds are ≥ 60 s apart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox
from pos_terminal.payments.wechat import (
    Refund,
    RefundStatus,
    TradeState,
    WeChatApiError,
    WeChatPayClient,
    WeChatResponseError,
    load_merchant_json,
    parse_refund,
)
from pos_terminal.payments.wechat_refund import FOLLOW_MAX_SPACING_S, FollowSchedule
from tests.helpers import sandbox_order
from tests.test_wechat_sandbox import Raw

REFUNDS = "/v3/refund/domestic/refunds"


def _code(n: int) -> str:
    return f"13{n:016d}"


async def _paid(client: WeChatPayClient, no: str = "C0000001", amount: int = 1000) -> str:
    """A payment-code order paid at once; returns its transaction_id."""
    tx = await client.create_codepay(
        out_trade_no=no,
        amount_fen=amount,
        description="收银 sale",
        auth_code=_code(int(no[1:])),
        store_id="SH-0001",
        device_id="T0001",
        device_ip="10.0.0.2",
    )
    assert tx.trade_state is TradeState.SUCCESS and tx.transaction_id is not None
    return tx.transaction_id


async def _refund(
    client: WeChatPayClient, no: str, fen: int, *, order: str = "C0000001", total: int = 1000
) -> Refund:
    return await client.create_refund(
        out_refund_no=no, out_trade_no=order, refund_fen=fen, total_fen=total, reason="退货"
    )


async def _refused(client: WeChatPayClient, no: str, fen: int, **kw: Any) -> WeChatApiError:
    with pytest.raises(WeChatApiError) as caught:
        await _refund(client, no, fen, **kw)
    return caught.value


@pytest.fixture
async def quick_client(
    sandbox_state_dir: Path, sandbox_clock: ManualClock
) -> AsyncIterator[WeChatPayClient]:
    """A client of a sandbox with no interval between refunds and no refund delay."""
    box = WeChatSandbox(
        sandbox_state_dir, clock=sandbox_clock, refund_interval_s=0, refund_delay_s=0
    )
    with box:
        creds = load_merchant_json(box.merchant_json)
        async with WeChatPayClient(
            creds, base_urls=[box.base_url], clock=sandbox_clock, read_timeout_s=5.0
        ) as client:
            yield client


@pytest.fixture
def raw(sandbox: WeChatSandbox, sandbox_clock: ManualClock) -> Iterator[Raw]:
    with httpx.Client(timeout=5, verify=False) as http:
        yield Raw(sandbox, sandbox_clock, http)


# ---------------------------------------------------------------- refunds over the client


@pytest.mark.anyio
async def test_a_full_refund_is_processing_then_success_after_the_delay(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client)
    created = await _refund(wechat_client, "R0000001", 1000)
    assert created.status is RefundStatus.PROCESSING and created.success_time is None
    assert (created.refund_fen, created.total_fen, created.out_trade_no) == (1000, 1000, "C0000001")
    assert len(created.refund_id) == 29 and created.refund_id.startswith("50")
    assert created.user_received_account == "支付用户零钱"
    sandbox_clock.advance(1.9)
    assert (await wechat_client.query_refund(out_refund_no="R0000001")).status == "PROCESSING"
    sandbox_clock.advance(0.1)
    done = await wechat_client.query_refund(out_refund_no="R0000001")
    assert done.status is RefundStatus.SUCCESS
    assert done.refund_id == created.refund_id and done.success_time is not None
    order = await wechat_client.query(out_trade_no="C0000001")
    assert order.trade_state is TradeState.REFUND
    view = sandbox_order(sandbox.base_url, "C0000001")
    assert view["trade_state"] == "REFUND" and view["refunded"] is False
    assert [(r["out_refund_no"], r["status"]) for r in view["refunds"]] == [("R0000001", "SUCCESS")]


@pytest.mark.anyio
async def test_partial_refunds_never_add_up_past_the_paid_amount(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client)
    await _refund(wechat_client, "R0000001", 300)
    sandbox_clock.advance(60)
    second = await _refund(wechat_client, "R0000002", 700)
    assert second.refund_fen == 700
    sandbox_clock.advance(60)
    too_much = await _refused(wechat_client, "R0000003", 1)
    assert (too_much.status, too_much.code) == (400, "INVALID_REQUEST")
    assert "可退金额" in too_much.message
    for no in ("R0000001", "R0000002"):
        assert (await wechat_client.query_refund(out_refund_no=no)).status is RefundStatus.SUCCESS
    assert (
        sum(r["refund_fen"] for r in sandbox_order(sandbox.base_url, "C0000001")["refunds"]) == 1000
    )


@pytest.mark.anyio
async def test_a_refund_answered_500_after_commit_is_the_same_refund_on_retry(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    await _paid(wechat_client)
    sandbox.fault_next("POST", REFUNDS, Faults(system_error_after_commit=True))
    with pytest.raises(WeChatApiError) as caught:
        await _refund(wechat_client, "R0000001", 400)
    assert caught.value.status == 500 and caught.value.outcome_unknown
    found = await wechat_client.query_refund(out_refund_no="R0000001")
    retried = await _refund(wechat_client, "R0000001", 400)  # no 429: it is the same refund
    assert retried.refund_id == found.refund_id and retried.refund_fen == 400
    assert [r["refund_fen"] for r in sandbox_order(sandbox.base_url, "C0000001")["refunds"]] == [
        400
    ]


@pytest.mark.anyio
async def test_a_blind_retry_after_a_500_refunds_only_once(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client)
    sandbox.fault_next("*", REFUNDS, Faults(system_error_after_commit=True))
    with pytest.raises(WeChatApiError):
        await _refund(wechat_client, "R0000001", 1000)
    sandbox_clock.advance(5)
    first = await _refund(wechat_client, "R0000001", 1000)
    again = await _refund(wechat_client, "R0000001", 1000)
    assert first.refund_id == again.refund_id and again.status is RefundStatus.SUCCESS
    assert len(sandbox_order(sandbox.base_url, "C0000001")["refunds"]) == 1


@pytest.mark.anyio
async def test_a_one_shot_fault_on_the_refund_query_hits_one_query(
    wechat_client: WeChatPayClient, sandbox: WeChatSandbox
) -> None:
    await _paid(wechat_client)
    await _refund(wechat_client, "R0000001", 100)
    sandbox.fault_next("GET", REFUNDS + "/", Faults(system_error_after_commit=True))
    with pytest.raises(WeChatApiError) as caught:
        await wechat_client.query_refund(out_refund_no="R0000001")
    assert caught.value.status == 500
    assert (await wechat_client.query_refund(out_refund_no="R0000001")).refund_fen == 100


@pytest.mark.anyio
async def test_a_different_body_under_the_same_refund_number_is_refused(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client)
    await _refund(wechat_client, "R0000001", 300)
    sandbox_clock.advance(60)
    err = await _refused(wechat_client, "R0000001", 400)
    assert (err.status, err.code) == (400, "INVALID_REQUEST") and "不一致" in err.message
    assert (await wechat_client.query_refund(out_refund_no="R0000001")).refund_fen == 300


@pytest.mark.anyio
async def test_a_second_refund_within_a_minute_is_frequency_limited_and_not_created(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client)
    await _refund(wechat_client, "R0000001", 100)
    sandbox_clock.advance(59)
    limited = await _refused(wechat_client, "R0000002", 100)
    assert (limited.status, limited.code) == (429, "FREQUENCY_LIMITED") and limited.outcome_unknown
    with pytest.raises(WeChatApiError) as missing:
        await wechat_client.query_refund(out_refund_no="R0000002")
    assert (missing.value.status, missing.value.code) == (404, "RESOURCE_NOT_EXISTS")
    sandbox_clock.advance(1)
    assert (await _refund(wechat_client, "R0000002", 100)).status is RefundStatus.PROCESSING


@pytest.mark.anyio
async def test_magic_amounts_end_abnormal_and_closed_and_closed_frees_the_amount(
    wechat_client: WeChatPayClient, sandbox_clock: ManualClock
) -> None:
    await _paid(wechat_client, amount=10000)
    await _refund(wechat_client, "R4005", 4005, total=10000)
    sandbox_clock.advance(60)
    await _refund(wechat_client, "R4006", 4006, total=10000)
    sandbox_clock.advance(60)
    abnormal = await wechat_client.query_refund(out_refund_no="R4005")
    closed = await wechat_client.query_refund(out_refund_no="R4006")
    assert abnormal.status is RefundStatus.ABNORMAL
    assert closed.status is RefundStatus.CLOSED and closed.success_time is None
    # the ABNORMAL refund still counts against the paid total, the CLOSED one does not
    assert (await _refund(wechat_client, "R0000003", 5995, total=10000)).refund_fen == 5995


@pytest.mark.anyio
async def test_a_merchant_balance_too_low_answers_not_enough(
    wechat_client: WeChatPayClient,
) -> None:
    await _paid(wechat_client, amount=10000)
    err = await _refused(wechat_client, "R4007", 4007, total=10000)
    assert (err.status, err.code) == (403, "NOT_ENOUGH")


@pytest.mark.anyio
async def test_an_unpaid_closed_unknown_or_reversed_order_cannot_be_refunded(
    wechat_client: WeChatPayClient,
) -> None:
    await wechat_client.create_native(
        out_trade_no="N0000001",
        amount_fen=1000,
        description="收银 sale",
        notify_url="https://pos.example.com/notify",
    )
    unpaid = await _refused(wechat_client, "R0000001", 100, order="N0000001")
    assert (unpaid.status, unpaid.code) == (400, "INVALID_REQUEST")
    await wechat_client.close(out_trade_no="N0000001")
    closed = await _refused(wechat_client, "R0000001", 100, order="N0000001")
    assert (closed.status, closed.code) == (400, "INVALID_REQUEST")
    unknown = await _refused(wechat_client, "R0000001", 100, order="C0000009")
    assert (unknown.status, unknown.code) == (404, "RESOURCE_NOT_EXISTS")
    await _paid(wechat_client)
    await wechat_client.reverse(out_trade_no="C0000001")
    revoked = await _refused(wechat_client, "R0000001", 100)
    assert (revoked.status, revoked.code) == (400, "INVALID_REQUEST")


@pytest.mark.anyio
async def test_the_total_must_be_the_order_total(wechat_client: WeChatPayClient) -> None:
    await _paid(wechat_client)
    err = await _refused(wechat_client, "R0000001", 100, total=999)
    assert (err.status, err.code) == (400, "INVALID_REQUEST")


@pytest.mark.anyio
async def test_a_refunded_order_cannot_be_reversed(wechat_client: WeChatPayClient) -> None:
    await _paid(wechat_client)
    await _refund(wechat_client, "R0000001", 100)
    with pytest.raises(WeChatApiError) as caught:
        await wechat_client.reverse(out_trade_no="C0000001")
    assert (caught.value.status, caught.value.code) == (400, "INVALID_REQUEST")


@pytest.mark.anyio
async def test_an_order_takes_at_most_fifty_refunds(quick_client: WeChatPayClient) -> None:
    await _paid(quick_client)
    for n in range(50):
        await _refund(quick_client, f"R{n:07d}", 1)
    err = await _refused(quick_client, "R0000050", 1)
    assert (err.status, err.code) == (400, "INVALID_REQUEST")


@pytest.mark.anyio
async def test_without_interval_or_delay_a_refund_is_processing_then_success_at_once(
    quick_client: WeChatPayClient,
) -> None:
    await _paid(quick_client)
    assert (await _refund(quick_client, "R0000001", 1)).status is RefundStatus.PROCESSING
    assert (await _refund(quick_client, "R0000002", 1)).status is RefundStatus.PROCESSING
    assert (await quick_client.query_refund(out_refund_no="R0000002")).status == "SUCCESS"


@pytest.mark.anyio
async def test_refunds_survive_a_sandbox_restart(sandbox_state_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    for path in sandbox_state_dir.iterdir():
        if path.is_file() and not path.name.startswith("orders.sqlite"):
            (state / path.name).write_bytes(path.read_bytes())
    clock = ManualClock()
    creds = load_merchant_json(state / "merchant.json")
    with WeChatSandbox(state, clock=clock, persist=True) as first:
        async with WeChatPayClient(creds, base_urls=[first.base_url], clock=clock) as client:
            await _paid(client)
            created = await _refund(client, "R0000001", 250)
    clock.advance(60)
    with WeChatSandbox(state, clock=clock, persist=True) as second:
        async with WeChatPayClient(creds, base_urls=[second.base_url], clock=clock) as client:
            again = await client.query_refund(out_refund_no="R0000001")
            assert (again.refund_id, again.status) == (created.refund_id, RefundStatus.SUCCESS)
            assert (await _refund(client, "R0000001", 250)).refund_id == created.refund_id
            assert (await client.query(out_trade_no="C0000001")).trade_state == "REFUND"
            assert [
                r["refund_fen"] for r in sandbox_order(second.base_url, "C0000001")["refunds"]
            ] == [250]


# ---------------------------------------------------------------- the wire, by hand


AMOUNT = {"refund": 100, "total": 100, "currency": "CNY"}
GOODS = {
    "merchant_goods_id": "6901234567890",
    "wechatpay_goods_id": "1001",
    "goods_name": "矿泉水 550ml",
    "unit_price": 50,
    "refund_amount": 100,
    "refund_quantity": 2,
}


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"out_trade_no": "C0000001", "out_refund_no": "R0000001"}
    body["amount"] = AMOUNT
    return _drop({**body, **overrides})


def _drop(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the fields set to `...`, also inside goods_detail entries."""
    out = {k: v for k, v in data.items() if v is not ...}
    if isinstance(out.get("goods_detail"), list):
        out["goods_detail"] = [_drop(item) for item in out["goods_detail"]]
    return out


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sub_mchid": "1900000109"}, "/sub_mchid"),  # partner mode only
        ({"reason": None}, "/reason"),
        ({"reason": "x" * 81}, "/reason"),
        ({"out_refund_no": "R 1"}, "/out_refund_no"),
        ({"out_refund_no": "R1\n"}, "/out_refund_no"),
        ({"out_refund_no": "R" * 65}, "/out_refund_no"),
        ({"amount": {"refund": 100, "total": 100}}, "/amount/currency"),
        ({"amount": {"refund": 0, "total": 100, "currency": "CNY"}}, "/amount/refund"),
        ({"out_trade_no": ...}, ""),
        ({"funds_account": "UNAVAILABLE"}, "/funds_account"),  # only AVAILABLE may be asked
        (
            {"amount": {**AMOUNT, "from": [{"account": "BASIC", "amount": 100}]}},
            "/amount/from/0/account",
        ),
        (
            {"amount": {**AMOUNT, "from": [{"account": "AVAILABLE", "amount": "100"}]}},
            "/amount/from/0/amount",
        ),
        ({"amount": {**AMOUNT, "from": {"account": "AVAILABLE", "amount": 100}}}, "/amount/from"),
        ({"goods_detail": [{**GOODS, "refund_quantity": ...}]}, "/goods_detail/0/refund_quantity"),
        ({"goods_detail": [{**GOODS, "unit_price": 1.5}]}, "/goods_detail/0/unit_price"),
        ({"goods_detail": [{**GOODS, "goods_name": 7}]}, "/goods_detail/0/goods_name"),
        ({"goods_detail": GOODS}, "/goods_detail"),
    ],
)
def test_malformed_refund_bodies_get_param_error(
    raw: Raw, overrides: dict[str, Any], field: str
) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    answer = raw.send("POST", REFUNDS, _body(**overrides))
    assert (answer.status_code, answer.json()["code"]) == (400, "PARAM_ERROR")
    assert answer.json()["detail"]["field"] == field


def test_a_refund_by_transaction_id_is_queried_without_mchid(raw: Raw) -> None:
    paid = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay()).json()
    body = _body(out_trade_no=..., transaction_id=paid["transaction_id"], out_refund_no="a|*@-_1")
    created = raw.send("POST", REFUNDS, body)
    assert created.status_code == 200, created.text
    raw.assert_signed(created)
    refund = created.json()
    assert refund["out_trade_no"] == "C0000001" and refund["channel"] == "ORIGINAL"
    assert refund["amount"]["payer_refund"] == 100 and refund["amount"]["currency"] == "CNY"
    queried = raw.send("GET", f"{REFUNDS}/a%7C*@-_1")
    assert queried.status_code == 200 and queried.json()["refund_id"] == refund["refund_id"]
    mismatch = _body(transaction_id=paid["transaction_id"], out_trade_no="C0000002")
    assert raw.send("POST", REFUNDS, mismatch).status_code == 400


def test_a_refund_with_the_documented_optional_fields_is_accepted(raw: Raw) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    sources = [{"account": "AVAILABLE", "amount": 60}, {"account": "UNAVAILABLE", "amount": 40}]
    body = _body(
        funds_account="AVAILABLE",
        amount={**AMOUNT, "from": sources},
        goods_detail=[GOODS, {**GOODS, "wechatpay_goods_id": ..., "goods_name": ...}],
    )
    created = raw.send("POST", REFUNDS, body)
    assert created.status_code == 200, created.text
    refund = created.json()
    assert refund["amount"]["from"] == sources and refund["funds_account"] == "AVAILABLE"
    assert raw.send("GET", f"{REFUNDS}/R0000001").json()["amount"]["from"] == sources
    assert raw.send("POST", REFUNDS, body).json()["refund_id"] == refund["refund_id"]


def test_refund_sources_that_do_not_add_up_to_the_refund_are_refused(
    raw: Raw, sandbox: WeChatSandbox
) -> None:
    raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay())
    sources = [{"account": "AVAILABLE", "amount": 60}, {"account": "UNAVAILABLE", "amount": 30}]
    answer = raw.send("POST", REFUNDS, _body(amount={**AMOUNT, "from": sources}))
    assert (answer.status_code, answer.json()["code"]) == (400, "PARAM_ERROR")
    assert answer.json()["detail"]["field"] == "/amount/from"
    raw.assert_signed(answer, error_id=268435461)  # a rule broken, not an unknown field
    assert sandbox_order(sandbox.base_url, "C0000001")["refunds"] == []


def test_an_unknown_refund_number_is_resource_not_exists(raw: Raw) -> None:
    answer = raw.send("GET", f"{REFUNDS}/R0000404")
    assert (answer.status_code, answer.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    raw.assert_signed(answer, error_id=268512771)


# ---------------------------------------------------------------- strict parsing


GOOD: dict[str, Any] = {
    "refund_id": "50000000382019052709732678859",
    "out_refund_no": "R0000001",
    "transaction_id": "4200000925202101284997714292",
    "out_trade_no": "C0000001",
    "channel": "ORIGINAL",
    "user_received_account": "支付用户零钱",
    "create_time": "2024-05-01T10:00:00+08:00",
    "status": "SUCCESS",
    "success_time": "2024-05-01T10:00:02+08:00",
    "amount": {"total": 1000, "refund": 400, "currency": "CNY"},
}


def _with(**changes: Any) -> bytes:
    data = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return json.dumps(data).encode()


def test_a_good_refund_answer_parses() -> None:
    refund = parse_refund(_with(), out_refund_no="R0000001", out_trade_no="C0000001")
    assert refund == Refund(
        out_refund_no="R0000001",
        refund_id="50000000382019052709732678859",
        out_trade_no="C0000001",
        status=RefundStatus.SUCCESS,
        refund_fen=400,
        total_fen=1000,
        success_time="2024-05-01T10:00:02+08:00",
        user_received_account="支付用户零钱",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        _with(refund_id=...),
        _with(refund_id=50000000382019052709732678859),
        _with(refund_id="5000-1"),
        _with(status="DONE"),
        _with(status=None),
        _with(out_trade_no=...),
        _with(amount={"total": 1000, "refund": "400"}),
        _with(amount={"total": 1000, "refund": True}),
        _with(amount={"total": 1000, "refund": 0}),
        _with(amount={"total": 100, "refund": 400}),
        _with(amount={"refund": 400}),
        _with(amount=[]),
        _with(success_time="yesterday"),
        _with(user_received_account=5),
        _with(out_refund_no="R0000002"),
        _with(out_trade_no="C0000002"),
    ],
)
def test_garbage_refund_answers_are_rejected(body: bytes) -> None:
    with pytest.raises(WeChatResponseError):
        parse_refund(body, out_refund_no="R0000001", out_trade_no="C0000001")


def test_the_background_watch_asks_at_once_then_at_doubling_spacing_up_to_an_hour() -> None:
    schedule = FollowSchedule(60)
    asked: dict[int, list[float]] = {1: [], 2: []}
    for tick in range(1, 12 * 60):  # the watch wakes every 60 s for twelve hours
        now = tick * 60.0
        alive = [1] if tick < 5 else [1, 2] if tick < 200 else [1]  # refund 2 ends at tick 200
        for row_id in schedule.due(alive, now):
            asked[row_id].append(now)
            schedule.asked(row_id, now)
    gaps = [b - a for a, b in zip(asked[1], asked[1][1:], strict=False)]
    assert asked[1][0] == 60.0  # at once, the first time it is seen
    assert gaps[:7] == [60, 120, 240, 480, 960, 1920, 3600]
    assert set(gaps[6:]) == {FOLLOW_MAX_SPACING_S}
    assert asked[2][0] == 300.0 and asked[2][-1] < 200 * 60  # seen at tick 5, forgotten once ended
