"""Customer payment codes: which provider a scanned string belongs to, or why it is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reference: wechatpay-v3.md §5. WeChat: 18 digits, prefix 10-15.
_WECHAT = re.compile(r"^1[0-5]\d{16}$")
_ALIPAY = re.compile(r"^(2[5-9]|30)\d{14,22}$")
_UNIONPAY = re.compile(r"^62\d{17}$")


@dataclass(frozen=True)
class CodeVerdict:
    provider: str | None  # "wechat" when the terminal can charge it
    refusal: str  # shown to the cashier when provider is None


def classify_code(code: str) -> CodeVerdict:
    """Route a scanned string to its provider; only WeChat Pay is enabled on this terminal."""
    text = code.strip()
    if _WECHAT.match(text):
        return CodeVerdict("wechat", "")
    if _ALIPAY.match(text):
        return CodeVerdict(None, "未开通支付宝 Alipay is not enabled on this terminal")
    if _UNIONPAY.match(text):
        return CodeVerdict(None, "未开通云闪付 UnionPay QR is not enabled on this terminal")
    return CodeVerdict(None, "不是付款码 Not a payment code")


def mask_code(code: str) -> str:
    """Payment codes are bearer tokens: keep the first 4 and last 4 digits only."""
    if len(code) <= 8:
        return "*" * len(code)
    return code[:4] + "*" * (len(code) - 8) + code[-4:]
