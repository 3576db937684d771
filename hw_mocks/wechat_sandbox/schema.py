"""Request bodies as WeChat checks them: required fields, types, lengths, no unknown keys, no nulls,
no characters beyond U+FFFF (4 bytes in UTF-8, e.g. emoji) in any string.

Every violation becomes 400 PARAM_ERROR with `detail{field, value, issue, location}`
(reference §0, §5).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

# Internal error ids, the last token of Request-ID (reference §0); sandbox-invented where marked.
ID_OK = 0
ID_PARAM = 268435461
ID_OUT_OF_RANGE = 268435464
ID_UNKNOWN_FIELD = 270924358
ID_SIGN = 268443699
ID_NOT_EXIST = 268512771
ID_ORDER_PAID = 268449538
ID_REENTRY = 268498688
ID_REVERSE_ONLY = 268449641
ID_EXPIRED = 268447914
ID_ORDER_CLOSED = 268449539  # sandbox-invented
ID_CODE_USED = 268449600  # sandbox-invented
ID_NOT_ENOUGH = 268449601  # sandbox-invented
ID_TRADE_ERROR = 268449602  # sandbox-invented
ID_SYSTEM = 268435456  # sandbox-invented
ID_RATE_LIMIT = 268447840

# Error-code spellings (reference §4.3): the sandbox raises the underscore form; with
# error_style="legacy" these codes are answered in the older pages' spelling instead.
ERROR_STYLES = ("underscore", "legacy")
LEGACY_CODES = {
    "SYSTEM_ERROR": "SYSTEMERROR",
    "BANK_ERROR": "BANKERROR",
    "NOT_ENOUGH": "NOTENOUGH",
    "NO_AUTH": "NOAUTH",
    "ORDER_NOT_EXIST": "ORDERNOTEXIST",
    "ORDER_PAID": "ORDERPAID",
    "ORDER_CLOSED": "ORDERCLOSED",
    "USER_PAYING": "USERPAYING",
    "RULE_LIMIT": "RULELIMIT",
    "ACCOUNT_ERROR": "ACCOUNTERROR",
}


def spell(code: str, style: str) -> str:
    """`code` as the given error style writes it."""
    return LEGACY_CODES.get(code, code) if style == "legacy" else code


OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-*|]{6,32}\Z")
AUTH_CODE = re.compile(r"^1[0-5]\d{16}\Z")
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}\Z")  # \Z: no trailing newline
_NOTIFY_URL = re.compile(r"^https?://[^\s?#]+\Z")
_CNY = re.compile(r"^CNY\Z")


class ApiError(Exception):
    """An error answer: HTTP status, code, message, Request-ID error id and optional detail."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        error_id: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.error_id = status, code, message, error_id
        self.detail = detail

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            out["detail"] = dict(self.detail)
        return out


def json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON", ID_PARAM) from exc
    if not isinstance(data, dict):
        raise ApiError(400, "PARAM_ERROR", "请求体应为JSON对象", ID_PARAM)
    return data


def param_error(path: str, value: Any, issue: str, error_id: int = ID_PARAM) -> ApiError:
    detail = {"field": path, "value": value, "issue": issue, "location": "body"}
    return ApiError(400, "PARAM_ERROR", f"输入源“/body{path}”{issue}", error_id, detail)


@dataclass(frozen=True)
class Str:
    max_len: int
    required: bool = False
    min_len: int = 1
    pattern: re.Pattern[str] | None = None
    rfc3339: bool = False


@dataclass(frozen=True)
class Int:
    minimum: int
    required: bool = False


@dataclass(frozen=True)
class Bool:
    required: bool = False


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Spec]
    required: bool = False
    any_of: tuple[str, ...] = ()  # at least one of these must be present


@dataclass(frozen=True)
class List:
    item: Spec
    max_items: int
    required: bool = False


Spec = Str | Int | Bool | Obj | List


def check(spec: Obj, data: Any) -> None:
    """Validate a parsed JSON body against `spec`.

    Raises:
        ApiError: 400 PARAM_ERROR naming the first offending field.
    """
    _check(spec, data, "")


