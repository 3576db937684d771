"""Helpers the tests share: waiting for a condition, the sandbox's control API, sandbox keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from hw_mocks.wechat_sandbox import WeChatSandbox
from pos_terminal.payments import wechat_sign

# the least a configuration file must say (a shop on the sandbox)
MINIMAL_CONFIG = """\
merchant:
  name: 测试商户
  store_id: S1
  terminal_id: T1
wechat:
  sandbox:
    enabled: true
"""
PATIENCE_S = 5.0  # how long a test waits for something another thread or process does


def wait_for(condition: Callable[[], bool], timeout_s: float = PATIENCE_S) -> None:
    """Poll `condition` (blocking this thread) until it holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s"
        time.sleep(0.005)


async def eventually(condition: Callable[[], bool], timeout_s: float = PATIENCE_S) -> None:
    """Like `wait_for`, letting the event loop run meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s"
        await asyncio.sleep(0.01)


def sandbox_control(base_url: str, method: str, path: str, body: Any = None) -> httpx.Response:
    """One request to the sandbox's own API (`/sandbox/...`: faults, orders, wallets, scans)."""
    with httpx.Client(timeout=10, verify=False) as http:  # plain HTTP: skip loading CA certs
        return http.request(method, base_url + path, json=body)


def sandbox_faults(base_url: str, **faults: object) -> None:
    """Set the sandbox's faults (`delay_s`, `hold_s`, ...); none given clears them."""
    answer = sandbox_control(base_url, "POST", "/sandbox/faults", faults)
    assert answer.status_code == 200, answer.text


def sandbox_order(base_url: str, out_trade_no: str) -> dict[str, Any]:
    """The sandbox's view of one order, its refunds included."""
    answer = sandbox_control(base_url, "GET", f"/sandbox/orders/{out_trade_no}")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def sandbox_orders(base_url: str) -> dict[str, dict[str, Any]]:
    """Every order the sandbox holds, by out_trade_no."""
    answer = sandbox_control(base_url, "GET", "/sandbox/orders")
    assert answer.status_code == 200, answer.text
    return {o["out_trade_no"]: o for o in answer.json()["orders"]}


def sandbox_merchant(state_dir: Path) -> tuple[Path, rsa.RSAPrivateKey]:
    """A sandbox merchant in `state_dir` (made on first use): its merchant.json, and the key
    WeChat signs with, for tests that play WeChat themselves."""
    sandbox = WeChatSandbox(state_dir)
    sandbox.start()
    sandbox.stop()
    platform = (state_dir / "sandbox_platform_private.pem").read_bytes()
    return sandbox.merchant_json, wechat_sign.load_private_key(platform)
