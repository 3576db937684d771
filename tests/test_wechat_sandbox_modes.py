"""The sandbox's key modes (public key, platform certificate) and its two error-code spellings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox
from pos_terminal.payments import wechat_sign
from tests.conftest import SWITCHING
from tests.test_wechat_sandbox import Raw

CERTS = "/v3/certificates"
StartSandbox = Callable[..., Raw]  # a second sandbox on the session merchant, with options


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def raw(sandbox: WeChatSandbox, sandbox_clock: ManualClock, http: httpx.Client) -> Raw:
    return Raw(sandbox, sandbox_clock, http)


@pytest.fixture
def other_sandbox(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, http: httpx.Client
) -> StartSandbox:
    """A second sandbox on the session merchant, with options, behind a raw client."""
    return lambda **options: Raw(start_sandbox(**options), sandbox_clock, http)


def _certificate(raw: Raw, answer: httpx.Response) -> tuple[str, x509.Certificate]:
    [entry] = answer.json()["data"]
    sealed = entry["encrypt_certificate"]
    assert sealed["algorithm"] == "AEAD_AES_256_GCM" and sealed["associated_data"] == "certificate"
    assert len(sealed["nonce"]) == 12
    pem = wechat_sign.decrypt_resource(
        raw.creds.apiv3_key,
        sealed["ciphertext"],
        nonce=sealed["nonce"],
        associated_data="certificate",
    )
    return entry["serial_no"], x509.load_pem_x509_certificate(pem)


def _signed_by(raw: Raw, answer: httpx.Response, key: rsa.RSAPublicKey, serial: str) -> None:
    wechat_sign.check_signed_message(
        answer.headers, answer.content, keys={serial: key}, now=raw.clock()
    )


# ---------------------------------------------------------------- platform certificate mode


def test_certificates_are_served_sealed_with_the_apiv3_key_in_the_real_shape(
    other_sandbox: StartSandbox,
) -> None:
    raw = other_sandbox(key_modes=SWITCHING)
    answer = raw.send("GET", CERTS, wechatpay_serial=None)
    assert answer.status_code == 200, answer.text
    serial, cert = _certificate(raw, answer)
    assert len(serial) == 40 and serial == serial.upper() and int(serial, 16) == cert.serial_number
    [entry] = answer.json()["data"]
    assert entry["effective_time"].endswith("+08:00") and entry["expire_time"].endswith("+08:00")
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 5 * 365
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    _signed_by(raw, answer, public, serial)  # no Wechatpay-Serial: certificate mode


def test_the_certificate_download_needs_a_signed_request(raw: Raw) -> None:
    answer = raw.http.get(raw.sandbox.base_url + CERTS)
    assert answer.status_code == 401 and answer.json()["code"] == "SIGN_ERROR"


def test_the_request_wechatpay_serial_picks_the_signing_key(other_sandbox: StartSandbox) -> None:
    raw = other_sandbox(key_modes=SWITCHING)
    serial, cert = _certificate(raw, raw.send("GET", CERTS, wechatpay_serial=None))
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    by_cert = raw.send("GET", raw.query_path("N404"), wechatpay_serial=serial)
    assert by_cert.headers["Wechatpay-Serial"] == serial
    _signed_by(raw, by_cert, public, serial)
    unnamed = raw.send("GET", raw.query_path("N404"), wechatpay_serial=None)
    _signed_by(raw, unnamed, public, serial)
    by_public_key = raw.send("GET", raw.query_path("N404"))
    _signed_by(raw, by_public_key, raw.creds.platform_public_key, raw.creds.public_key_id)
    with pytest.raises(wechat_sign.SignFormatError):  # the two keys really differ
        _signed_by(raw, by_public_key, public, raw.creds.public_key_id)


def test_a_public_key_only_merchant_has_no_certificates_and_always_signs_with_the_public_key(
    other_sandbox: StartSandbox,
) -> None:
    raw = other_sandbox(key_modes=["public_key"])
    answer = raw.send("GET", CERTS, wechatpay_serial=None)
    assert answer.status_code == 404 and answer.json()["code"] == "RESOURCE_NOT_EXISTS"
    assert "微信支付公钥" in answer.json()["message"]
    _signed_by(raw, answer, raw.creds.platform_public_key, raw.creds.public_key_id)


def test_a_certificate_only_merchant_signs_with_the_certificate_whatever_is_asked(
    other_sandbox: StartSandbox,
) -> None:
    raw = other_sandbox(key_modes=["certificate"])
    serial, cert = _certificate(raw, raw.send("GET", CERTS))
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    _signed_by(raw, raw.send("GET", raw.query_path("N404")), public, serial)


def test_unknown_key_modes_and_error_styles_are_refused(sandbox_state_dir: Path) -> None:
    with pytest.raises(ValueError, match="key_modes"):
        WeChatSandbox(sandbox_state_dir, key_modes=["platform"])
    with pytest.raises(ValueError, match="key_modes"):
        WeChatSandbox(sandbox_state_dir, key_modes=[])
    with pytest.raises(ValueError, match="error_style"):
        WeChatSandbox(sandbox_state_dir, error_style="camel")


def test_a_new_merchant_is_public_key_only_so_an_sdk_sending_no_serial_can_verify(
    tmp_path: Path, http: httpx.Client
) -> None:
    clock = ManualClock()
    with WeChatSandbox(tmp_path, clock=clock) as box:
        raw = Raw(box, clock, http)
        assert raw.send("GET", CERTS).status_code == 404
        answer = raw.send("GET", raw.query_path("N404"), wechatpay_serial=None)
        _signed_by(raw, answer, raw.creds.platform_public_key, raw.creds.public_key_id)
    info = json.loads((tmp_path / "merchant.json").read_text())
    assert info["key_modes"] == ["public_key"] and "platform_certificate" not in info


def test_a_switching_merchant_finds_its_certificate_in_merchant_json(
    tmp_path: Path, http: httpx.Client
) -> None:
    clock = ManualClock()
    merchant_json = tmp_path / "merchant.json"
    with WeChatSandbox(tmp_path, clock=clock, key_modes=SWITCHING) as box:
        info = json.loads(merchant_json.read_text())
        assert info["key_modes"] == ["public_key", "certificate"]
        pem = (tmp_path / info["platform_certificate"]).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        serial = info["platform_certificate_serial"]
        assert serial == f"{cert.serial_number:X}" and "PRIVATE" not in pem.decode()
        raw = Raw(box, clock, http)
        assert _certificate(raw, raw.send("GET", CERTS))[0] == serial
        public = cert.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        # a client set up from merchant.json, sending no Wechatpay-Serial, can verify the answer
        unnamed = raw.send("GET", raw.query_path("N404"), wechatpay_serial=None)
        _signed_by(raw, unnamed, public, serial)
    with WeChatSandbox(tmp_path, clock=clock):  # no key_modes: merchant.json's, still switching
        assert json.loads(merchant_json.read_text()) == info
    with WeChatSandbox(tmp_path, clock=clock, key_modes=["public_key"]):
        back = json.loads(merchant_json.read_text())
    assert back["key_modes"] == ["public_key"]
    assert {k: v for k, v in info.items() if not k.startswith("platform_cert")} == {
        **back,
        "key_modes": info["key_modes"],
    }


def test_merchant_json_key_modes_are_the_default(tmp_path: Path, http: httpx.Client) -> None:
    with WeChatSandbox(tmp_path):
        pass
    info = json.loads((tmp_path / "merchant.json").read_text())
    info["key_modes"] = list(SWITCHING)
    (tmp_path / "merchant.json").write_text(json.dumps(info))
    clock = ManualClock()
    with WeChatSandbox(tmp_path, clock=clock) as box:
        assert Raw(box, clock, http).send("GET", CERTS).status_code == 200
    assert "platform_certificate" in json.loads((tmp_path / "merchant.json").read_text())


def test_a_state_dir_from_before_certificate_mode_gets_a_certificate(
    tmp_path: Path, http: httpx.Client
) -> None:
    with WeChatSandbox(tmp_path):
        pass
    for name in ("platform_cert.pem", "sandbox_platform_cert_private.pem"):
        (tmp_path / name).unlink()
    info = json.loads((tmp_path / "merchant.json").read_text())
    del info["key_modes"]
    (tmp_path / "merchant.json").write_text(json.dumps(info))
    clock = ManualClock()
    with WeChatSandbox(tmp_path, clock=clock) as box:  # no key_modes: public key only
        assert Raw(box, clock, http).send("GET", CERTS).status_code == 404
    assert (tmp_path / "platform_cert.pem").exists()
    with WeChatSandbox(tmp_path, clock=clock, key_modes=SWITCHING) as box:
        assert Raw(box, clock, http).send("GET", CERTS).status_code == 200


# ---------------------------------------------------------------- error spellings


def test_errors_use_underscore_codes_by_default(raw: Raw) -> None:
    assert raw.send("GET", raw.query_path("N404")).json()["code"] == "ORDER_NOT_EXIST"
    answer = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4003}))
    assert answer.json()["code"] == "NOT_ENOUGH"


def test_legacy_style_answers_the_old_spellings(other_sandbox: StartSandbox) -> None:
    raw = other_sandbox(error_style="legacy")
    missing = raw.send("GET", raw.query_path("N404"))
    assert missing.json()["code"] == "ORDERNOTEXIST"
    raw.assert_signed(missing, error_id=268512771)
    poor = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4003}))
    assert (poor.status_code, poor.json()["code"]) == (403, "NOTENOUGH")
    again = raw.send("POST", "/v3/pay/transactions/codepay", raw.codepay(amount={"total": 4003}))
    assert again.json()["code"] == "NOTENOUGH"  # the replayed first error is spelled the same
    raw.send("POST", "/v3/pay/transactions/native", raw.native())
    raw.http.post(
        raw.sandbox.base_url + "/sandbox/faults", json={"system_error_after_commit": True}
    )
    assert raw.send("GET", raw.query_path("N0000001")).json()["code"] == "SYSTEMERROR"
    raw.sandbox.set_faults(Faults())
    path = "/v3/pay/transactions/out-trade-no/N0000001/close"
    assert raw.send("POST", path, {"mchid": raw.creds.mchid}).status_code == 204
    again_native = raw.send("POST", "/v3/pay/transactions/native", raw.native())
    assert again_native.json()["code"] == "ORDERCLOSED"
    # codes without an older spelling stay as they are
    bad = raw.send("POST", "/v3/pay/transactions/native", raw.native(extra=None))
    assert bad.json()["code"] == "PARAM_ERROR" and bad.json()["detail"]["field"] == "/extra"


def test_nulls_are_refused_with_param_error_detail(raw: Raw) -> None:
    answer = raw.send("POST", "/v3/pay/transactions/native", raw.native(attach=None))
    assert answer.status_code == 400
    assert answer.json()["detail"] == {
        "field": "/attach",
        "value": None,
        "issue": "不允许为null null is not allowed",
        "location": "body",
    }
