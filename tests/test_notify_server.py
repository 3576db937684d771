"""The notification receiver over real HTTP: signed, encrypted events in, journal rows out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hw_mocks.wechat_sandbox import notify
from pos_terminal.journal import Journal, Method, PaymentRow, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatCredentials, load_merchant_json
from tests.helpers import sandbox_merchant
from tests.notify_receiver import Receiver, receiver_thread

Keys = tuple[WeChatCredentials, object]  # our credentials, the platform (WeChat) private key
ORDER = "T0001NOTIFY00001"
TXN = "4200000000202611260000000001"


@pytest.fixture
def keys(sandbox_state_dir: Path) -> tuple[WeChatCredentials, object]:
    merchant_json, platform = sandbox_merchant(sandbox_state_dir)
    return load_merchant_json(merchant_json), platform


@pytest.fixture
def server(tmp_path: Path, keys: Keys) -> Iterator[Receiver]:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.open()
    journal.begin_sale(
        method=Method.WECHAT_NATIVE,
        amount_fen=1234,
        out_trade_no=ORDER,
        masked_code=None,
        store_id="S1",
        terminal_id="T1",
        now=datetime.now().astimezone(),
    )
    journal.close()
    with receiver_thread(keys[0], tmp_path / "journal.sqlite") as receiver:
        yield receiver


def envelope(
    creds: WeChatCredentials,
    *,
    apiv3_key: str | None = None,
    state: str = "SUCCESS",
    total: int = 1234,
    mchid: str | None = None,
) -> bytes:
    resource = {
        "mchid": mchid or creds.mchid,
        "appid": creds.appid,
        "out_trade_no": ORDER,
        "transaction_id": TXN,
        "trade_state": state,
        "success_time": "2026-11-26T01:30:00+08:00",
        "amount": {"total": total},
    }
    key = apiv3_key or creds.apiv3_key
    return notify.envelope(
        key, "TRANSACTION.SUCCESS", resource, event_id="EV-2026112600000001", at=time.time()
    )


def post(
    server: Receiver,
    keys: Keys,
    body: bytes,
    *,
    age_s: float = 0,
    signature: str | None = None,
    signed_body: bytes | None = None,
) -> httpx.Response:
    creds, platform = keys
    ts, nonce = str(int(time.time() - age_s)), wechat_sign.new_nonce()
    message = wechat_sign.response_message(
        ts, nonce, signed_body if signed_body is not None else body
    )
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": creds.public_key_id,
        "Wechatpay-Signature": signature or wechat_sign.sign(platform, message),  # type: ignore[arg-type]
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Content-Type": "application/json",
    }
    return httpx.post(server.url, content=body, headers=headers, timeout=5)


def rows_of(server: Receiver) -> list[PaymentRow]:
    return server.journal(lambda j: j.rows())


def state_of(server: Receiver) -> tuple[RowState, str | None, int]:
    def read(journal: Journal) -> tuple[RowState, str | None, int]:
        row = journal.by_out_trade_no(ORDER)
        assert row is not None
        approvals = sum(1 for e in journal.events(row.id) if e[1] == "APPROVED")
        return row.state, row.transaction_id, approvals

    return server.journal(read)


def test_a_signed_payment_notification_approves_the_row_once(server: Receiver, keys: Keys) -> None:
    body = envelope(keys[0])
    assert post(server, keys, body).status_code == 204
    assert post(server, keys, body).status_code == 204  # WeChat delivers duplicates
    assert state_of(server) == (RowState.APPROVED, TXN, 1)
    [row] = rows_of(server)
    assert row.success_time == "2026-11-26T01:30:00+08:00"
    assert row.business_date == "2026-11-26"  # WeChat's time, in the merchant's zone


@pytest.mark.parametrize("lie", [{"total": 1233}, {"mchid": "1900009999"}])
def test_a_notification_that_contradicts_the_row_is_journaled_as_an_exception(
    server: Receiver, keys: Keys, lie: dict[str, Any]
) -> None:
    assert post(server, keys, envelope(keys[0], **lie)).status_code == 204
    [row] = rows_of(server)
    assert row.state is RowState.EXCEPTION
    assert str(next(iter(lie.values()))) in row.attention


def test_a_signature_probe_is_refused(server: Receiver, keys: Keys) -> None:
    answer = post(server, keys, envelope(keys[0]), signature="WECHATPAY/SIGNTEST/abc")
    assert answer.status_code == 400 and answer.json()["code"] == "FAIL"
    assert state_of(server)[0] is RowState.PENDING


@pytest.mark.parametrize("case", ["stale", "tampered", "wrong_apiv3_key", "garbage"])
def test_bad_notifications_are_refused_and_change_nothing(
    server: Receiver, keys: Keys, case: str
) -> None:
    body = envelope(keys[0])
    if case == "stale":
        answer = post(server, keys, body, age_s=600)
    elif case == "tampered":
        answer = post(server, keys, body.replace(b"SUCCESS", b"SUCCESs"), signed_body=body)
    elif case == "wrong_apiv3_key":
        answer = post(server, keys, envelope(keys[0], apiv3_key="x" * 32))
    else:
        answer = post(server, keys, b"\x00not json")
    assert answer.status_code == 400
    assert state_of(server)[0] is RowState.PENDING
    assert server.server.refused == 1 and server.server.accepted == 0


def test_a_payment_for_a_closed_order_is_flagged_not_approved(server: Receiver, keys: Keys) -> None:
    def close(journal: Journal) -> None:
        row = journal.by_out_trade_no(ORDER)
        assert row is not None
        journal.transition(row.id, RowState.CLOSED, now=datetime.now().astimezone())

    server.journal(close)
    assert post(server, keys, envelope(keys[0])).status_code == 204
    assert state_of(server)[0] is RowState.CLOSED
