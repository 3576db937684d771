"""The sandbox's HTTP face: authenticate /v3 requests, route them, sign every answer; /sandbox.

`SandboxApp.handle` works on plain values (method, raw path, headers, body) and returns a `Reply`;
`SandboxHTTPServer` is the stdlib threading server that moves those over sockets.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from hw_mocks.wechat_sandbox import schema
from hw_mocks.wechat_sandbox.keys import SandboxKeys
from hw_mocks.wechat_sandbox.schema import ApiError
from hw_mocks.wechat_sandbox.state import OrderBook, Scenario
from pos_terminal.payments import wechat_sign

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_SKEW_S = 300  # reference §1.1: requests more than 5 min off are refused
_ORDER = r"/v3/pay/transactions/out-trade-no/([^/?]+)"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/v3/pay/transactions/native"), "native"),
    ("POST", re.compile(r"/v3/pay/transactions/codepay"), "codepay"),
    ("GET", re.compile(_ORDER), "query"),
    ("GET", re.compile(r"/v3/pay/transactions/id/([^/?]+)"), "query_id"),
    ("POST", re.compile(_ORDER + "/close"), "close"),
    ("POST", re.compile(_ORDER + "/reverse"), "reverse"),
)


@dataclass(frozen=True)
class Faults:
    """Fault switches for client tests; they act on /v3 answers only (never on /sandbox)."""

    sign_responses: bool = True  # False: answers carry no Wechatpay-* signature headers
    tamper_body: bool = False  # sign the answer, then alter its body "in transit"
    delay_s: float = 0.0  # wait this long (real time) before answering: client read timeouts
    drop_connection: bool = False  # process the request, then close the socket unanswered
    system_error_after_commit: bool = False  # process the request, then answer 500 SYSTEM_ERROR


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    drop: bool = False


class SandboxApp:
    """Everything the sandbox answers, independent of sockets."""

    def __init__(self, keys: SandboxKeys, book: OrderBook, clock: Callable[[], float]) -> None:
        self._keys, self._book, self._clock = keys, book, clock
        self.faults = Faults()  # replaced whole (atomic) by WeChatSandbox.set_faults
        self._nonces: dict[str, float] = {}
        self._nonce_lock = threading.Lock()

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; `headers` keys are lower case."""
        path, _, query = raw_path.partition("?")
        if path.startswith("/sandbox/"):
            return self._control(method, path, body)
        faults = self.faults
        try:
            status, data, error_id = self._api(method, raw_path, path, query, headers, body)
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
        reply = self._signed(status, data, error_id, faults)
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
    ) -> tuple[int, dict[str, Any] | None, int]:
        auth = self._authenticate(method, raw_path, headers, body)
        payload: dict[str, Any] = {}
        if method == "POST":
            payload = _json_body(body)
            claimed = payload.get("mchid")
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
                status, data = self._dispatch(name, arg, payload)
                return status, data, schema.ID_OK
        raise ApiError(
            404, "NOT_FOUND", f"资源不存在 no such API: {method} {path}", schema.ID_NOT_EXIST
        )

    def _dispatch(
        self, name: str, arg: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        book = self._book
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
        return 200, book.reverse(arg, payload)

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
        keys = self._keys
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

    def _signed(
        self, status: int, data: dict[str, Any] | None, error_id: int, faults: Faults
    ) -> Reply:
        """Every /v3 answer is signed with the WeChat Pay key (reference §1.2)."""
        body = b"" if data is None else _dump(data)
        headers = [("Request-ID", f"{secrets.token_hex(16).upper()}-{error_id}")]
        if data is not None:
            headers.append(("Content-Type", "application/json"))
        if faults.sign_responses:
            timestamp, nonce = str(int(self._clock())), wechat_sign.new_nonce()
            message = wechat_sign.response_message(timestamp, nonce, body)
            headers += [
                ("Wechatpay-Timestamp", timestamp),
                ("Wechatpay-Nonce", nonce),
                ("Wechatpay-Signature", wechat_sign.sign(self._keys.platform_private_key, message)),
                ("Wechatpay-Serial", self._keys.public_key_id),
                ("Wechatpay-Signature-Type", wechat_sign.SCHEME),
            ]
        if faults.tamper_body and body.endswith(b"}"):
            body = body[:-1] + b" }"  # still valid JSON: only the signature can catch it
        return Reply(status, body, tuple(headers), faults.delay_s, faults.drop_connection)

    # ------------------------------------------------------------ /sandbox control (unsigned)

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        try:
            status, data = self._control_route(method, path, body)
        except ApiError as err:
            status, data = err.status, err.body()
        return Reply(status, _dump(data), (("Content-Type", "application/json"),))

    def _control_route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if (method, path) == ("POST", "/sandbox/payment-codes"):
            req = _json_body(body)
            scenario, delay = req.get("scenario"), req.get("delay_s")
            if scenario not in set(Scenario) or not (delay is None or _non_negative(delay)):
                valid = ", ".join(Scenario)
                raise ApiError(
                    400, "PARAM_ERROR", f"scenario must be one of {valid}; delay_s ≥ 0", 0
                )
            return 200, {"auth_code": self._book.issue_code(Scenario(scenario), delay)}
        if (method, path) == ("POST", "/sandbox/scan"):
            code_url = _json_body(body).get("code_url")
            if not isinstance(code_url, str):
                raise ApiError(400, "PARAM_ERROR", "code_url (string) is required", 0)
            return 200, self._book.scan(code_url)
        if (method, path) == ("GET", "/sandbox/orders"):
            return 200, {"orders": self._book.views()}
        if method == "GET" and path.startswith("/sandbox/orders/"):
            return 200, self._book.view(unquote(path.removeprefix("/sandbox/orders/")))
        if path == "/sandbox/faults" and method in ("GET", "POST"):
            if method == "POST":
                self.faults = _faults_from(_json_body(body))
            return 200, {f.name: getattr(self.faults, f.name) for f in fields(Faults)}
        raise ApiError(404, "NOT_FOUND", f"no sandbox endpoint {method} {path}", 0)


def _faults_from(req: dict[str, Any]) -> Faults:
    """Faults from a JSON object; keys not given take their defaults."""
    known = {f.name: f.type for f in fields(Faults)}
    for name, value in req.items():
        kind = known.get(name)
        ok = isinstance(value, bool) if kind == "bool" else _non_negative(value)
        if kind is None or not ok:
            raise ApiError(
                400,
                "PARAM_ERROR",
                f"bad fault option {name}={value!r}; valid: {', '.join(known)}",
                0,
            )
    return Faults(**req)


def _non_negative(value: Any) -> bool:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    return ok_type and math.isfinite(value) and value >= 0


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON", schema.ID_PARAM) from exc
    if not isinstance(data, dict):
        raise ApiError(400, "PARAM_ERROR", "请求体应为JSON对象", schema.ID_PARAM)
    return data


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- sockets


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.stopping = threading.Event()  # wakes answers held back by Faults.delay_s

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

    def _serve(self, method: str) -> None:
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_REQUEST_BYTES:
            self.send_error(413, "request body too large or Content-Length malformed")
            return
        body = self.rfile.read(int(length_text))
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