def _check(spec: Spec, value: Any, path: str) -> None:
    if isinstance(spec, Obj):
        _check_obj(spec, value, path)
    elif isinstance(spec, List):
        if not isinstance(value, list):
            raise param_error(path, value, "应为数组 must be an array")
        if len(value) > spec.max_items:
            raise param_error(path, len(value), "数组过长 too many items", ID_OUT_OF_RANGE)
        for i, item in enumerate(value):
            _check(spec.item, item, f"{path}/{i}")
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            raise param_error(path, value, "应为布尔值 must be a boolean")
    elif isinstance(spec, Int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise param_error(path, value, "应为整数 must be an integer")
        if value < spec.minimum:
            raise param_error(path, value, f"超出范围 must be ≥ {spec.minimum}", ID_OUT_OF_RANGE)
    else:
        _check_str(spec, value, path)


def _check_obj(spec: Obj, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise param_error(path or "/", value, "应为对象 must be an object")
    for name, item in value.items():
        sub = spec.fields.get(name)
        if sub is None:
            raise param_error(
                f"{path}/{name}", item, "无法识别的字段 unknown field", ID_UNKNOWN_FIELD
            )
        if item is None:
            raise param_error(f"{path}/{name}", None, "不允许为null null is not allowed")
        _check(sub, item, f"{path}/{name}")
    for name, sub in spec.fields.items():
        if sub.required and name not in value:
            raise param_error(f"{path}/{name}", None, "缺少必填字段 required field is missing")
    if spec.any_of and not any(name in value for name in spec.any_of):
        raise param_error(path, value, f"需要 one of {', '.join(spec.any_of)} is required")


def _check_str(spec: Str, value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise param_error(path, value, "应为字符串 must be a string")
    if not spec.min_len <= len(value) <= spec.max_len:
        issue = f"长度超出范围 length must be {spec.min_len}..{spec.max_len}"
        raise param_error(path, value, issue, ID_OUT_OF_RANGE)
    if any(ord(char) > 0xFFFF for char in value):  # v3 text is 1-3 UTF-8 bytes a character
        raise param_error(path, value, "不能包含4字节的UTF-8字符 (emoji and others beyond U+FFFF)")
    if spec.pattern is not None and not spec.pattern.match(value):
        raise param_error(path, value, "格式错误 does not match the required format")
    if spec.rfc3339:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or "T" not in value:
            raise param_error(path, value, "时间格式错误 must be RFC 3339 with an offset")


def check_notify_url(body: Mapping[str, Any], *, allow_loopback: bool) -> None:
    """A `notify_url` in `body` (checked against its spec already) must be https to a public
    host (reference §3.1, §5): no localhost, loopback, RFC 1918, link-local or other non-global
    address. `allow_loopback` lets http or https to localhost, 127.0.0.0/8 and ::1 through.

    Raises:
        ApiError: 400 PARAM_ERROR on /notify_url.
    """
    url = body.get("notify_url")
    if url is None:
        return
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 literal
        raise param_error(
            "/notify_url", url, "格式错误 does not match the required format"
        ) from exc
    host = parts.hostname or ""
    loopback = host == "localhost" or host.endswith(".localhost")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        public = not loopback  # a name: WeChat resolves it, the sandbox does not
    else:
        loopback, public = address.is_loopback, address.is_global
    if allow_loopback and loopback:
        return
    if parts.scheme != "https":
        raise param_error("/notify_url", url, "必须使用https协议 must be an https URL")
    if not public:
        raise param_error("/notify_url", url, "不能是本机或内网地址 must be a public host")


def _amount() -> Obj:
    return Obj({"total": Int(1, required=True), "currency": Str(16, pattern=_CNY)}, required=True)


def _detail(goods_id_field: str) -> Obj:
    goods = Obj(
        {
            "merchant_goods_id": Str(32, required=True),
            goods_id_field: Str(32),
            "goods_name": Str(256),
            "quantity": Int(1, required=True),
            "unit_price": Int(0, required=True),
        }
    )
    return Obj({"cost_price": Int(0), "invoice_id": Str(32), "goods_detail": List(goods, 6000)})


_COMMON: dict[str, Spec] = {
    "appid": Str(32, required=True),
    "mchid": Str(32, required=True),
    "description": Str(127, required=True),
    "out_trade_no": Str(32, required=True, min_len=6, pattern=OUT_TRADE_NO),
    "attach": Str(128),
    "goods_tag": Str(32),
    "support_fapiao": Bool(),
    "amount": _amount(),
    "settle_info": Obj({"profit_sharing": Bool()}),
}

NATIVE = Obj(
    {
        **_COMMON,
        "notify_url": Str(255, required=True, pattern=_NOTIFY_URL),
        "time_expire": Str(64, rfc3339=True),
        "detail": _detail("wechatpay_goods_id"),
        "scene_info": Obj(
            {
                "payer_client_ip": Str(45, required=True),
                "device_id": Str(32),
                "store_info": Obj(
                    {
                        "id": Str(32, required=True),
                        "name": Str(256),
                        "area_code": Str(32),
                        "address": Str(512),
                    }
                ),
            }
        ),
    }
)

CODEPAY = Obj(
    {
        **_COMMON,
        "payer": Obj({"auth_code": Str(128, required=True, pattern=AUTH_CODE)}, required=True),
        "detail": _detail("wxpay_goods_id"),
        "scene_info": Obj(
            {
                "device_id": Str(32),
                "device_ip": Str(45),
                # .id is WeChat's store number, .out_id the merchant's own; at least one
                "store_info": Obj(
                    {"id": Str(32), "out_id": Str(32)}, required=True, any_of=("id", "out_id")
                ),
            },
            required=True,
        ),
    }
)

CLOSE = Obj({"mchid": Str(32, required=True)})
REVERSE = Obj({"appid": Str(32, required=True), "mchid": Str(32, required=True)})

# reference §3.7; the sum rule of amount.from is refunds.py's
_REFUND_FROM = Obj(
    {
        "account": Str(16, required=True, pattern=re.compile(r"^(AVAILABLE|UNAVAILABLE)\Z")),
        "amount": Int(1, required=True),
    }
)
_REFUND_GOODS = Obj(
    {
        "merchant_goods_id": Str(32, required=True),
        "wechatpay_goods_id": Str(32),
        "goods_name": Str(256),
        "unit_price": Int(0, required=True),
        "refund_amount": Int(0, required=True),
        "refund_quantity": Int(1, required=True),
    }
)
REFUND = Obj(
    {
        "transaction_id": Str(32, pattern=re.compile(r"^\d{1,32}\Z")),
        "out_trade_no": Str(32, min_len=6, pattern=OUT_TRADE_NO),
        "out_refund_no": Str(64, required=True, pattern=OUT_REFUND_NO),
        "reason": Str(80),
        "notify_url": Str(256, pattern=_NOTIFY_URL),
        "funds_account": Str(16, pattern=re.compile(r"^AVAILABLE\Z")),
        "amount": Obj(
            {
                "refund": Int(1, required=True),
                "from": List(_REFUND_FROM, 2),  # one entry per account at most
                "total": Int(1, required=True),
                "currency": Str(16, required=True, pattern=_CNY),
            },
            required=True,
        ),
        "goods_detail": List(_REFUND_GOODS, 6000),
    },
    any_of=("transaction_id", "out_trade_no"),
)
