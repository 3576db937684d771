"""Fault injection: global switches (`Faults`) and a queue of one-shot faults per request.

A one-shot fault names a method ("*" for any) and a path prefix, which may hold `*` wildcards
("/v3/pay/transactions/out-trade-no/*/close"); the first queued entry matching a /v3 request is
used for that request instead of the global faults, then dropped.
"""

from __future__ import annotations

import fnmatch
import math
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Faults:
    """Fault switches for client tests; they act on /v3 answers only (never on /sandbox)."""

    sign_responses: bool = True  # False: answers carry no Wechatpay-* signature headers
    tamper_body: bool = False  # sign the answer, then alter its body "in transit"
    delay_s: float = 0.0  # wait this long (real time) before answering: client read timeouts
    # wait this long (real time) before processing: a request still on the wire when its client
    # gave up or died lands late (a late create, a late reverse)
    hold_s: float = 0.0
    drop_connection: bool = False  # process the request, then close the socket unanswered
    system_error_after_commit: bool = False  # process the request, then answer 500 SYSTEM_ERROR
    rate_limited: bool = False  # answer 429 FREQUENCY_LIMITED without processing the request
    # as WeChat may: a reverse of an order still USERPAYING answers 400 USER_PAYING
    # "正在支付中不能发起撤销" (retry later) instead of reversing it at once
    reverse_refused_while_paying: bool = False
    # > 0: transaction answers carry this amount.total instead of the order's, signed as usual
    # (a contradiction between WeChat and the journal that a client must refuse to approve)
    answer_amount_fen: int = 0


@dataclass(frozen=True)
class NextFault:
    """One queued one-shot fault."""

    method: str  # "GET", "POST" or "*"
    path: str  # prefix of the request path (no query string); `*` matches any run of characters
    faults: Faults

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if "*" in self.path:
            return fnmatch.fnmatchcase(path, self.path + "*")
        return path.startswith(self.path)

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, **asdict(self.faults)}


class FaultQueue:
    """One-shot faults, first in first out; safe to use from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[NextFault] = []

    def add(self, item: NextFault) -> None:
        with self._lock:
            self._items.append(item)

    def take(self, method: str, path: str) -> Faults | None:
        """The faults for this request, removing the entry; None when nothing matches."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item.matches(method, path):
                    del self._items[i]
                    return item.faults
        return None

    def pending(self) -> list[NextFault]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def faults_from(req: dict[str, Any]) -> Faults:
    """Faults from a JSON object; keys not given take their defaults.

    Raises:
        ValueError: an unknown key or a value of the wrong type.
    """
    known = {f.name: f.type for f in fields(Faults)}
    for name, value in req.items():
        kind = known.get(name)
        ok = isinstance(value, bool) if kind == "bool" else non_negative(value)
        if kind == "int":
            ok = ok and isinstance(value, int)
        if kind is None or not ok:
            raise ValueError(f"bad fault option {name}={value!r}; valid: {', '.join(known)}")
    return Faults(**req)


def next_fault_from(req: dict[str, Any]) -> NextFault:
    """A one-shot fault from `{"method"?, "path", <Faults options>}`.

    Raises:
        ValueError: no path, a bad method, or a bad fault option.
    """
    options = dict(req)
    method, path = options.pop("method", "*"), options.pop("path", None)
    if not isinstance(path, str) or not path.startswith("/v3/"):
        raise ValueError(f"path must be a /v3/ path prefix, got {path!r}")
    if method not in ("*", "GET", "POST"):
        raise ValueError(f"method must be GET, POST or *, got {method!r}")
    return NextFault(method, path, faults_from(options))


def non_negative(value: Any) -> bool:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    return ok_type and math.isfinite(value) and value >= 0
