"""The sandbox merchant's identity and keys: generated on first start in a state dir, reused after.

Files in the state dir (private keys are created mode 600):
    merchant.json                  what a terminal reads (payments.wechat.load_merchant_json)
    apiclient_key.pem              merchant API private key (the terminal signs requests with it)
    merchant_public.pem            its public half, registered with "WeChat" (the sandbox verifies)
    pub_key.pem                    WeChat Pay public key (the terminal verifies answers)
    sandbox_platform_private.pem   WeChat Pay private key: sandbox-only, never give it to a terminal
    platform_cert.pem              WeChat Pay platform certificate (cert mode; served encrypted by
                                   GET /v3/certificates)
    sandbox_platform_cert_private.pem  the certificate's private key: sandbox-only

`merchant.json` also lists the merchant's `key_modes` ("public_key", "certificate"; absent means
public key only, as for every merchant opened since late 2024). A merchant with certificate mode
(one part-way through the switch) also finds `platform_certificate` (the PEM's file name) and
`platform_certificate_serial` there, as it would have downloaded them: a client set up from
merchant.json then verifies certificate-signed answers too. Starting with other key modes
rewrites merchant.json to match. State dirs made before certificate mode existed get the two
certificate files on their next start.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pos_terminal.payments import wechat_sign

MERCHANT_JSON = "merchant.json"
MERCHANT_PRIVATE = "apiclient_key.pem"
MERCHANT_PUBLIC = "merchant_public.pem"
PLATFORM_PUBLIC = "pub_key.pem"
PLATFORM_PRIVATE = "sandbox_platform_private.pem"
PLATFORM_CERT = "platform_cert.pem"
PLATFORM_CERT_PRIVATE = "sandbox_platform_cert_private.pem"
_ALL_FILES = (MERCHANT_JSON, MERCHANT_PRIVATE, MERCHANT_PUBLIC, PLATFORM_PUBLIC, PLATFORM_PRIVATE)
KEY_MODES = ("public_key", "certificate")
DEFAULT_KEY_MODES = ("public_key",)
CERT_FIELD, CERT_SERIAL_FIELD = "platform_certificate", "platform_certificate_serial"
CERT_LIFETIME = datetime.timedelta(days=5 * 365)  # reference §1.2: platform certs last 5 years


class SandboxStateError(RuntimeError):
    """The state dir is incomplete or unreadable; the message says how to recover."""


@dataclass(frozen=True)
class SandboxKeys:
    """What "WeChat" knows about its one merchant, plus its own signing key."""

    mchid: str
    appid: str
    merchant_serial: str
    merchant_public_key: rsa.RSAPublicKey = field(repr=False)
    public_key_id: str
    platform_private_key: rsa.RSAPrivateKey = field(repr=False)
    apiv3_key: str = field(repr=False)
    cert_serial: str  # 40 hex, upper case, as in `Wechatpay-Serial` and /v3/certificates
    cert_pem: bytes = field(repr=False)
    cert_private_key: rsa.RSAPrivateKey = field(repr=False)
    cert_not_before: datetime.datetime
    cert_not_after: datetime.datetime
    key_modes: frozenset[str]


def check_key_modes(modes: Iterable[str]) -> frozenset[str]:
    """The modes as a set.

    Raises:
        ValueError: empty, or a mode other than "public_key" and "certificate".
    """
    chosen = frozenset(modes)
    if not chosen or not chosen <= set(KEY_MODES):
        raise ValueError(
            f"key_modes must be a non-empty subset of {KEY_MODES}, got {sorted(chosen)}"
        )
    return chosen


def load_or_create(state_dir: Path, key_modes: frozenset[str] | None = None) -> SandboxKeys:
    """Load the keys from `state_dir`, generating everything on first use; `key_modes` (None:
    merchant.json's) are written into merchant.json with the certificate fields they need.

    Raises:
        SandboxStateError: some files exist but not all, or one cannot be read or written.
    """
    present = [name for name in _ALL_FILES if (state_dir / name).exists()]
    if not present:
        _create(state_dir)
    elif len(present) != len(_ALL_FILES):
        missing = sorted(set(_ALL_FILES) - set(present))
        raise SandboxStateError(
            f"{state_dir}: sandbox state is incomplete (missing {', '.join(missing)}); "
            "delete the folder to start a fresh sandbox merchant"
        )
    if not (state_dir / PLATFORM_CERT).exists():
        _create_certificate(state_dir)
    keys = _load(state_dir)
    modes = keys.key_modes if key_modes is None else key_modes
    _describe(state_dir, modes, keys.cert_serial)
    return replace(keys, key_modes=modes)


def _load(state_dir: Path) -> SandboxKeys:
    try:
        info = json.loads((state_dir / MERCHANT_JSON).read_text(encoding="utf-8"))
        merchant_public = (state_dir / MERCHANT_PUBLIC).read_bytes()
        platform_private = (state_dir / PLATFORM_PRIVATE).read_bytes()
        cert_pem = (state_dir / PLATFORM_CERT).read_bytes()
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert_private = (state_dir / PLATFORM_CERT_PRIVATE).read_bytes()
        return SandboxKeys(
            mchid=str(info["mchid"]),
            appid=str(info["appid"]),
            merchant_serial=str(info["merchant_serial"]),
            merchant_public_key=wechat_sign.load_public_key(merchant_public),
            public_key_id=str(info["public_key_id"]),
            platform_private_key=wechat_sign.load_private_key(platform_private, validate=False),
            apiv3_key=str(info["apiv3_key"]),
            cert_serial=f"{cert.serial_number:X}",
            cert_pem=cert_pem,
            cert_private_key=wechat_sign.load_private_key(cert_private, validate=False),
            cert_not_before=cert.not_valid_before_utc,
            cert_not_after=cert.not_valid_after_utc,
            key_modes=check_key_modes(info.get("key_modes", DEFAULT_KEY_MODES)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SandboxStateError(f"{state_dir}: cannot read sandbox state: {exc}") from exc


def _create(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    merchant = wechat_sign.generate_private_key()
    platform = wechat_sign.generate_private_key()
    _write(state_dir / MERCHANT_PRIVATE, wechat_sign.private_key_pem(merchant), private=True)
    _write(state_dir / MERCHANT_PUBLIC, wechat_sign.public_key_pem(merchant.public_key()))
    _write(state_dir / PLATFORM_PRIVATE, wechat_sign.private_key_pem(platform), private=True)
    _write(state_dir / PLATFORM_PUBLIC, wechat_sign.public_key_pem(platform.public_key()))
    alphabet = string.ascii_letters + string.digits
    info = {
        "mchid": "19" + _digits(8),
        "appid": "wx" + secrets.token_hex(8),
        "merchant_serial": secrets.token_hex(20).upper(),
        "merchant_private_key": MERCHANT_PRIVATE,
        "platform_public_key": PLATFORM_PUBLIC,
        "public_key_id": "PUB_KEY_ID_" + _digits(34),
        "apiv3_key": "".join(secrets.choice(alphabet) for _ in range(32)),
        "key_modes": list(DEFAULT_KEY_MODES),
    }
    _create_certificate(state_dir)
    # merchant.json is written last: its presence means the set is complete
    _write(state_dir / MERCHANT_JSON, json.dumps(info, indent=2).encode() + b"\n", private=True)


def _describe(state_dir: Path, key_modes: frozenset[str], cert_serial: str) -> None:
    """Make merchant.json name `key_modes`, and the certificate exactly when they include it."""
    path = state_dir / MERCHANT_JSON
    try:
        text = path.read_text(encoding="utf-8")
        info = json.loads(text)
        info["key_modes"] = [mode for mode in KEY_MODES if mode in key_modes]
        for name in (CERT_FIELD, CERT_SERIAL_FIELD):
            info.pop(name, None)
        if "certificate" in key_modes:
            info[CERT_FIELD], info[CERT_SERIAL_FIELD] = PLATFORM_CERT, cert_serial
        wanted = json.dumps(info, indent=2) + "\n"
        if wanted != text:
            spare = path.with_name(MERCHANT_JSON + ".new")
            _write(spare, wanted.encode(), private=True)
            os.replace(spare, path)  # a reader sees the old file or the new one, never half
    except (OSError, ValueError) as exc:
        raise SandboxStateError(f"{path}: cannot update the merchant's key modes: {exc}") from exc


def _create_certificate(state_dir: Path) -> None:
    """A self-signed platform certificate with a 40-hex serial; the PEM is written last."""
    key = wechat_sign.generate_private_key()
    # 160-bit serial with a non-zero top nibble: 40 hex digits, and positive in 20 DER octets
    serial = secrets.randbelow(8 * 16**39 - 16**39) + 16**39
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sandbox WeChat Pay"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox Tenpay.com Root CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + CERT_LIFETIME)
        .sign(key, hashes.SHA256())
    )
    _write(state_dir / PLATFORM_CERT_PRIVATE, wechat_sign.private_key_pem(key), private=True)
    _write(state_dir / PLATFORM_CERT, cert.public_bytes(serialization.Encoding.PEM))


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
