"""An independent client, the wechatpayv3 SDK (public-key and certificate modes), vs the sandbox.

The SDK signs its own requests (json.dumps with ASCII escapes) and verifies the sandbox's answers
with its own code; only its gateway attribute is pointed at the sandbox. In certificate mode the
SDK downloads /v3/certificates inside its constructor, from the host `Core.__init__` has just set:
there a `Core` subclass whose `_gate_way` always reads the sandbox URL stands in for the SDK's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wechatpayv3.core
from cryptography import x509
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, build_authorization, rsa_verify

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox
from pos_terminal.payments import wechat_sign
from tests.conftest import SWITCHING


def _merchant(sandbox: WeChatSandbox) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(sandbox.merchant_json.read_text(encoding="utf-8"))
    folder = sandbox.merchant_json.parent
    info["private_pem"] = (folder / info["merchant_private_key"]).read_text()
    info["public_pem"] = (folder / info["platform_public_key"]).read_text()
    return info


@pytest.fixture
def sdk(sandbox: WeChatSandbox) -> Iterator[WeChatPay]:
    info = _merchant(sandbox)
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=info["mchid"],
        private_key=info["private_pem"],
        cert_serial_no=info["merchant_serial"],
        appid=info["appid"],
        apiv3_key=info["apiv3_key"],
        notify_url="https://pos.example.com/wechatpay/notify",
        public_key=info["public_pem"],
        public_key_id=info["public_key_id"],
        timeout=(5, 10),
    )
    # the SDK hard-codes https://api.mch.weixin.qq.com in its core; only that attribute changes
    pay._core._gate_way = sandbox.base_url
    yield pay


def test_sdk_creates_queries_and_closes_a_native_order(
    sdk: WeChatPay, sandbox: WeChatSandbox
) -> None:
    code, text = sdk.pay(
        description="收银台 sale",  # the SDK sends this as \\uXXXX escapes; signatures still match
        out_trade_no="SDK0000001",
        amount={"total": 100},
        time_expire="2099-01-01T00:00:00+08:00",
    )
    assert code == 200, text
    code_url = json.loads(text)["code_url"]
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")

    code, text = sdk.query(out_trade_no="SDK0000001")
    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"

    code, text = sdk.close(out_trade_no="SDK0000001")
    assert code == 204, text
    code, text = sdk.query(out_trade_no="SDK0000001")
    assert code == 200 and json.loads(text)["trade_state"] == "CLOSED"


def test_sdk_queries_a_paid_order_by_transaction_id(sdk: WeChatPay, sandbox: WeChatSandbox) -> None:
    _, text = sdk.pay(description="sale", out_trade_no="SDK0000002", amount={"total": 1})
    with httpx.Client(verify=False) as http:
        http.post(
            sandbox.base_url + "/sandbox/scan", json={"code_url": json.loads(text)["code_url"]}
        )
    code, text = sdk.query(out_trade_no="SDK0000002")
    transaction_id = json.loads(text)["transaction_id"]
    code, text = sdk.query(transaction_id=transaction_id)
    assert code == 200 and json.loads(text)["out_trade_no"] == "SDK0000002"


def test_sdk_codepay_userpaying_and_reverse(sdk: WeChatPay) -> None:
    code, text = sdk.pay(
        description="sale",
        out_trade_no="SDK0000003",
        amount={"total": 4002},
        payer={"auth_code": "134567890123456789"},
        scene_info={"device_id": "T0001", "store_info": {"out_id": "SH-0001"}},
        pay_type=WeChatPayType.CODEPAY,
    )
    assert (code, json.loads(text)) == (202, {"trade_state": "USERPAYING"})
    code, text = sdk.codepay_reverse(out_trade_no="SDK0000003")
    assert code == 200 and json.loads(text)["out_trade_no"] == "SDK0000003"


def test_sdk_sees_sandbox_errors_as_status_and_body(sdk: WeChatPay) -> None:
    code, text = sdk.query(out_trade_no="SDK0000404")
    assert code == 404 and json.loads(text)["code"] == "ORDER_NOT_EXIST"


def test_sdk_refuses_the_sandbox_unsigned_and_tampered_faults(
    sdk: WeChatPay, sandbox: WeChatSandbox
) -> None:
    sandbox.set_faults(Faults(sign_responses=False))
    with pytest.raises(Exception, match="does not support this algorithm"):
        sdk.pay(description="sale", out_trade_no="SDK0000004", amount={"total": 1})
    sandbox.set_faults(Faults(tamper_body=True))
    with pytest.raises(Exception, match="failed to verify the signature"):
        sdk.pay(description="sale", out_trade_no="SDK0000005", amount={"total": 1})


def test_sdk_authorization_headers_parse_and_verify_with_our_code(sandbox: WeChatSandbox) -> None:
    info = _merchant(sandbox)
    key = wechat_sign.load_private_key(info["private_pem"].encode())
    body = {"mchid": info["mchid"]}
    header = build_authorization(
        "/v3/pay/transactions/out-trade-no/X1/close",
        "POST",
        info["mchid"],
        info["merchant_serial"],
        key,
        data=body,
    )
    auth = wechat_sign.parse_authorization(header)
    message = wechat_sign.request_message(
        "POST",
        "/v3/pay/transactions/out-trade-no/X1/close",
        auth.timestamp,
        auth.nonce_str,
        json.dumps(body).encode(),
    )
    assert wechat_sign.verify(key.public_key(), message, auth.signature)


# ---------------------------------------------------------------- certificate mode


def _cert_mode_sdk(info: dict[str, Any], cert_dir: Path, apiv3_key: str | None = None) -> WeChatPay:
    """The SDK without a public key: it loads cert_dir, or downloads the platform certificates."""
    return WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=info["mchid"],
        private_key=info["private_pem"],
        cert_serial_no=info["merchant_serial"],
        appid=info["appid"],
        apiv3_key=apiv3_key or info["apiv3_key"],
        notify_url="https://pos.example.com/wechatpay/notify",
        cert_dir=str(cert_dir),
        timeout=(5, 10),
    )


@pytest.fixture
def sdk_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Set `sdk_host[0]` to a sandbox URL: SDK cores made afterwards talk only to it."""
    host = ["http://127.0.0.1:9"]

    class SandboxCore(wechatpayv3.core.Core):  # type: ignore[misc]
        # Core.__init__ assigns the production host and downloads certificates at once
        _gate_way = property(lambda self: host[0], lambda self, value: None)

    monkeypatch.setattr(wechatpayv3.core, "Core", SandboxCore)
    yield host


