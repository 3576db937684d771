"""wechat_sign: messages, RSA signatures, the Authorization header, AES-GCM resources, keys."""

from __future__ import annotations

import base64
import contextlib
import itertools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from pos_terminal.payments import wechat_sign as ws
from pos_terminal.payments.wechat_sign import SignFormatError

APIV3_KEY = "0123456789abcdefABCDEF0123456789"
S = "WECHATPAY2-SHA256-RSA2048 "


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return ws.generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return ws.generate_private_key()


def test_request_message_has_five_newline_terminated_lines() -> None:
    message = ws.request_message("post", "/v3/x?a=1", 1554208460, "N0NCE", b'{"a":1}')
    assert message == b'POST\n/v3/x?a=1\n1554208460\nN0NCE\n{"a":1}\n'


def test_request_message_for_empty_body_ends_with_two_newlines() -> None:
    assert ws.request_message("GET", "/v3/x", "1", "n", b"").endswith(b"\nn\n\n")


def test_response_message_is_timestamp_nonce_body() -> None:
    assert ws.response_message("1", "n", b"") == b"1\nn\n\n"
    assert ws.response_message(2, "m", b"{}") == b"2\nm\n{}\n"


def test_nonce_is_32_alphanumerics_and_fresh() -> None:
    a, b = ws.new_nonce(), ws.new_nonce()
    assert len(a) == 32 and a.isalnum() and a.isascii() and a != b


def test_signature_round_trip(key: rsa.RSAPrivateKey) -> None:
    signature = ws.sign(key, b"hello\n")
    assert len(base64.b64decode(signature)) == 256
    assert ws.verify(key.public_key(), b"hello\n", signature)


def test_verify_rejects_other_message_key_and_garbage(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    signature = ws.sign(key, b"hello\n")
    assert not ws.verify(key.public_key(), b"hello", signature)
    assert not ws.verify(other_key.public_key(), b"hello\n", signature)
    assert not ws.verify(key.public_key(), b"hello\n", "not base64!")
    assert not ws.verify(key.public_key(), b"hello\n", "签名")
    assert not ws.verify(key.public_key(), b"hello\n", "WECHATPAY/SIGNTEST/" + signature)


def test_authorization_header_round_trip(key: rsa.RSAPrivateKey) -> None:
    header = ws.authorization_header(
        method="GET",
        url="/v3/pay/transactions/out-trade-no/A123456?mchid=1900000109",
        body=b"",
        mchid="1900000109",
        serial_no="ABC",
        private_key=key,
        timestamp=1554208460,
        nonce="NONCE",
    )
    assert header.startswith("WECHATPAY2-SHA256-RSA2048 ")
    auth = ws.parse_authorization(header)
    assert (auth.mchid, auth.nonce_str, auth.timestamp, auth.serial_no) == (
        "1900000109",
        "NONCE",
        "1554208460",
        "ABC",
    )
    message = ws.request_message(
        "GET",
        "/v3/pay/transactions/out-trade-no/A123456?mchid=1900000109",
        "1554208460",
        "NONCE",
        b"",
    )
    assert ws.verify(key.public_key(), message, auth.signature)
    assert auth.signature not in repr(auth)


def test_authorization_parameters_parse_in_any_order() -> None:
    values = {
        "mchid": "1",
        "nonce_str": "n",
        "timestamp": "2",
        "serial_no": "S",
        "signature": "a+b/c==",
    }
    for order in itertools.permutations(values):
        header = "WECHATPAY2-SHA256-RSA2048 " + ",".join(f'{k}="{values[k]}"' for k in order)
        auth = ws.parse_authorization(header)
        assert (auth.mchid, auth.nonce_str, auth.timestamp, auth.serial_no) == ("1", "n", "2", "S")
        assert auth.signature == "a+b/c=="


def test_authorization_tolerates_spaces_around_parameters() -> None:
    header = 'WECHATPAY2-SHA256-RSA2048  mchid="1", nonce_str="n" ,timestamp="2",serial_no="S",'
    header += 'signature="x"'
    assert ws.parse_authorization(header).nonce_str == "n"


@pytest.mark.parametrize(
    "header",
    [
        "",
        'Bearer mchid="1",nonce_str="n",timestamp="2",serial_no="S",signature="x"',
        S + 'mchid="1",nonce_str="n",timestamp="2",serial_no="S"',
        S + 'mchid="1",nonce_str="n",timestamp="2",serial_no="S",signature="x" trailing',
        S + 'mchid="1",mchid="1",nonce_str="n",timestamp="2",serial_no="S",signature="x"',
        S + 'mchid=1,nonce_str="n",timestamp="2",serial_no="S",signature="x"',
        S + 'mchid="",nonce_str="n",timestamp="2",serial_no="S",signature="x"',
    ],
)
def test_malformed_authorization_is_refused(header: str) -> None:
    with pytest.raises(SignFormatError):
        ws.parse_authorization(header)


@given(st.text(max_size=300))
def test_authorization_parser_raises_only_sign_format_error(text: str) -> None:
    for candidate in (text, "WECHATPAY2-SHA256-RSA2048 " + text):
        with contextlib.suppress(SignFormatError):
            ws.parse_authorization(candidate)


def test_resource_round_trip_and_key_checks() -> None:
    sealed = ws.encrypt_resource(
        APIV3_KEY, "支付成功".encode(), nonce="abcdefghijkl", associated_data="transaction"
    )
    opened = ws.decrypt_resource(
        APIV3_KEY, sealed, nonce="abcdefghijkl", associated_data="transaction"
    )
    assert opened.decode() == "支付成功"
    with pytest.raises(SignFormatError, match="APIv3 key"):
        ws.decrypt_resource(
            APIV3_KEY[::-1], sealed, nonce="abcdefghijkl", associated_data="transaction"
        )
    with pytest.raises(SignFormatError):
        ws.decrypt_resource(APIV3_KEY, sealed, nonce="abcdefghijkl", associated_data="refund")
    with pytest.raises(SignFormatError, match="12 bytes"):
        ws.decrypt_resource(APIV3_KEY, sealed, nonce="short", associated_data="transaction")
    with pytest.raises(SignFormatError, match="32 bytes"):
        ws.encrypt_resource("short", b"x", nonce="abcdefghijkl", associated_data="")
    with pytest.raises(SignFormatError, match="Base64"):
        ws.decrypt_resource(APIV3_KEY, "%%%", nonce="abcdefghijkl")


def test_pem_round_trip(key: rsa.RSAPrivateKey) -> None:
    loaded = ws.load_private_key(ws.private_key_pem(key))
    assert loaded.private_numbers() == key.private_numbers()
    public = ws.load_public_key(ws.public_key_pem(key.public_key()))
    assert public.public_numbers() == key.public_key().public_numbers()
    assert ws.private_key_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_pem_loaders_refuse_garbage_and_non_rsa_keys() -> None:
    with pytest.raises(SignFormatError):
        ws.load_private_key(b"not a key")
    with pytest.raises(SignFormatError):
        ws.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignFormatError, match="RSA"):
        ws.load_private_key(ec_pem)
    ec_pub = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SignFormatError, match="RSA"):
        ws.load_public_key(ec_pub)


def test_generated_keys_are_rsa_2048() -> None:
    assert ws.generate_private_key().key_size == 2048
