"""Merchant-side numbers (out_trade_no, out_refund_no): unique, readable, in WeChat's charset."""

from __future__ import annotations

import re
import secrets
from datetime import datetime


def new_number(prefix: str, terminal_id: str, now: datetime) -> str:
    """Prefix, terminal id, local time and 6 random digits: at most 31 of [0-9A-Za-z_-]."""
    terminal = re.sub(r"[^0-9A-Za-z_-]", "", terminal_id)[:12]
    return f"{prefix}{terminal}{now:%y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"
