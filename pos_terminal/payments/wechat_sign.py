"""WeChat Pay APIv3 cryptography shared by the client and the sandbox (reference §1.1, §1.2, §1.5).

Messages to sign, RSA-SHA256 signatures, the Authorization header, AES-256-GCM resources, PEM keys.
Clocks and nonces come in as arguments; malformed input raises a `SignFormatError` (a ValueError).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"  # Authorization scheme and Wechatpay-Signature-Type value
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
RSA_BITS = 2048
_NONCE_ALPHABET = string.ascii_letters + string.digits
_AUTH_PARAM = re.compile(r'\s*([A-Za-z_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
_AUTH_FIELDS = ("mchid", "nonce_str", "timestamp", "serial_no", "signature")


class SignFormatError(ValueError):
    """A header, key, signature or encrypted resource is not in the expected format."""


class UnknownSignerError(SignFormatError):
    """Signed by a key we do not hold; `.serial` is the `Wechatpay-Serial` ("" when absent)."""

    def __init__(self, serial: str) -> None:
        super().__init__(f"signed by unknown key {serial!r:.60}")
        self.serial = serial


# ---------------------------------------------------------------- messages (§1.1, §1.2)


def request_message(method: str, url: str, timestamp: int | str, nonce: str, body: bytes) -> bytes:
    """`METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n` over the exact body bytes (b"" when none)."""
    head = f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_message(timestamp: int | str, nonce: str, body: bytes) -> bytes:
    """`TIMESTAMP\\nNONCE\\nBODY\\n` for answers and notifications (b"" for 204)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def new_nonce(length: int = 32) -> str:
    """A random nonce of [0-9A-Za-z], as the official samples use."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


# ---------------------------------------------------------------- RSA-SHA256 PKCS#1 v1.5


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of RSASSA-PKCS1-v1_5(SHA-256) over `message`."""
    raw = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True when `signature_b64` is a valid signature of `message`; False for anything else."""
    try:
        raw = base64.b64decode(signature_b64.encode("ascii"), validate=True)
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def check_signed_message(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Mapping[str, rsa.RSAPublicKey],
    now: float | None,
    max_skew_s: float = 300,
) -> None:
    """Check the `Wechatpay-*` headers of an API answer or a notification (reference §1.2).

    `keys` maps `Wechatpay-Serial` values (PUB_KEY_ID_…, platform certificate serials) to their
    keys. `now=None` skips the freshness check (|now - Wechatpay-Timestamp| <= max_skew_s).

    Raises:
        UnknownSignerError: the `Wechatpay-Serial` names no key in `keys`.
        SignFormatError: unsigned, other signature type, stale, or not matching the body.
    """
    h = {name.lower(): value for name, value in headers.items()}
    signature = h.get("wechatpay-signature")
    if signature is None:
        raise SignFormatError("answer is not signed (no Wechatpay-Signature)")
    if h.get("wechatpay-signature-type") != SCHEME:
        raise SignFormatError(f"signature type {h.get('wechatpay-signature-type')!r:.60}")
    serial = h.get("wechatpay-serial", "").upper()  # certificate serials are hex: any case
    public_key = keys.get(serial)
    if public_key is None:
        raise UnknownSignerError(serial)
    timestamp, nonce = h.get("wechatpay-timestamp", ""), h.get("wechatpay-nonce", "")
    if not timestamp.isdigit() or not nonce:
        raise SignFormatError("missing or malformed Wechatpay-Timestamp/-Nonce")
    if now is not None and abs(now - int(timestamp)) > max_skew_s:
        raise SignFormatError(
            f"Wechatpay-Timestamp {timestamp} is over {max_skew_s:g} s off our clock"
        )
    if not verify(public_key, response_message(timestamp, nonce, body), signature):
        raise SignFormatError("signature does not match the body")


# ---------------------------------------------------------------- Authorization header


@dataclass(frozen=True)
class Authorization:
    """The parameters of `Authorization: WECHATPAY2-SHA256-RSA2048 k="v",...`."""

    mchid: str
    nonce_str: str
    timestamp: str
    serial_no: str
    signature: str = field(repr=False)

    def header(self) -> str:
        """The header value, parameters in the official Go SDK's order."""
        params = ",".join(f'{name}="{getattr(self, name)}"' for name in _AUTH_FIELDS)
        return f"{SCHEME} {params}"


