"""WeChat's verification keys by `Wechatpay-Serial`: the public key and platform certificates.

Reference: wechatpay-v3.md §1.2, §1.4, §1.5. During the key switch WeChat signs answers and
notifications with the WeChat Pay public key (`PUB_KEY_ID_…`) or with a platform certificate
(40-hex serial); `PlatformKeys` holds both kinds, the certificates loaded from a
`GET /v3/certificates` answer, which is checked strictly before anything is added.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat_errors import WeChatResponseError

if TYPE_CHECKING:
    from pos_terminal.payments.wechat import WeChatCredentials

log = logging.getLogger(__name__)

CERTIFICATES_PATH = "/v3/certificates"
_CERTIFICATE_SERIAL = re.compile(r"[0-9A-Fa-f]{40}")


class CertificateError(WeChatResponseError):
    """A `/v3/certificates` answer we must not trust; the message names the problem."""


def looks_like_certificate_serial(serial: str) -> bool:
    """True for a platform certificate serial (40 hex digits), False for a PUB_KEY_ID_…."""
    return _CERTIFICATE_SERIAL.fullmatch(serial) is not None


class RefreshThrottle:
    """Lets an unknown certificate serial load /v3/certificates at most once per `every_s`, so a
    stranger's serial in every answer cannot turn each answer into a download."""

    def __init__(self, clock: Callable[[], float], every_s: float = 60.0) -> None:
        self._clock, self._every_s = clock, every_s
        self._last: float | None = None

    def allow(self) -> bool:
        """True (and the clock starts again) when no download was allowed within `every_s`."""
        now = self._clock()
        if self._last is not None and now - self._last < self._every_s:
            return False
        self._last = now
        return True


class PlatformKeys:
    """WeChat's public keys by `Wechatpay-Serial`; safe to share between threads."""

    def __init__(self, keys: Mapping[str, rsa.RSAPublicKey] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys = dict(keys or {})

    @classmethod
    def from_credentials(cls, creds: WeChatCredentials) -> PlatformKeys:
        """The WeChat Pay public key under its PUB_KEY_ID; certificates come later."""
        return cls({creds.public_key_id: creds.platform_public_key})

    def __contains__(self, serial: object) -> bool:
        with self._lock:
            return serial in self._keys

    def snapshot(self) -> dict[str, rsa.RSAPublicKey]:
        """A copy of serial → key, for `wechat_sign.check_signed_message(keys=...)`."""
        with self._lock:
            return dict(self._keys)

    def add(self, keys: Mapping[str, rsa.RSAPublicKey]) -> None:
        """Add (or replace) keys that were already checked."""
        with self._lock:
            self._keys.update(keys)

    def add_certificates(self, body: bytes, apiv3_key: str, now: float) -> list[str]:
        """Add the certificates of a `/v3/certificates` answer valid now; returns their serials.

        All or nothing: one bad entry adds none (see `parse_certificates`).

        Raises:
            CertificateError: the answer or one of its entries is not trustworthy.
        """
        keys = parse_certificates(body, apiv3_key, now)
        self.add(keys)
        return list(keys)


def parse_certificates(body: bytes, apiv3_key: str, now: float) -> dict[str, rsa.RSAPublicKey]:
    """The public keys of a `/v3/certificates` answer (reference §1.4) by serial.

    Each `encrypt_certificate` must be AEAD_AES_256_GCM and open with `apiv3_key` to a PEM X.509
    certificate with an RSA key, whose serial (upper-case hex) is the entry's `serial_no`, and
    `now` (Unix seconds) must lie within both the certificate's validity and the entry's
    `effective_time`..`expire_time`, else that one is skipped (logged): during a rotation the
    list may hold an expired or a not-yet-valid one. The answer's signature is the caller's.

    Raises:
        CertificateError: not JSON of the documented shape, or an entry failing a check.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise CertificateError("certificates: body is not JSON") from exc
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CertificateError("certificates: no 'data' list")
    moment = datetime.fromtimestamp(now, UTC)
    keys: dict[str, rsa.RSAPublicKey] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CertificateError(f"certificates: entry {index} is not an object")
        serial, key, valid_now = _certificate(entry, apiv3_key, moment)
        if valid_now:
            keys[serial] = key
    return keys


def _certificate(
    entry: dict[str, Any], apiv3_key: str, moment: datetime
) -> tuple[str, rsa.RSAPublicKey, bool]:
    """The entry's serial (upper case), key, and whether it is valid at `moment`."""
    serial = _text(entry, "serial_no", "certificate").upper()
    what = f"certificate {serial!r:.50}"
    sealed = entry.get("encrypt_certificate")
    if not isinstance(sealed, dict):
        raise CertificateError(f"{what}: 'encrypt_certificate' is not an object")
    if sealed.get("algorithm") != wechat_sign.AEAD_ALGORITHM:
        raise CertificateError(f"{what}: algorithm {sealed.get('algorithm')!r:.40} is not AEAD")
    ciphertext, nonce = _text(sealed, "ciphertext", what), _text(sealed, "nonce", what)
    associated_data = sealed.get("associated_data", "")
    if not isinstance(associated_data, str):
        raise CertificateError(f"{what}: 'associated_data' is not a string")
    effective, expire = _time(entry, "effective_time", what), _time(entry, "expire_time", what)
    try:
        pem = wechat_sign.decrypt_resource(
            apiv3_key, ciphertext, nonce=nonce, associated_data=associated_data
        )
    except ValueError as exc:  # SignFormatError, or a nonce that is not encodable text
        raise CertificateError(f"{what}: cannot decrypt: {exc}") from exc
    try:
        cert = x509.load_pem_x509_certificate(pem)
        cert_serial = cert.serial_number
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"{what}: not a usable PEM X.509 certificate: {exc}") from exc
    if not _CERTIFICATE_SERIAL.fullmatch(serial) or int(serial, 16) != cert_serial:
        # compared as numbers: a serial listed as 0157F0… is the certificate's 157F0…
        raise CertificateError(f"{what}: the certificate's serial is {cert_serial:X}")
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertificateError(f"{what}: {type(public_key).__name__} is not an RSA key")
    valid_now = not_before <= moment <= not_after and effective <= moment <= expire
    if not valid_now:  # during a rotation one listed certificate may be expired or not yet due
        log.info(
            "%s skipped: not valid at %s (certificate %s to %s, listed %s to %s)",
            what,
            moment.isoformat(),
            not_before.isoformat(),
            not_after.isoformat(),
            effective.isoformat(),
            expire.isoformat(),
        )
    return serial, public_key, valid_now


def _text(data: Mapping[str, Any], name: str, what: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise CertificateError(f"{what}: {name!r} is not a non-empty string")
    return value


def _time(data: Mapping[str, Any], name: str, what: str) -> datetime:
    text = _text(data, name, what)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CertificateError(f"{what}: {name} {text!r:.40} is not RFC 3339") from exc
    if value.utcoffset() is None:
        raise CertificateError(f"{what}: {name} {text!r:.40} has no UTC offset")
    return value
