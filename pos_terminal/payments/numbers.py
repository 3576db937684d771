"""Merchant-side numbers (out_trade_no, out_refund_no): unique, readable, in WeChat's charset."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

# out_trade_no is at most 32 characters (§5): a terminal id up to this long leaves room for a
# one-letter prefix, 12 digits of time and 6 random ones; the configuration refuses a longer one
TERMINAL_ID_MAX = 12
TERMINAL_ID_CHARS = "0-9A-Za-z_-"


def new_number(prefix: str, terminal_id: str, now: datetime) -> str:
    """Prefix, terminal id, local time and 6 random digits: at most 31 of [0-9A-Za-z_-]."""
    terminal = re.sub(f"[^{TERMINAL_ID_CHARS}]", "", terminal_id)[:TERMINAL_ID_MAX]
    return f"{prefix}{terminal}{now:%y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"