def authorization_header(
    *,
    method: str,
    url: str,
    body: bytes,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    timestamp: int,
    nonce: str,
) -> str:
    """Sign a request and return the Authorization header value."""
    message = request_message(method, url, timestamp, nonce, body)
    return Authorization(
        mchid, nonce, str(timestamp), serial_no, sign(private_key, message)
    ).header()


def parse_authorization(value: str) -> Authorization:
    """Parse an Authorization header; parameters may come in any order.

    Raises:
        SignFormatError: wrong scheme, a malformed or repeated parameter, or a missing one.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme != SCHEME:
        raise SignFormatError(f"authorization scheme is {scheme!r}, expected {SCHEME}")
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        match = _AUTH_PARAM.match(rest, pos)
        if match is None:
            raise SignFormatError(
                f"malformed authorization parameter near {rest[pos : pos + 20]!r}"
            )
        name, val = match.group(1), match.group(2)
        if name in params:
            raise SignFormatError(f"authorization parameter {name!r} appears twice")
        params[name] = val
        pos = match.end()
    missing = [name for name in _AUTH_FIELDS if not params.get(name)]
    if missing:
        raise SignFormatError(f"authorization lacks {', '.join(missing)}")
    return Authorization(**{name: params[name] for name in _AUTH_FIELDS})


# ---------------------------------------------------------------- AES-256-GCM resources (§1.5)


def _aes(apiv3_key: str, nonce: str) -> tuple[AESGCM, bytes]:
    key = apiv3_key.encode()
    if len(key) != 32:
        raise SignFormatError(f"the APIv3 key must be 32 bytes, got {len(key)}")
    nonce_bytes = nonce.encode()
    if len(nonce_bytes) != 12:
        raise SignFormatError(f"the resource nonce must be 12 bytes, got {len(nonce_bytes)}")
    return AESGCM(key), nonce_bytes


def encrypt_resource(apiv3_key: str, plaintext: bytes, *, nonce: str, associated_data: str) -> str:
    """Base64 of (ciphertext ‖ 16-byte tag), as WeChat puts it in `resource.ciphertext`."""
    aes, nonce_bytes = _aes(apiv3_key, nonce)
    sealed = aes.encrypt(nonce_bytes, plaintext, associated_data.encode())
    return base64.b64encode(sealed).decode("ascii")


def decrypt_resource(
    apiv3_key: str, ciphertext_b64: str, *, nonce: str, associated_data: str = ""
) -> bytes:
    """Open a `resource`; a tag failure almost always means a wrong or reset APIv3 key.

    Raises:
        SignFormatError: bad key/nonce length, bad Base64, or authentication failed.
    """
    aes, nonce_bytes = _aes(apiv3_key, nonce)
    try:
        sealed = base64.b64decode(ciphertext_b64.encode("ascii"), validate=True)
        return aes.decrypt(nonce_bytes, sealed, associated_data.encode())
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SignFormatError("resource ciphertext is not Base64") from exc
    except InvalidTag as exc:
        raise SignFormatError("resource failed authentication: check the APIv3 key") from exc


# ---------------------------------------------------------------- keys


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key, as WeChat merchant and platform keys are."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def load_private_key(pem: bytes, *, validate: bool = True) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM RSA private key (PKCS#8 `apiclient_key.pem` or PKCS#1).

    `validate=False` skips the costly consistency check, for keys this program generated itself.

    Raises:
        SignFormatError: not a PEM RSA private key.
    """
    try:
        key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=not validate
        )
    except (ValueError, TypeError) as exc:
        raise SignFormatError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignFormatError(f"expected an RSA private key, got {type(key).__name__}")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """Load a PEM RSA public key (`pub_key.pem` from the merchant portal).

    Raises:
        SignFormatError: not a PEM RSA public key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SignFormatError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignFormatError(f"expected an RSA public key, got {type(key).__name__}")
    return key


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM without encryption, the format of `apiclient_key.pem`."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, the format of the WeChat Pay public key file."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
