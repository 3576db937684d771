"""WeChat Pay APIv3 client for a terminal: Native QR, payment code, query, close, reverse, refunds.

Reference: wechatpay-v3.md §0-§5. Every request is signed and names our WeChat Pay public key in
`Wechatpay-Serial`; every 2xx answer must be signed by a WeChat key we hold (`PlatformKeys`): that
public key, or a platform certificate (transition period). An answer naming an unknown certificate
serial makes the client load `/v3/certificates` once (at most every 60 s) and check it again.
Errors (all raised by `WeChatPayClient`; defined in wechat_errors.py and wechat_keys.py):

    PaymentError (pos_terminal.errors)
    └── WeChatPayError
        ├── WeChatApiError        WeChat answered 4xx/5xx: .status .code .message .detail
        │                         .request_id .normalized_code (SYSTEM_ERROR == SYSTEMERROR)
        │                         .outcome_unknown (5xx, 429, SYSTEMERROR, BANKERROR: query first)
        ├── WeChatTransportError  no usable answer; .maybe_sent tells whether WeChat may have acted
        └── WeChatResponseError   an answer we must not trust: bad/missing signature, stale
            │                     timestamp, garbage JSON, missing or mistyped fields, huge body
            └── CertificateError  a /v3/certificates answer that fails its strict checks

Over ~400 lines on purpose: credentials, results, answer parsing and transport form one public
surface; if it grows, answer parsing (parse_transaction, parse_api_error) moves out first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from pos_terminal.payment_codes import mask_code
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat_errors import WeChatApiError as WeChatApiError  # re-exports
from pos_terminal.payments.wechat_errors import WeChatPayError as WeChatPayError
from pos_terminal.payments.wechat_errors import WeChatResponseError as WeChatResponseError
from pos_terminal.payments.wechat_errors import WeChatTransportError as WeChatTransportError
from pos_terminal.payments.wechat_keys import (
    CERTIFICATES_PATH,
    CertificateError,
    PlatformKeys,
    RefreshThrottle,
    looks_like_certificate_serial,
    parse_certificates,
)
from pos_terminal.payments.wechat_refund_types import Refund, refund_from_json
from pos_terminal.payments.wechat_refund_types import RefundStatus as RefundStatus  # re-export

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # answers larger than 1 MiB are refused unread
MAX_CLOCK_SKEW_S = 300  # §1.2: reject |now - Wechatpay-Timestamp| > 5 min
DEFAULT_USER_AGENT = "pos-terminal/0.1 (WeChatPay APIv3; Linux)"
_REFUNDS = "/v3/refund/domestic/refunds"


# ---------------------------------------------------------------- results


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"  # paid
    REFUND = "REFUND"  # paid, refund(s) started
    NOTPAY = "NOTPAY"  # created, not paid
    CLOSED = "CLOSED"  # closed by the merchant or by expiry
    REVOKED = "REVOKED"  # reversed (payment code only)
    USERPAYING = "USERPAYING"  # customer is entering the password (payment code only)
    PAYERROR = "PAYERROR"  # failed (payment code only); always reverse it
    ACCEPT = "ACCEPT"  # received, debit pending (rare)


@dataclass(frozen=True)
class Transaction:
    """The parts of WeChat's "Transaction" object (§3.4) that a terminal uses."""

    out_trade_no: str
    trade_state: TradeState
    transaction_id: str | None = None
    amount_total_fen: int | None = None
    payer_total_fen: int | None = None
    success_time: str | None = None
    trade_state_desc: str | None = None
    trade_type: str | None = None
    bank_type: str | None = None
    payer_openid: str | None = None
    mchid: str | None = None
    appid: str | None = None

    def contradiction(
        self, *, out_trade_no: str, amount_fen: int, mchid: str, appid: str
    ) -> str | None:
        """What in a paid answer disagrees with our order, or None: never approve on it.

        A paid answer must name our order, merchant and app and carry the amount we asked for.
        """
        problems = [
            f"{name} {theirs!r:.40} (ours {ours!r})"
            for name, theirs, ours in (
                ("out_trade_no", self.out_trade_no, out_trade_no),
                ("amount.total", self.amount_total_fen, amount_fen),
                ("mchid", self.mchid, mchid),
                ("appid", self.appid, appid),
            )
            if theirs != ours
        ]
        return "WeChat says " + ", ".join(problems) if problems else None


