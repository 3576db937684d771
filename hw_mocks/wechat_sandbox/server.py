"""The sandbox's HTTP face: authenticate /v3 requests, route them, sign every answer.

`SandboxApp.handle` works on plain values (method, raw path, headers, body) and returns a `Reply`;
/sandbox control requests go to control.py; `SandboxHTTPServer` moves them over sockets.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives.asymmetric import rsa

from hw_mocks.wechat_sandbox import control, schema
from hw_mocks.wechat_sandbox.faults import FaultQueue, Faults
from hw_mocks.wechat_sandbox.keys import SandboxKeys
from hw_mocks.wechat_sandbox.notify import Notifier
from hw_mocks.wechat_sandbox.orders import CST
from hw_mocks.wechat_sandbox.schema import ApiError
from hw_mocks.wechat_sandbox.state import OrderBook
from pos_terminal.payments import wechat_sign

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_SKEW_S = 300  # reference §1.1: requests more than 5 min off are refused
_ORDER = r"/v3/pay/transactions/out-trade-no/([^/?]+)"
_REFUNDS = r"/v3/refund/domestic/refunds"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"/v3/certificates"), "certificates"),
    ("POST", re.compile(r"/v3/pay/transactions/native"), "native"),
    ("POST", re.compile(r"/v3/pay/transactions/codepay"), "codepay"),
    ("GET", re.compile(_ORDER), "query"),
    ("GET", re.compile(r"/v3/pay/transactions/id/([^/?]+)"), "query_id"),
    ("POST", re.compile(_ORDER + "/close"), "close"),
    ("POST", re.compile(_ORDER + "/reverse"), "reverse"),
    ("POST", re.compile(_REFUNDS), "refund"),
    ("GET", re.compile(_REFUNDS + r"/([^/?]+)"), "refund_query"),
)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    drop: bool = False


class SandboxApp:
    """Everything the sandbox answers, independent of sockets."""

    def __init__(
        self,
        keys: SandboxKeys,
        book: OrderBook,
        clock: Callable[[], float],
        *,
        error_style: str = "underscore",
    ) -> None:
        """`clock` times signatures and the skew check; orders follow `book.clock`."""
        self.keys, self.book, self._clock = keys, book, clock
        self.error_style = error_style
        self.faults = Faults()  # replaced whole (atomic) by WeChatSandbox.set_faults
        self.next_faults = FaultQueue()
        self.stopping = threading.Event()  # wakes requests and answers held back by faults
        self.notifier: Notifier | None = None  # set by WeChatSandbox when notifications are on
        self._nonces: dict[str, float] = {}
        self._nonce_lock = threading.Lock()

    def reset(self) -> None:
        """Forget all orders, payment codes, queued one-shot faults and notifications."""
        self.book.reset()
        self.next_faults.clear()
        if self.notifier is not None:
            self.notifier.clear()

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; `headers` keys are lower case."""
        path, _, query = raw_path.partition("?")
        if path.startswith("/sandbox/"):
            status, answer = control.handle(self, method, path, body)
            return Reply(status, dump(answer), (("Content-Type", "application/json"),))
        faults = self.next_faults.take(method, path) or self.faults
        if faults.hold_s > 0 and self.stopping.wait(faults.hold_s):
            return Reply(500, b"", (), 0.0, drop=True)  # stopped: the request never lands
        try:
            if faults.rate_limited:
                raise ApiError(
                    429, "FREQUENCY_LIMITED", "频率超限，请降低请求频率", schema.ID_RATE_LIMIT
                )
            status, data, error_id = self._api(method, raw_path, path, query, headers, body, faults)
        except ApiError as err:
            status, data, error_id = err.status, err.body(), err.error_id
        except Exception:  # the one catch-all: any sandbox bug answers like WeChat's 500
            log.exception("sandbox failed on %s %s", method, raw_path)
            status, data, error_id = (
                500,
                {"code": "SYSTEM_ERROR", "message": "系统繁忙，请稍后重试"},
                0,
            )
        if faults.system_error_after_commit:
            status, error_id = 500, schema.ID_SYSTEM
            data = {"code": "SYSTEM_ERROR", "message": "系统繁忙，请稍后重试"}
        if data is not None and status >= 400:
            data["code"] = schema.spell(data["code"], self.error_style)
        if faults.answer_amount_fen and data is not None and isinstance(data.get("amount"), dict):
            data["amount"] = {**data["amount"], "total": faults.answer_amount_fen}
        reply = self._signed(status, data, error_id, faults, headers.get("wechatpay-serial"))
        log.info("sandbox %s %s -> %d", method, path, status)
        return reply

    # ------------------------------------------------------------ /v3 API

    def _api(
        self,
        method: str,
        raw_path: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        faults: Faults,
    ) -> tuple[int, dict[str, Any] | None, int]:
        auth = self._authenticate(method, raw_path, headers, body)
        payload: dict[str, Any] = {}
        if method == "POST":
            payload = schema.json_body(body)
            claimed = payload.get("mchid")
        elif path == "/v3/certificates" or path.startswith("/v3/refund/"):
            claimed = None  # GETs without ?mchid= (a direct merchant's refund query has none)
        else:
            values = parse_qs(query).get("mchid")
            claimed = values[0] if values else None
            if claimed is None:
                detail = {
                    "field": "mchid",
                    "value": None,
                    "issue": "缺少必填字段",
                    "location": "query",
                }
                raise ApiError(400, "PARAM_ERROR", "缺少参数 mchid", schema.ID_PARAM, detail)
        if claimed is not None and claimed != auth.mchid:
            raise self._sign_error(
                method, raw_path, b"", "mchid", "Authorization中的商户号与请求参数不一致"
            )
        for verb, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and verb == method:
                arg = unquote(match.group(1)) if match.groups() else ""
                status, data = self._dispatch(name, arg, payload, faults)
                return status, data, schema.ID_OK
        raise ApiError(
            404, "NOT_FOUND", f"资源不存在 no such API: {method} {path}", schema.ID_NOT_EXIST
        )

    def _dispatch(
        self, name: str, arg: str, payload: dict[str, Any], faults: Faults
    ) -> tuple[int, dict[str, Any] | None]:
        book = self.book
        if name == "certificates":
            return 200, self._certificates()
        if name == "native":
            return 200, book.create_native(payload)
        if name == "codepay":
            return book.create_codepay(payload)
        if name == "query":
            return 200, book.query(arg)
        if name == "query_id":
            return 200, book.query_by_id(arg)
        if name == "close":
            book.close(arg, payload)
            return 204, None
        if name == "refund":
            return 200, book.create_refund(payload)
        if name == "refund_query":
            return 200, book.query_refund(arg)
        return 200, book.reverse(
            arg, payload, refuse_while_paying=faults.reverse_refused_while_paying
        )

    def _authenticate(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> wechat_sign.Authorization:
        """Reference §1.1 and "What a faithful sandbox must reproduce" item 1."""
        value = headers.get("authorization", "")
        try:
            auth = wechat_sign.parse_authorization(value)
        except wechat_sign.SignFormatError as exc:
            raise self._sign_error(
                method, raw_path, b"", "authorization", f"Http头Authorization值格式错误: {exc}"
            ) from exc
        keys = self.keys
        message = wechat_sign.request_message(
            method, raw_path, auth.timestamp, auth.nonce_str, body
        )
        if auth.mchid != keys.mchid:
            raise self._sign_error(method, raw_path, message, "mchid", "商户号不存在")
        if auth.serial_no != keys.merchant_serial:
            raise self._sign_error(method, raw_path, message, "serial_no", "商户证书序列号有误。")
        now = self._clock()
        if not auth.timestamp.isdigit() or abs(int(auth.timestamp) - now) > MAX_SKEW_S:
            raise self._sign_error(
                method, raw_path, message, "timestamp", "请求时间戳与当前时间相差过大"
            )
        if not wechat_sign.verify(keys.merchant_public_key, message, auth.signature):
            raise self._sign_error(method, raw_path, message, "signature", "签名错误，请检查后再试")
        with self._nonce_lock:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t <= 2 * MAX_SKEW_S}
            if auth.nonce_str in self._nonces:
                raise self._sign_error(
                    method, raw_path, message, "nonce_str", "重复的请求（nonce已使用）"
                )
            self._nonces[auth.nonce_str] = now
        return auth

    @staticmethod
    def _sign_error(method: str, raw_path: str, message: bytes, field: str, text: str) -> ApiError:
        """401 SIGN_ERROR with the diagnostics shape of reference §0."""
        detail = {
            "field": field,
            "location": "authorization",
            "detail": {"issue": "sign not match" if field == "signature" else f"bad {field}"},
            "sign_information": {
                "method": method,
                "url": raw_path,
                "sign_message_length": len(message),
                "truncated_sign_message": message[:100].decode("utf-8", "replace"),
            },
        }
        return ApiError(401, "SIGN_ERROR", text, schema.ID_SIGN, detail)

    def _certificates(self) -> dict[str, Any]:
        """Reference §1.4: the platform certificate, AES-256-GCM sealed with the APIv3 key."""
        keys = self.keys
        if "certificate" not in keys.key_modes:
            msg = "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。"
            raise ApiError(404, "RESOURCE_NOT_EXISTS", msg, schema.ID_NOT_EXIST)
        nonce = wechat_sign.new_nonce(12)
        sealed = wechat_sign.encrypt_resource(
            keys.apiv3_key, keys.cert_pem, nonce=nonce, associated_data="certificate"
        )
        entry = {
            "serial_no": keys.cert_serial,
            "effective_time": keys.cert_not_before.astimezone(CST).isoformat(),
            "expire_time": keys.cert_not_after.astimezone(CST).isoformat(),
            "encrypt_certificate": {
                "algorithm": wechat_sign.AEAD_ALGORITHM,
                "nonce": nonce,
                "associated_data": "certificate",
                "ciphertext": sealed,
            },
        }
        return {"data": [entry]}

    def _signing_key(self, asked_serial: str | None) -> tuple[rsa.RSAPrivateKey, str]:
        """Reference §1.2 transition: the request's Wechatpay-Serial picks the key type —
        PUB_KEY_ID → public-key mode; the cert serial, anything else or nothing → cert mode."""
        keys = self.keys
        public = (keys.platform_private_key, keys.public_key_id)
        if "certificate" not in keys.key_modes:
            return public
        if "public_key" in keys.key_modes and asked_serial == keys.public_key_id:
            return public
        return keys.cert_private_key, keys.cert_serial

    def _signed(
        self,
        status: int,
        data: dict[str, Any] | None,
        error_id: int,
        faults: Faults,
        asked_serial: str | None,
    ) -> Reply:
        """Every /v3 answer is signed with a WeChat Pay key (reference §1.2)."""
        body = b"" if data is None else dump(data)
        headers = [("Request-ID", f"{secrets.token_hex(16).upper()}-{error_id}")]
        if data is not None:
            headers.append(("Content-Type", "application/json"))
        if faults.sign_responses:
            timestamp, nonce = str(int(self._clock())), wechat_sign.new_nonce()
            message = wechat_sign.response_message(timestamp, nonce, body)
            key, serial = self._signing_key(asked_serial)
            headers += [
                ("Wechatpay-Timestamp", timestamp),
                ("Wechatpay-Nonce", nonce),
                ("Wechatpay-Signature", wechat_sign.sign(key, message)),
                ("Wechatpay-Serial", serial),
                ("Wechatpay-Signature-Type", wechat_sign.SCHEME),
            ]
        if faults.tamper_body and body.endswith(b"}"):
            body = body[:-1] + b" }"  # still valid JSON: only the signature can catch it
        return Reply(status, body, tuple(headers), faults.delay_s, faults.drop_connection)


def dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- sockets


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.stopping = app.stopping

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout tests do) is routine; anything else gets a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("sandbox: client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: no stale keep-alive sockets

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        lengths = set(self.headers.get_all("Content-Length") or ["0"])
        text = lengths.pop() if len(lengths) == 1 else "several"
        if not (text.isascii() and text.isdigit()):  # negative, not a number, conflicting
            self.send_error(400, "Content-Length malformed")
            return
        if int(text) > MAX_REQUEST_BYTES:
            self.send_error(413, f"request body over {MAX_REQUEST_BYTES} bytes")
            return
        body = self.rfile.read(int(text))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.app.handle(method, self.path, headers, body)
        if reply.delay_s > 0:
            self.server.stopping.wait(reply.delay_s)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox http: " + format, *args)
