"""Platform-certificate mode (reference §1.2, §1.4): key set, client download, notifications.

The client and the notification receiver pick WeChat's key by `Wechatpay-Serial`; a certificate
serial they do not know makes them download `/v3/certificates` once, checked strictly.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_mocks.wechat_sandbox import Faults, ManualClock, WeChatSandbox, notify
from pos_terminal.notify_server import certificate_refresh
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import (
    TradeState,
    WeChatCredentials,
    WeChatPayClient,
    WeChatResponseError,
    WeChatTransportError,
    load_merchant_json,
)
from pos_terminal.payments.wechat_keys import (
    CertificateError,
    PlatformKeys,
    looks_like_certificate_serial,
)
from pos_terminal.payments.wechat_notify import (
    NotificationError,
    UnknownNotificationSigner,
    open_notification,
)
from tests.conftest import SWITCHING
from tests.notify_receiver import Receiver, receiver_thread

pytestmark = pytest.mark.anyio

CERTS = "GET /v3/certificates"
APIV3_KEY = "0123456789abcdefABCDEF0123456789"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0
CST = timezone(timedelta(hours=8))
NOTIFY = "https://pos.example.com/wechatpay/notify"


# ---------------------------------------------------------------- certificates made here


def _cert_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    serial: int,
    *,
    start: float = NOW - DAY,
    end: float = NOW + 5 * 365 * DAY,
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Tenpay.com Root CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime.fromtimestamp(start, UTC))
        .not_valid_after(datetime.fromtimestamp(end, UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, CST).isoformat()


def _entry(
    pem: bytes,
    serial_no: str,
    *,
    apiv3_key: str = APIV3_KEY,
    effective: float = NOW - DAY,
    expire: float = NOW + 5 * 365 * DAY,
) -> dict[str, Any]:
    nonce = wechat_sign.new_nonce(12)
    sealed = wechat_sign.encrypt_resource(
        apiv3_key, pem, nonce=nonce, associated_data="certificate"
    )
    return {
        "serial_no": serial_no,
        "effective_time": _rfc3339(effective),
        "expire_time": _rfc3339(expire),
        "encrypt_certificate": {
            "algorithm": "AEAD_AES_256_GCM",
            "nonce": nonce,
            "associated_data": "certificate",
            "ciphertext": sealed,
        },
    }


def _body(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"data": list(entries)}).encode()


CERT_KEY = wechat_sign.generate_private_key()
SERIAL_INT = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
SERIAL = f"{SERIAL_INT:X}"
CERT_PEM = _cert_pem(CERT_KEY, SERIAL_INT)
VALID_ENTRY = _entry(CERT_PEM, SERIAL)


def _numbers(key: rsa.RSAPublicKey) -> rsa.RSAPublicNumbers:
    return key.public_numbers()


# ---------------------------------------------------------------- serials and key choice


def test_certificate_serials_are_40_hex_and_public_key_ids_are_not() -> None:
    assert looks_like_certificate_serial(SERIAL)
    assert looks_like_certificate_serial(SERIAL.lower())
    for other in ("PUB_KEY_ID_0000000000000024101100397200000006", SERIAL[:-1], SERIAL + "0", ""):
        assert not looks_like_certificate_serial(other)
    assert not looks_like_certificate_serial(SERIAL[:-1] + "G")
    assert not looks_like_certificate_serial(SERIAL + "\n")


def _signed_headers(key: rsa.RSAPrivateKey, serial: str, body: bytes, ts: float) -> dict[str, str]:
    stamp, nonce = str(int(ts)), wechat_sign.new_nonce()
    message = wechat_sign.response_message(stamp, nonce, body)
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": wechat_sign.sign(key, message),
        "Wechatpay-Signature-Type": wechat_sign.SCHEME,
    }


def test_the_signature_is_checked_with_the_key_its_serial_names() -> None:
    other = wechat_sign.generate_private_key()
    keys = {SERIAL: CERT_KEY.public_key(), "PUB_KEY_ID_1": other.public_key()}
    body = b'{"a":1}'
    wechat_sign.check_signed_message(
        _signed_headers(CERT_KEY, SERIAL, body, NOW), body, keys=keys, now=NOW
    )
    wechat_sign.check_signed_message(
        _signed_headers(other, "PUB_KEY_ID_1", body, NOW), body, keys=keys, now=NOW
    )
    with pytest.raises(wechat_sign.SignFormatError, match="does not match"):  # swapped keys
        wechat_sign.check_signed_message(
            _signed_headers(other, SERIAL, body, NOW), body, keys=keys, now=NOW
        )
    unknown = "AB" * 20
    with pytest.raises(wechat_sign.UnknownSignerError) as caught:
        wechat_sign.check_signed_message(
            _signed_headers(CERT_KEY, unknown, body, NOW), body, keys=keys, now=NOW
        )
    assert caught.value.serial == unknown
    headers = _signed_headers(CERT_KEY, SERIAL, body, NOW)
    del headers["Wechatpay-Serial"]
    with pytest.raises(wechat_sign.UnknownSignerError) as caught:
        wechat_sign.check_signed_message(headers, body, keys=keys, now=NOW)
    assert caught.value.serial == ""


# ---------------------------------------------------------------- PlatformKeys


def test_keys_from_credentials_hold_the_public_key_under_its_id(sandbox: WeChatSandbox) -> None:
    creds = load_merchant_json(sandbox.merchant_json)
    keys = PlatformKeys.from_credentials(creds)
    snapshot = keys.snapshot()
    assert list(snapshot) == [creds.public_key_id] and creds.public_key_id in keys
    assert _numbers(snapshot[creds.public_key_id]) == _numbers(creds.platform_public_key)
    snapshot.clear()  # a copy: the key set is unchanged
    assert creds.public_key_id in keys


def test_a_valid_certificate_is_added_under_its_serial() -> None:
    keys = PlatformKeys({"PUB_KEY_ID_1": wechat_sign.generate_private_key().public_key()})
    assert keys.add_certificates(_body(VALID_ENTRY), APIV3_KEY, NOW) == [SERIAL]
    assert set(keys.snapshot()) == {"PUB_KEY_ID_1", SERIAL}
    assert _numbers(keys.snapshot()[SERIAL]) == _numbers(CERT_KEY.public_key())
    assert PlatformKeys().add_certificates(b'{"data":[]}', APIV3_KEY, NOW) == []


def _ec_entry() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _entry(_cert_pem(key, SERIAL_INT), SERIAL)


def _sealed_entry(plaintext: bytes) -> dict[str, Any]:
    entry = copy.deepcopy(VALID_ENTRY)
    sealed = entry["encrypt_certificate"]
    sealed["ciphertext"] = wechat_sign.encrypt_resource(
        APIV3_KEY, plaintext, nonce=sealed["nonce"], associated_data="certificate"
    )
    return entry


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    entry = copy.deepcopy(VALID_ENTRY)
    *parents, last = path
    node = entry
    for name in parents:
        node = node[name]
    node[last] = value
    return entry


@pytest.mark.parametrize(
    ("entry", "now", "problem"),
    [
        (_entry(CERT_PEM, SERIAL, apiv3_key="x" * 32), NOW, "cannot decrypt"),
        (_with(("encrypt_certificate", "algorithm"), "AEAD_AES_128_GCM"), NOW, "algorithm"),
        (_with(("encrypt_certificate", "associated_data"), "transaction"), NOW, "decrypt"),
        (_with(("encrypt_certificate", "nonce"), "\ud800" * 12), NOW, "decrypt"),
        (_with(("serial_no",), "AB" * 20), NOW, "serial is " + SERIAL),
        (_with(("expire_time",), "2026-01-01T00:00:00"), NOW, "no UTC offset"),
        (_with(("effective_time",), "yesterday"), NOW, "RFC 3339"),
        (_with(("encrypt_certificate",), "sealed"), NOW, "not an object"),
        (_ec_entry(), NOW, "not an RSA key"),
        (
            _sealed_entry(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            NOW,
            "X.509",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_the_problem_and_adds_nothing(
    entry: dict[str, Any], now: float, problem: str
) -> None:
    keys = PlatformKeys()
    with pytest.raises(CertificateError, match=problem):
        keys.add_certificates(_body(VALID_ENTRY, entry), APIV3_KEY, now)
    assert keys.snapshot() == {}  # all or nothing: the valid first entry was not added either


OTHER_SERIAL_INT = 0x0157F09EFDC096DE15EBE81A47057A7232F1B8E2  # listed with its leading 0
OTHER_ENTRY = _entry(_cert_pem(CERT_KEY, OTHER_SERIAL_INT), f"{OTHER_SERIAL_INT:040x}")


@pytest.mark.parametrize(
    ("entry", "now"),
    [
        (VALID_ENTRY, NOW + 6 * 365 * DAY),  # the certificate has expired
        (VALID_ENTRY, NOW - 2 * DAY),  # ... or is not valid yet
        (_entry(CERT_PEM, SERIAL, expire=NOW - 1), NOW),  # WeChat lists it as expired
        (_entry(_cert_pem(CERT_KEY, SERIAL_INT, end=NOW - 1), SERIAL), NOW),
        (_entry(_cert_pem(CERT_KEY, SERIAL_INT, start=NOW + 1), SERIAL), NOW),
        (_entry(CERT_PEM, SERIAL, effective=NOW + 1), NOW),
    ],
)
def test_a_certificate_outside_its_validity_is_skipped_and_the_others_kept(
    entry: dict[str, Any], now: float
) -> None:
    keys = PlatformKeys()
    other = _entry(
        _cert_pem(CERT_KEY, OTHER_SERIAL_INT, start=now - DAY, end=now + DAY),
        f"{OTHER_SERIAL_INT:040X}",
        effective=now - DAY,
        expire=now + DAY,
    )
    assert keys.add_certificates(_body(entry, other), APIV3_KEY, now) == [
        f"{OTHER_SERIAL_INT:040X}"
    ]
    assert list(keys.snapshot()) == [f"{OTHER_SERIAL_INT:040X}"]


def test_serials_match_as_numbers_in_any_case_and_are_kept_upper_case() -> None:
    keys = PlatformKeys()
    body = _body(OTHER_ENTRY, _with(("serial_no",), SERIAL.lower()))
    added = keys.add_certificates(body, APIV3_KEY, NOW)
    assert added == [f"{OTHER_SERIAL_INT:040X}", SERIAL]
    assert added[0].startswith("0157F09E") and sorted(keys.snapshot()) == sorted(added)


def test_certificate_errors_are_response_errors_of_the_payments_tree() -> None:
    assert issubclass(CertificateError, WeChatResponseError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
NO_DIGITS = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=20)
JUNK = st.one_of(st.none(), st.integers(), st.booleans(), NO_DIGITS, st.lists(st.integers()))
FIELDS = (
    ("serial_no",),
    ("effective_time",),
    ("expire_time",),
    ("encrypt_certificate", "algorithm"),
    ("encrypt_certificate", "nonce"),
    ("encrypt_certificate", "associated_data"),
    ("encrypt_certificate", "ciphertext"),
)
DELETE = object()


def _valid_value(path: tuple[str, ...]) -> object:
    node: Any = VALID_ENTRY
    for name in path:
        node = node[name]
    return node


def _outcome(body: bytes) -> list[str] | CertificateError:
    keys = PlatformKeys()
    try:
        added = keys.add_certificates(body, APIV3_KEY, NOW)
    except CertificateError as exc:
        assert keys.snapshot() == {}
        return exc
    assert sorted(keys.snapshot()) == sorted(added)
    return added


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_raise_only_certificate_errors(body: bytes) -> None:
    outcome = _outcome(body)
    assert isinstance(outcome, CertificateError) or outcome == []


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(JSON, st.booleans())
def test_any_json_raises_only_certificate_errors(value: object, wrapped: bool) -> None:
    outcome = _outcome(json.dumps({"data": value} if wrapped else value).encode())
    assert isinstance(outcome, CertificateError) or outcome == []  # only {"data": []} is fine


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_entry_is_accepted_only_when_no_field_was_spoilt(data: st.DataObject) -> None:
    entry, spoilt = copy.deepcopy(VALID_ENTRY), False
    for path in FIELDS:
        if not data.draw(st.booleans()):
            continue
        *parents, last = path
        node = entry
        for name in parents:
            node = node[name]
        value = data.draw(st.one_of(st.just(DELETE), JUNK))
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        spoilt = spoilt or value is DELETE or value != _valid_value(path)
    outcome = _outcome(_body(entry))
    assert isinstance(outcome, CertificateError) if spoilt else outcome == [SERIAL]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_any_sealed_plaintext_but_the_certificate_is_refused(plaintext: bytes) -> None:
    outcome = _outcome(_body(_sealed_entry(plaintext)))
    assert isinstance(outcome, CertificateError)


# ---------------------------------------------------------------- the client, on the sandbox


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Method and path of every request any httpx.AsyncClient sends, in order."""
    paths: list[str] = []
    real_send = httpx.AsyncClient.send

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> httpx.Response:
        paths.append(f"{request.method} {request.url.path}")
        return await real_send(self, request, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return paths


def _sandbox_certificate(state_dir: Path) -> tuple[str, rsa.RSAPrivateKey]:
    """The sandbox's platform certificate serial and its private key (sandbox-only files)."""
    cert = x509.load_pem_x509_certificate((state_dir / "platform_cert.pem").read_bytes())
    key = wechat_sign.load_private_key(
        (state_dir / "sandbox_platform_cert_private.pem").read_bytes(), validate=False
    )
    return f"{cert.serial_number:X}", key


def _client(box: WeChatSandbox, clock: Callable[[], float], **kw: Any) -> WeChatPayClient:
    creds = kw.pop("creds", None) or load_merchant_json(box.merchant_json)
    kw.setdefault("base_urls", [box.base_url])
    return WeChatPayClient(creds, clock=clock, connect_timeout_s=2.0, read_timeout_s=5.0, **kw)


async def _sale(client: WeChatPayClient, no: str) -> None:
    """A Native order created and queried, and a payment-code sale."""
    await client.create_native(
        out_trade_no=f"N{no:0>7}", amount_fen=100, description="sale", notify_url=NOTIFY
    )
    assert (await client.query(out_trade_no=f"N{no:0>7}")).trade_state is TradeState.NOTPAY
    paid = await client.create_codepay(
        out_trade_no=f"C{no:0>7}",
        amount_fen=100,
        description="sale",
        auth_code=f"13{no:0>16}",
        store_id="S1",
        device_id="T1",
        device_ip="10.0.0.2",
    )
    assert paid.trade_state is TradeState.SUCCESS


async def test_a_certificate_only_merchant_is_served_after_one_certificate_download(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, sent: list[str]
) -> None:
    box = start_sandbox(key_modes=["certificate"])
    serial, _ = _sandbox_certificate(box.merchant_json.parent)
    keys = PlatformKeys.from_credentials(load_merchant_json(box.merchant_json))
    async with _client(box, sandbox_clock, keys=keys) as client:
        await _sale(client, "1")
        assert sent[:2] == ["POST /v3/pay/transactions/native", CERTS]
        assert sent.count(CERTS) == 1 and len(sent) == 4
        sandbox_clock.advance(120)  # long after the download: a known serial needs none
        await _sale(client, "2")
    assert sent.count(CERTS) == 1 and len(sent) == 7
    assert serial in keys


async def test_requests_naming_the_certificate_serial_learn_the_key_from_the_download(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, sent: list[str]
) -> None:
    box = start_sandbox(key_modes=SWITCHING)
    serial, _ = _sandbox_certificate(box.merchant_json.parent)
    creds = dataclasses.replace(load_merchant_json(box.merchant_json), public_key_id=serial)
    keys = PlatformKeys()  # nothing known: every key must come from /v3/certificates
    async with _client(box, sandbox_clock, creds=creds, keys=keys) as client:
        await _sale(client, "3")
    assert sent.count(CERTS) == 1 and list(keys.snapshot()) == [serial]


async def test_public_key_mode_never_downloads_certificates(
    wechat_client: WeChatPayClient, sent: list[str]
) -> None:
    await _sale(wechat_client, "4")
    assert len(sent) == 3 and CERTS not in sent


async def test_a_switching_merchant_set_up_from_merchant_json_is_answered_by_the_public_key(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, sent: list[str]
) -> None:
    box = start_sandbox(key_modes=SWITCHING)
    assert "platform_certificate" in json.loads(box.merchant_json.read_text())
    async with _client(box, sandbox_clock) as client:  # names its PUB_KEY_ID in every request
        await _sale(client, "5")
    assert len(sent) == 3 and CERTS not in sent


async def test_a_public_key_only_merchant_has_no_certificates(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, sent: list[str]
) -> None:
    box = start_sandbox(key_modes=["public_key"])
    async with _client(box, sandbox_clock) as client:
        assert await client.refresh_certificates() == []
    assert sent == [CERTS]


async def test_an_explicit_refresh_loads_the_certificate_in_both_key_modes(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock
) -> None:
    box = start_sandbox(key_modes=SWITCHING)
    serial, _ = _sandbox_certificate(box.merchant_json.parent)
    async with _client(box, sandbox_clock) as client:
        assert await client.refresh_certificates() == [serial]


async def test_a_download_sealed_with_another_apiv3_key_is_refused(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock
) -> None:
    box = start_sandbox(key_modes=["certificate"])
    creds = dataclasses.replace(load_merchant_json(box.merchant_json), apiv3_key="x" * 32)
    keys = PlatformKeys.from_credentials(creds)
    async with _client(box, sandbox_clock, creds=creds, keys=keys) as client:
        with pytest.raises(CertificateError, match="cannot decrypt"):
            await client.refresh_certificates()
        sandbox_clock.advance(61)
        with pytest.raises(WeChatResponseError, match="cannot decrypt") as caught:
            await client.query(out_trade_no="N404")
        assert isinstance(caught.value.__cause__, CertificateError)
    assert keys.snapshot().keys() == {creds.public_key_id}


async def test_an_expired_certificate_is_not_trusted(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock
) -> None:
    box = start_sandbox(key_modes=["certificate"])
    sandbox_clock.advance(6 * 365 * DAY)  # both sides live six years on: the cert lasts five
    async with _client(box, sandbox_clock) as client:
        with pytest.raises(CertificateError, match="signed by unknown key"):
            await client.refresh_certificates()


async def test_an_unknown_certificate_downloads_at_most_once_a_minute(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock, sent: list[str]
) -> None:
    box = start_sandbox(key_modes=["certificate"])
    creds = dataclasses.replace(load_merchant_json(box.merchant_json), apiv3_key="x" * 32)
    async with _client(box, sandbox_clock, creds=creds) as client:
        with pytest.raises(WeChatResponseError, match="cannot decrypt"):
            await client.query(out_trade_no="N404")
        assert sent.count(CERTS) == 1
        sandbox_clock.advance(59)
        with pytest.raises(WeChatResponseError, match="unknown key") as caught:
            await client.query(out_trade_no="N404")
        assert not isinstance(caught.value, CertificateError)
        assert sent.count(CERTS) == 1
        sandbox_clock.advance(2)
        with pytest.raises(WeChatResponseError, match="cannot decrypt"):
            await client.query(out_trade_no="N404")
        assert sent.count(CERTS) == 2


async def test_a_failed_download_leaves_the_answer_untrusted_not_a_transport_error(
    start_sandbox: Callable[..., WeChatSandbox], sandbox_clock: ManualClock
) -> None:
    box = start_sandbox(key_modes=["certificate"])
    box.fault_next("GET", "/v3/certificates", Faults(drop_connection=True))
    async with _client(box, sandbox_clock) as client:
        # WeChat answered the payment: a failed download must not pass for its outcome
        with pytest.raises(WeChatResponseError) as caught:
            await client.create_codepay(
                out_trade_no="C0000009",
                amount_fen=100,
                description="sale",
                auth_code="130000000000000009",
                store_id="S1",
                device_id="T1",
                device_ip="10.0.0.2",
            )
        assert isinstance(caught.value.__cause__, WeChatTransportError)
        sandbox_clock.advance(61)
        assert (await client.query(out_trade_no="C0000009")).trade_state is TradeState.SUCCESS


# ---------------------------------------------------------------- the client, on a forged host


class Forged:
    """What the forged host answers: a certificates body and who signs what."""

    def __init__(self) -> None:
        self.certificates = _body(VALID_ENTRY)
        self.certificates_signer: tuple[rsa.RSAPrivateKey, str] = (CERT_KEY, SERIAL)
        self.answer_signer: tuple[rsa.RSAPrivateKey, str] = (CERT_KEY, SERIAL)


@pytest.fixture
def forged() -> Iterator[tuple[str, Forged]]:
    """A loopback host signing like WeChat in certificate mode, with certificates made here."""
    forged = Forged()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/v3/certificates":
                body, (key, serial) = forged.certificates, forged.certificates_signer
            else:
                no = self.path.split("/")[-1].split("?")[0]
                body = json.dumps({"out_trade_no": no, "trade_state": "NOTPAY"}).encode()
                key, serial = forged.answer_signer
            self.send_response(200)
            for name, value in _signed_headers(key, serial, body, time.time()).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", forged
    server.shutdown()
    server.server_close()


@pytest.fixture
def forged_creds(sandbox_state_dir: Path) -> WeChatCredentials:
    with WeChatSandbox(sandbox_state_dir) as box:
        creds = load_merchant_json(box.merchant_json)
    return dataclasses.replace(creds, apiv3_key=APIV3_KEY)


@pytest.mark.parametrize("case", ["valid", "serial_mismatch", "signed_by_another_key"])
async def test_a_forged_certificate_download_is_refused(
    forged: tuple[str, Forged], forged_creds: WeChatCredentials, case: str
) -> None:
    url, host = forged
    if case == "serial_mismatch":  # signed by the certificate, listed under another serial
        host.certificates = _body(_with(("serial_no",), "AB" * 20))
        host.certificates_signer = (CERT_KEY, "AB" * 20)
    if case == "signed_by_another_key":  # a genuine certificate, not the key that signed
        host.certificates_signer = (wechat_sign.generate_private_key(), SERIAL)
    keys = PlatformKeys.from_credentials(forged_creds)
    async with WeChatPayClient(forged_creds, base_urls=[url], keys=keys) as client:
        if case == "valid":
            assert (await client.query(out_trade_no="N1")).trade_state is TradeState.NOTPAY
            assert SERIAL in keys
            return
        problem = "serial is " + SERIAL if case == "serial_mismatch" else "does not match"
        with pytest.raises(CertificateError, match=problem):
            await client.refresh_certificates()
        # a forged signature is a security event; a certificate failing its own checks is not
        assert client.signature_failures == (case == "signed_by_another_key")
    assert keys.snapshot().keys() == {forged_creds.public_key_id}


# ---------------------------------------------------------------- notifications


@pytest.fixture
def merchant(sandbox_state_dir: Path) -> tuple[WeChatCredentials, str, rsa.RSAPrivateKey]:
    """Our credentials, and the sandbox's certificate serial and private key (to sign)."""
    with WeChatSandbox(sandbox_state_dir) as box:
        creds = load_merchant_json(box.merchant_json)
    serial, key = _sandbox_certificate(sandbox_state_dir)
    return creds, serial, key


def _notification(apiv3_key: str, out_trade_no: str = "N0000001") -> bytes:
    resource = {"out_trade_no": out_trade_no, "trade_state": "SUCCESS"}
    return notify.envelope(
        apiv3_key, "TRANSACTION.SUCCESS", resource, event_id="EV-2026010100000001", at=NOW
    )


def test_a_certificate_signed_notification_opens_once_the_key_set_holds_the_certificate(
    merchant: tuple[WeChatCredentials, str, rsa.RSAPrivateKey],
) -> None:
    creds, serial, key = merchant
    body = _notification(creds.apiv3_key)
    headers = _signed_headers(key, serial, body, time.time())
    keys = PlatformKeys.from_credentials(creds)
    with pytest.raises(UnknownNotificationSigner) as caught:
        open_notification(
            headers, body, keys=keys.snapshot(), apiv3_key=creds.apiv3_key, now=time.time()
        )
    assert caught.value.serial == serial
    keys.add({serial: key.public_key()})
    note = open_notification(
        headers, body, keys=keys.snapshot(), apiv3_key=creds.apiv3_key, now=time.time()
    )
    assert note.resource == {"out_trade_no": "N0000001", "trade_state": "SUCCESS"}
    other = _signed_headers(wechat_sign.generate_private_key(), serial, body, time.time())
    with pytest.raises(NotificationError, match="does not match") as caught_other:
        open_notification(
            other, body, keys=keys.snapshot(), apiv3_key=creds.apiv3_key, now=time.time()
        )
    assert not isinstance(caught_other.value, UnknownNotificationSigner)


@pytest.fixture
def receiver(
    tmp_path: Path, merchant: tuple[WeChatCredentials, str, rsa.RSAPrivateKey]
) -> Iterator[Callable[..., Receiver]]:
    with contextlib.ExitStack() as running:
        numbers = itertools.count()

        def start(**kw: Any) -> Receiver:
            journal = tmp_path / f"journal{next(numbers)}.sqlite"
            return running.enter_context(receiver_thread(merchant[0], journal, **kw))

        yield start


def _post(server: Receiver, key: rsa.RSAPrivateKey, serial: str, body: bytes) -> int:
    headers = _signed_headers(key, serial, body, time.time())
    return httpx.post(server.url, content=body, headers=headers, timeout=10).status_code


def test_the_receiver_loads_certificates_once_for_a_certificate_signed_notification(
    start_sandbox: Callable[..., WeChatSandbox],
    receiver: Callable[..., Receiver],
    merchant: tuple[WeChatCredentials, str, rsa.RSAPrivateKey],
    sent: list[str],
) -> None:
    sandbox = start_sandbox(key_modes=SWITCHING)
    creds, serial, key = merchant
    keys = PlatformKeys.from_credentials(creds)
    download = certificate_refresh(creds, [sandbox.base_url], keys)
    calls: list[object] = []

    async def refresh() -> None:
        calls.append(await download())

    server = receiver(keys=keys, refresh=refresh)
    body = _notification(creds.apiv3_key)
    assert _post(server, key, serial, body) == 204
    assert calls == [[serial]] and sent == [CERTS]
    assert _post(server, key, serial, body) == 204  # gray switch: either key, no new download
    platform = wechat_sign.load_private_key(
        (sandbox.merchant_json.parent / "sandbox_platform_private.pem").read_bytes()
    )
    assert _post(server, platform, creds.public_key_id, body) == 204
    assert len(calls) == 1 and (server.server.accepted, server.server.refused) == (3, 0)


def test_the_receiver_refuses_what_it_cannot_verify_and_refreshes_at_most_once_a_minute(
    receiver: Callable[..., Receiver],
    merchant: tuple[WeChatCredentials, str, rsa.RSAPrivateKey],
) -> None:
    creds, serial, key = merchant
    clock = ManualClock()
    calls: list[str] = []
    outcomes = iter(["nothing", "fails", "loads"])
    keys = PlatformKeys.from_credentials(creds)

    async def refresh() -> None:
        outcome = next(outcomes)
        calls.append(outcome)
        if outcome == "fails":
            raise WeChatTransportError("no WeChat Pay host reachable", maybe_sent=False)
        if outcome == "loads":
            keys.add({serial: key.public_key()})

    server = receiver(keys=keys, refresh=refresh, clock=clock)
    body = _notification(creds.apiv3_key)
    assert _post(server, key, "PUB_KEY_ID_0000000000000000000000000000000009", body) == 400
    assert calls == []  # not a certificate serial: nothing to download
    assert _post(server, key, serial, body) == 400
    assert _post(server, key, serial, body) == 400
    assert calls == ["nothing"]
    clock.advance(61)
    assert _post(server, key, serial, body) == 400  # the download failed: refused, not a 500
    assert calls == ["nothing", "fails"]
    clock.advance(61)
    assert _post(server, key, serial, body) == 204
    assert calls == ["nothing", "fails", "loads"]
    assert (server.server.accepted, server.server.refused) == (1, 4)


def test_a_receiver_without_refresh_refuses_an_unknown_certificate(
    receiver: Callable[..., Receiver],
    merchant: tuple[WeChatCredentials, str, rsa.RSAPrivateKey],
) -> None:
    creds, serial, key = merchant
    server = receiver()
    assert _post(server, key, serial, _notification(creds.apiv3_key)) == 400
    assert (server.server.accepted, server.server.refused) == (0, 1)