@pytest.fixture
def switching(start_sandbox: Callable[..., WeChatSandbox]) -> WeChatSandbox:
    """A merchant part-way through the key switch: the one that still has platform certificates."""
    return start_sandbox(key_modes=SWITCHING)


def test_sdk_in_certificate_mode_downloads_caches_and_verifies_the_platform_certificate(
    switching: WeChatSandbox, sdk_host: list[str], tmp_path: Path
) -> None:
    sandbox = switching
    sdk_host[0] = sandbox.base_url
    info = _merchant(sandbox)
    pay = _cert_mode_sdk(info, tmp_path / "certs")
    [cached] = (tmp_path / "certs").iterdir()  # the SDK caches "<serial>.pem"
    platform_cert = (sandbox.merchant_json.parent / "platform_cert.pem").read_text()
    assert cached.read_text() == platform_cert and len(cached.stem) == 40
    code, text = pay.pay(description="sale", out_trade_no="SDKC000001", amount={"total": 1})
    assert code == 200, text  # the SDK sends no Wechatpay-Serial: a certificate-signed answer
    code, text = pay.query(out_trade_no="SDKC000001")
    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"
    sandbox.set_faults(Faults(tamper_body=True))
    with pytest.raises(Exception, match="failed to verify the signature"):
        pay.query(out_trade_no="SDKC000001")


def test_sdk_in_certificate_mode_uses_a_cert_dir_seeded_from_merchant_json(
    switching: WeChatSandbox, tmp_path: Path
) -> None:
    sandbox = switching
    info = _merchant(sandbox)
    pem = (sandbox.merchant_json.parent / info["platform_certificate"]).read_text()
    serial = info["platform_certificate_serial"]
    assert serial == f"{x509.load_pem_x509_certificate(pem.encode()).serial_number:X}"
    (tmp_path / f"{serial}.pem").write_text(pem)  # as the SDK caches a downloaded certificate
    pay = _cert_mode_sdk(info, tmp_path)  # reads the cache: no download in the constructor
    pay._core._gate_way = sandbox.base_url
    code, text = pay.pay(
        description="sale",
        out_trade_no="SDKC000002",
        amount={"total": 4002},
        payer={"auth_code": "134567890123456780"},
        scene_info={"device_id": "T0001", "store_info": {"out_id": "SH-0001"}},
        pay_type=WeChatPayType.CODEPAY,
    )
    assert (code, json.loads(text)) == (202, {"trade_state": "USERPAYING"})
    code, text = pay.codepay_reverse(out_trade_no="SDKC000002")
    assert code == 200 and json.loads(text)["out_trade_no"] == "SDKC000002"


def test_sdk_finds_no_certificate_with_a_wrong_apiv3_key_or_a_public_key_only_merchant(
    switching: WeChatSandbox,
    sandbox_state_dir: Path,
    sandbox_clock: ManualClock,
    sdk_host: list[str],
    tmp_path: Path,
) -> None:
    sdk_host[0] = switching.base_url
    info = _merchant(switching)
    with pytest.raises(Exception, match="No wechatpay platform certificate"):
        _cert_mode_sdk(info, tmp_path / "a", apiv3_key="0" * 32)
    with WeChatSandbox(sandbox_state_dir, clock=sandbox_clock, key_modes=["public_key"]) as box:
        sdk_host[0] = box.base_url
        with pytest.raises(Exception, match="No wechatpay platform certificate"):
            _cert_mode_sdk(info, tmp_path / "b")


def test_our_signatures_and_resources_open_with_the_sdk() -> None:
    key = wechat_sign.generate_private_key()
    body = '{"trade_state":"SUCCESS"}'
    signature = wechat_sign.sign(
        key, wechat_sign.response_message("1700000000", "NONCE", body.encode())
    )
    assert rsa_verify("1700000000", "NONCE", body, signature, key.public_key())
    apiv3_key = "0123456789abcdefABCDEF0123456789"
    sealed = wechat_sign.encrypt_resource(
        apiv3_key, b'{"out_trade_no":"X1"}', nonce="abcdefghijkl", associated_data="transaction"
    )
    assert aes_decrypt("abcdefghijkl", sealed, "transaction", apiv3_key) == '{"out_trade_no":"X1"}'