@dataclass(frozen=True)
class WeChatCredentials:
    """A merchant's identity and keys; key material never appears in repr."""

    mchid: str
    appid: str
    merchant_serial: str  # 40 hex, upper case: the merchant API certificate serial
    merchant_private_key: rsa.RSAPrivateKey = field(repr=False)
    platform_public_key: rsa.RSAPublicKey = field(repr=False)
    public_key_id: str  # PUB_KEY_ID_...: names the WeChat Pay public key
    apiv3_key: str = field(repr=False)


def load_merchant_json(path: Path) -> WeChatCredentials:
    """Read a `merchant.json` (as the sandbox writes it); key paths are relative to its folder.

    Other keys are not ours: `key_modes`, and a switching merchant's `platform_certificate` and
    its serial (the client names the public key, and loads certificates when an answer needs one).

    Raises:
        WeChatPayError: the file or a key file is missing, unreadable or malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
        text = {name: _need_str(data, name) for name in _MERCHANT_FIELDS}
        private_pem = (path.parent / text["merchant_private_key"]).read_bytes()
        public_pem = (path.parent / text["platform_public_key"]).read_bytes()
        return WeChatCredentials(
            mchid=text["mchid"],
            appid=text["appid"],
            merchant_serial=text["merchant_serial"],
            merchant_private_key=wechat_sign.load_private_key(private_pem),
            platform_public_key=wechat_sign.load_public_key(public_pem),
            public_key_id=text["public_key_id"],
            apiv3_key=text["apiv3_key"],
        )
    except (OSError, ValueError) as exc:
        raise WeChatPayError(f"{path}: cannot load merchant credentials: {exc}") from exc


# merchant.json keys are the credential field names; the two key fields hold file paths
_MERCHANT_FIELDS = tuple(f.name for f in fields(WeChatCredentials))


def _need_str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name!r} must be a non-empty string")
    return value


# ---------------------------------------------------------------- answer parsing


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WeChatResponseError(f"{what}: body is not JSON") from exc
    if not isinstance(data, dict):
        raise WeChatResponseError(f"{what}: body is not a JSON object")
    return data


def _field(data: Mapping[str, Any], name: str, kind: type, what: str, *, required: bool) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise WeChatResponseError(f"{what}: missing {name!r}")
        return None
    # bool is an int in Python; WeChat never sends booleans where numbers belong
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WeChatResponseError(f"{what}: {name!r} should be {kind.__name__}, got {value!r:.40}")
    return value


def parse_transaction(body: bytes, *, what: str = "transaction") -> Transaction:
    """Parse a Transaction answer strictly; unknown extra fields are ignored.

    Raises:
        WeChatResponseError: not JSON, or a required field is missing or of the wrong type.
    """
    data = _json_object(body, what)
    raw_state = _field(data, "trade_state", str, what, required=True)
    try:
        state = TradeState(raw_state)
    except ValueError as exc:
        raise WeChatResponseError(f"{what}: unknown trade_state {raw_state!r:.40}") from exc
    amount = _field(data, "amount", dict, what, required=False) or {}
    payer = _field(data, "payer", dict, what, required=False) or {}
    return Transaction(
        out_trade_no=_field(data, "out_trade_no", str, what, required=True),
        trade_state=state,
        transaction_id=_field(data, "transaction_id", str, what, required=False),
        amount_total_fen=_field(amount, "total", int, f"{what}.amount", required=False),
        payer_total_fen=_field(amount, "payer_total", int, f"{what}.amount", required=False),
        success_time=_field(data, "success_time", str, what, required=False),
        trade_state_desc=_field(data, "trade_state_desc", str, what, required=False),
        trade_type=_field(data, "trade_type", str, what, required=False),
        bank_type=_field(data, "bank_type", str, what, required=False),
        payer_openid=_field(payer, "openid", str, f"{what}.payer", required=False),
        mchid=_field(data, "mchid", str, what, required=False),
        appid=_field(data, "appid", str, what, required=False),
    )


def parse_refund(body: bytes, *, out_refund_no: str, out_trade_no: str | None = None) -> Refund:
    """Parse a Refund answer strictly (wechat_refund_types) for `out_refund_no` (and order).

    Raises:
        WeChatResponseError: not JSON, a field missing or mistyped, or another refund's answer.
    """
    data = _json_object(body, "refund")
    try:
        return refund_from_json(data, out_refund_no=out_refund_no, out_trade_no=out_trade_no)
    except ValueError as exc:
        raise WeChatResponseError(f"refund {out_refund_no!r:.70}: {exc}") from exc


def parse_api_error(status: int, body: bytes, request_id: str) -> WeChatApiError:
    """Turn a 4xx/5xx body into a WeChatApiError; a non-JSON body keeps the HTTP status as code."""
    try:
        data = _json_object(body, "error")
        code = _field(data, "code", str, "error", required=True)
        message = _field(data, "message", str, "error", required=False) or ""
        detail = _field(data, "detail", dict, "error", required=False)
    except WeChatResponseError:
        text = body[:200].decode("utf-8", "replace")
        return WeChatApiError(status, f"HTTP_{status}", text, None, request_id)
    return WeChatApiError(status, code, message, detail, request_id)


# ---------------------------------------------------------------- the client


class WeChatPayClient:
    """Async APIv3 client over httpx; use as `async with WeChatPayClient(...) as client`."""

    def __init__(
        self,
        creds: WeChatCredentials,
        *,
        base_urls: Sequence[str],
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
        user_agent: str = DEFAULT_USER_AGENT,
        keys: PlatformKeys | None = None,
    ) -> None:
        """`keys` defaults to the credentials' public key; pass a shared one to see its updates."""
        if not base_urls:
            raise ValueError("base_urls needs at least one host (primary first, then backup)")
        self._creds = creds
        self._base_urls = tuple(url.rstrip("/") for url in base_urls)
        self._clock = clock
        self._user_agent = user_agent
        self._timeout = httpx.Timeout(
            connect=connect_timeout_s,
            read=read_timeout_s,
            write=read_timeout_s,
            pool=connect_timeout_s,
        )
        self._http: httpx.AsyncClient | None = None
        self._keys = keys if keys is not None else PlatformKeys.from_credentials(creds)
        self._refresh_lock = asyncio.Lock()
        self._throttle = RefreshThrottle(clock)
        # answers refused because their signature did not verify: a security event each
        self.signature_failures = 0

    async def __aenter__(self) -> Self:
        # plain-HTTP hosts (the loopback sandbox) need no CA bundle, and loading one costs ~30 ms
        tls = any(url.startswith("https://") for url in self._base_urls)
        self._http = httpx.AsyncClient(timeout=self._timeout, trust_env=False, verify=tls)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def mchid(self) -> str:
        return self._creds.mchid

    @property
    def appid(self) -> str:
        return self._creds.appid

    # ------------------------------------------------------------ endpoints

    async def create_native(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        description: str,
        notify_url: str,
        time_expire: datetime | None = None,
    ) -> str:
        """Create a Native (merchant-presented QR) order and return its `code_url` (§3.1)."""
        body: dict[str, Any] = {
            "appid": self._creds.appid,
            "mchid": self._creds.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
        }
        if time_expire is not None:
            if time_expire.tzinfo is None:
                raise ValueError("time_expire must carry a time zone (RFC 3339 needs an offset)")
            body["time_expire"] = time_expire.isoformat(timespec="seconds")
        answer = await self._call("POST", "/v3/pay/transactions/native", body)
        self._expect(answer, 200)
        data = _json_object(answer.body, "native order")
        return str(_field(data, "code_url", str, "native order", required=True))

    async def create_codepay(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        description: str,
        auth_code: str,
        store_id: str,
        device_id: str,
        device_ip: str,
    ) -> Transaction:
        """Charge a customer's payment code (§3.2): SUCCESS at once, or USERPAYING (202) to poll."""
        body = {
            "appid": self._creds.appid,
            "mchid": self._creds.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "payer": {"auth_code": auth_code},
            "amount": {"total": amount_fen, "currency": "CNY"},
            # store_info.out_id is the merchant's own store code; .id would be WeChat's store number
            "scene_info": {
                "device_id": device_id,
                "device_ip": device_ip,
                "store_info": {"out_id": store_id},
            },
        }
        path = "/v3/pay/transactions/codepay"
        answer = await self._call("POST", path, body, note=f"code {mask_code(auth_code)}")
        self._expect(answer, 200, 202)
        if answer.status == 202:
            pending = _json_object(answer.body or b"{}", "codepay 202")
            state = _field(pending, "trade_state", str, "codepay 202", required=False)
            if state not in (None, TradeState.USERPAYING):
                raise WeChatResponseError(f"codepay 202 with trade_state {state!r:.40}")
            return Transaction(out_trade_no=out_trade_no, trade_state=TradeState.USERPAYING)
        return self._own(parse_transaction(answer.body, what="codepay"), out_trade_no)

    async def query(self, *, out_trade_no: str) -> Transaction:
        """Query an order by our number (§3.4); an unknown order raises ORDER_NOT_EXIST (404)."""
        path = f"{_order_path(out_trade_no)}?mchid={quote(self._creds.mchid, safe='')}"
        answer = await self._call("GET", path, None)
        self._expect(answer, 200)
        return self._own(parse_transaction(answer.body, what="query"), out_trade_no)

    async def close(self, *, out_trade_no: str) -> None:
        """Close an unpaid Native order (§3.5); WeChat answers 204 and closing twice is fine."""
        answer = await self._call(
            "POST", f"{_order_path(out_trade_no)}/close", {"mchid": self._creds.mchid}
        )
        self._expect(answer, 204)

    async def reverse(self, *, out_trade_no: str) -> None:
        """Reverse a payment-code order (§3.6): unpaid → closed, paid → money returned; REVOKED."""
        body = {"appid": self._creds.appid, "mchid": self._creds.mchid}
        answer = await self._call("POST", f"{_order_path(out_trade_no)}/reverse", body)
        self._expect(answer, 200)

    async def create_refund(
        self,
        *,
        out_refund_no: str,
        out_trade_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str | None = None,
        notify_url: str | None = None,
    ) -> Refund:
        """Ask for a refund (§3.7); the answer means accepted (usually PROCESSING), not done.
        On an unknown outcome (transport error, 5xx, 429) query it; if RESOURCE_NOT_EXISTS,
        resend the same number and amounts, never a new number (§4.5)."""
        amount = {"refund": refund_fen, "total": total_fen, "currency": "CNY"}
        body = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "amount": amount}
        if reason is not None:
            body["reason"] = reason
        if notify_url is not None:
            body["notify_url"] = notify_url
        answer = await self._call("POST", _REFUNDS, body, note=f"refund {out_refund_no}")
        self._expect(answer, 200)
        return parse_refund(answer.body, out_refund_no=out_refund_no, out_trade_no=out_trade_no)

    async def query_refund(self, *, out_refund_no: str) -> Refund:
        """The refund now (§3.7); an unknown number raises WeChatApiError RESOURCE_NOT_EXISTS."""
        answer = await self._call("GET", f"{_REFUNDS}/{quote(out_refund_no, safe='*@')}", None)
        self._expect(answer, 200)
        return parse_refund(answer.body, out_refund_no=out_refund_no)

    async def refresh_certificates(self) -> list[str]:
        """Load WeChat's platform certificates (§1.4) into our keys; returns their serials.

        The answer is decrypted and checked first, then its signature is verified with the keys
        it brings (nothing else can vouch for it). A public-key-only merchant (404
        RESOURCE_NOT_EXISTS) has none: [].

        Raises:
            CertificateError: a certificate or the answer's signature fails its checks.
            WeChatApiError, WeChatTransportError, WeChatResponseError: as for any call.
        """
        try:
            answer = await self._call("GET", CERTIFICATES_PATH, None, self_signed=True)
        except WeChatApiError as exc:
            if exc.status == 404 and exc.normalized_code == "RESOURCENOTEXISTS":
                return []
            raise
        self._expect(answer, 200)
        certificates = parse_certificates(answer.body, self._creds.apiv3_key, self._clock())
        try:
            wechat_sign.check_signed_message(
                answer.headers,
                answer.body,
                keys={**self._keys.snapshot(), **certificates},
                now=self._clock(),
                max_skew_s=MAX_CLOCK_SKEW_S,
            )
        except wechat_sign.SignFormatError as exc:
            self._signature_failed(answer, exc)
            raise CertificateError(
                f"certificates (request {answer.request_id or '-'}): {exc}"
            ) from exc
        self._keys.add(certificates)
        log.info("wechat platform certificates loaded: %s", ", ".join(certificates) or "none")
        return list(certificates)

    # ------------------------------------------------------------ transport and verification

    @staticmethod
    def _expect(answer: _Answer, *statuses: int) -> None:
        if answer.status not in statuses:
            raise WeChatResponseError(
                f"unexpected HTTP {answer.status} (expected {'/'.join(map(str, statuses))}), "
                f"request {answer.request_id or '-'}"
            )

    @staticmethod
    def _own(tx: Transaction, out_trade_no: str) -> Transaction:
        if tx.out_trade_no != out_trade_no:
            raise WeChatResponseError(
                f"answer is for order {tx.out_trade_no!r}, not {out_trade_no!r}"
            )
        return tx

    async def _call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        *,
        note: str = "",
        self_signed: bool = False,
    ) -> _Answer:
        """Send one signed request, failing over to the next host only if nothing was sent.

        `self_signed`: a 2xx answer is signed by keys it carries; the caller verifies it.

        Raises:
            WeChatApiError, WeChatTransportError, WeChatResponseError.
        """
        if self._http is None:
            raise RuntimeError("WeChatPayClient is not open: use it as `async with client:`")
        body = (
            b""
            if payload is None
            else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        )
        outcome = "no answer"
        try:
            answer = await self._send_with_failover(self._http, method, path, body)
            outcome = f"HTTP {answer.status} request {answer.request_id or '-'}"
            if not (self_signed and answer.status < 300):
                await self._verify(answer, may_refresh=not self_signed)
            if answer.status >= 400:
                raise parse_api_error(answer.status, answer.body, answer.request_id)
            return answer
        except WeChatApiError as exc:
            outcome = f"{outcome} {exc.code}"
            raise
        except WeChatPayError as exc:
            outcome = f"{outcome}: {type(exc).__name__}"
            raise
        finally:
            log.info("wechat %s %s%s -> %s", method, path, f" ({note})" if note else "", outcome)

    async def _send_with_failover(
        self, http: httpx.AsyncClient, method: str, path: str, body: bytes
    ) -> _Answer:
        failures: list[str] = []
        for base in self._base_urls:
            url = httpx.URL(base + path)
            headers = self._headers(method, url.raw_path.decode("ascii"), body)
            try:
                answer = await self._exchange(http, method, url, headers, body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # the request never left this machine: the next host is safe to try
                failures.append(f"{base}: {type(exc).__name__}: {exc}")
                log.warning(
                    "wechat %s unreachable (%s); trying the next host", base, type(exc).__name__
                )
                continue
            except httpx.TransportError as exc:
                raise WeChatTransportError(
                    f"{base}{path}: {type(exc).__name__} after sending; outcome unknown",
                    maybe_sent=True,
                ) from exc
            return answer
        raise WeChatTransportError(
            "no WeChat Pay host reachable: " + "; ".join(failures), maybe_sent=False
        )

    def _headers(self, method: str, signed_url: str, body: bytes) -> dict[str, str]:
        creds = self._creds
        auth = wechat_sign.authorization_header(
            method=method,
            url=signed_url,
            body=body,
            mchid=creds.mchid,
            serial_no=creds.merchant_serial,
            private_key=creds.merchant_private_key,
            timestamp=int(self._clock()),
            nonce=wechat_sign.new_nonce(),
        )
        headers = {
            "Authorization": auth,
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            "Wechatpay-Serial": creds.public_key_id,
        }
        if method == "POST":
            headers["Content-Type"] = "application/json"
        return headers

    async def _exchange(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        body: bytes,
    ) -> _Answer:
        request = http.build_request(
            method, url, headers=headers, content=body if method == "POST" else None
        )
        response = await http.send(request, stream=True)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise WeChatResponseError(f"answer of {declared} bytes exceeds {MAX_BODY_BYTES}")
            chunks = bytearray()
            async for chunk in response.aiter_bytes():
                chunks += chunk
                if len(chunks) > MAX_BODY_BYTES:
                    raise WeChatResponseError(f"answer exceeds {MAX_BODY_BYTES} bytes")
        finally:
            await response.aclose()
        return _Answer(response.status_code, bytes(chunks), response.headers)

    async def _verify(self, answer: _Answer, *, may_refresh: bool) -> None:
        """A 2xx must be signed and fresh; an error answer is checked only when it is signed.

        An unknown certificate serial loads the certificates once (`may_refresh`), then retries.
        """
        if answer.status >= 300 and "Wechatpay-Signature" not in answer.headers:
            return
        try:
            self._check(answer)
        except wechat_sign.UnknownSignerError as exc:
            if not (
                may_refresh
                and looks_like_certificate_serial(exc.serial)
                and await self._learn(exc.serial, answer)
            ):
                raise self._untrusted(answer, exc) from exc
            try:
                self._check(answer)
            except wechat_sign.SignFormatError as again:
                raise self._untrusted(answer, again) from again
        except wechat_sign.SignFormatError as exc:
            raise self._untrusted(answer, exc) from exc

    def _check(self, answer: _Answer) -> None:
        wechat_sign.check_signed_message(
            answer.headers,
            answer.body,
            keys=self._keys.snapshot(),
            # a stale error grants nothing, and a terminal with a bad clock must see SIGN_ERROR
            now=self._clock() if answer.status < 300 else None,
            max_skew_s=MAX_CLOCK_SKEW_S,
        )

    async def _learn(self, serial: str, answer: _Answer) -> bool:
        """Whether certificate `serial` is known, refreshing if none was done for 60 s.

        A failed refresh is reported as an untrusted `answer`: WeChat did answer the request,
        so a transport or API error of the certificate download must not stand for it.
        """
        async with self._refresh_lock:  # concurrent answers wait for one download
            if serial in self._keys:
                return True
            if not self._throttle.allow():
                return False
            try:
                await self.refresh_certificates()
            except WeChatPayError as exc:
                raise self._untrusted(answer, exc) from exc
            return serial in self._keys

    def _untrusted(self, answer: _Answer, exc: Exception) -> WeChatResponseError:
        self._signature_failed(answer, exc)
        return WeChatResponseError(
            f"HTTP {answer.status} request {answer.request_id or '-'}: {exc}"
        )

    def _signature_failed(self, answer: _Answer, exc: Exception) -> None:
        self.signature_failures += 1
        log.warning(
            "wechat answer refused, its signature did not verify: HTTP %s request %s: %s",
            answer.status,
            answer.request_id or "-",
            exc,
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: httpx.Headers

    @property
    def request_id(self) -> str:
        return str(self.headers.get("Request-ID", ""))


def _order_path(out_trade_no: str) -> str:
    # percent-encode so an odd number can never change the path; the signed URL is what is sent
    return f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='*')}"
