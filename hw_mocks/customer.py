"""The mock customer: a WeChat wallet that shows payment codes and pays QR codes it scans.

It talks to the sandbox's control endpoints (documented in hw_mocks/wechat_sandbox), the way a
real customer's phone talks to WeChat.
"""

from __future__ import annotations

from enum import StrEnum

import httpx


class Wallet(StrEnum):
    """How the customer's wallet behaves when the terminal charges its payment code."""

    PAID = "paid"
    SLOW = "userpaying_then_paid"  # password required: USERPAYING, then paid
    NEVER = "userpaying_until_reversed"
    NOT_ENOUGH = "not_enough"
    PAYERROR = "payerror"


class MockCustomer:
    def __init__(self, sandbox_url: str, *, timeout_s: float = 5.0) -> None:
        self._http = httpx.AsyncClient(base_url=sandbox_url, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def present_code(self, wallet: Wallet = Wallet.PAID, delay_s: float | None = None) -> str:
        """A fresh 18-digit payment code, as the customer's phone would show it."""
        body: dict[str, object] = {"scenario": str(wallet)}
        if delay_s is not None:
            body["delay_s"] = delay_s
        answer = await self._http.post("/sandbox/payment-codes", json=body)
        answer.raise_for_status()
        return str(answer.json()["auth_code"])

    async def pay_qr(self, code_url: str) -> bool:
        """Scan a merchant QR and pay it; False when WeChat refuses (closed, expired, paid)."""
        answer = await self._http.post("/sandbox/scan", json={"code_url": code_url})
        return answer.status_code == 200
