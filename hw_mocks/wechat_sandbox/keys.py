"""The sandbox merchant's identity and keys: generated on first start in a state dir, reused after.

Files in the state dir (private keys are created mode 600):
    merchant.json                  what a terminal reads (payments.wechat.load_merchant_json)
    apiclient_key.pem              merchant API private key (the terminal signs requests with it)
    merchant_public.pem            its public half, registered with "WeChat" (the sandbox verifies)
    pub_key.pem                    WeChat Pay public key (the terminal verifies answers)
    sandbox_platform_private.pem   WeChat Pay private key: sandbox-only, never give it to a terminal
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from pos_terminal.payments import wechat_sign

MERCHANT_JSON = "merchant.json"
MERCHANT_PRIVATE = "apiclient_key.pem"
MERCHANT_PUBLIC = "merchant_public.pem"
PLATFORM_PUBLIC = "pub_key.pem"
PLATFORM_PRIVATE = "sandbox_platform_private.pem"
_ALL_FILES = (MERCHANT_JSON, MERCHANT_PRIVATE, MERCHANT_PUBLIC, PLATFORM_PUBLIC, PLATFORM_PRIVATE)


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


def load_or_create(state_dir: Path) -> SandboxKeys:
    """Load the keys from `state_dir`, generating everything on first use.

    Raises:
        SandboxStateError: some files exist but not all, or one cannot be read.
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
    return _load(state_dir)


def _load(state_dir: Path) -> SandboxKeys:
    try:
        info = json.loads((state_dir / MERCHANT_JSON).read_text(encoding="utf-8"))
        merchant_public = (state_dir / MERCHANT_PUBLIC).read_bytes()
        platform_private = (state_dir / PLATFORM_PRIVATE).read_bytes()
        return SandboxKeys(
            mchid=str(info["mchid"]),
            appid=str(info["appid"]),
            merchant_serial=str(info["merchant_serial"]),
            merchant_public_key=wechat_sign.load_public_key(merchant_public),
            public_key_id=str(info["public_key_id"]),
            platform_private_key=wechat_sign.load_private_key(platform_private, validate=False),
            apiv3_key=str(info["apiv3_key"]),
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
    }
    # merchant.json is written last: its presence means the set is complete
    _write(state_dir / MERCHANT_JSON, json.dumps(info, indent=2).encode() + b"\n", private=True)


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
