"""The errors of the WeChat Pay client (tree in wechat.py, which re-exports them).

A module of their own so that wechat_keys can raise them without importing the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pos_terminal.errors import PaymentError

_UNKNOWN_OUTCOME_CODES = frozenset({"SYSTEMERROR", "BANKERROR"})


class WeChatPayError(PaymentError):
    """A WeChat Pay call failed."""


class WeChatApiError(WeChatPayError):
    """WeChat answered with an error body (§0, §4.3)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Mapping[str, Any] | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(
            f"WeChat Pay HTTP {status} {code}: {message} (request {request_id or '-'})"
        )
        self.status, self.code, self.message = status, code, message
        self.detail: Mapping[str, Any] = detail or {}
        self.request_id = request_id

    @property
    def normalized_code(self) -> str:
        """Code without underscores, upper case: both doc spellings compare equal."""
        return self.code.replace("_", "").upper()

    @property
    def outcome_unknown(self) -> bool:
        """WeChat may have acted: query before deciding (5xx, 429, SYSTEMERROR, BANKERROR)."""
        return (
            self.status >= 500
            or self.status == 429
            or self.normalized_code in _UNKNOWN_OUTCOME_CODES
        )


class WeChatTransportError(WeChatPayError):
    """No answer arrived; `maybe_sent` is False only when no host got the request."""

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class WeChatResponseError(WeChatPayError):
    """An answer that is unsigned, badly signed, stale or not the documented shape."""
