"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.wechat_sandbox import ManualClock, WeChatSandbox
from pos_terminal.payments.wechat import WeChatPayClient, load_merchant_json

PUBLIC_KEY_ONLY = ("public_key",)  # every merchant opened since late 2024
SWITCHING = ("public_key", "certificate")  # a merchant part-way through the key switch


@pytest.fixture(scope="session")
def sandbox_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox merchant (keys, merchant.json) for the session: key generation is slow-ish."""
    return tmp_path_factory.mktemp("wechat-sandbox")


@pytest.fixture
def sandbox_clock() -> ManualClock:
    """The clock shared by the sandbox and `wechat_client`; starts at the real time."""
    return ManualClock()


@pytest.fixture
def sandbox(sandbox_state_dir: Path, sandbox_clock: ManualClock) -> Iterator[WeChatSandbox]:
    """A WeChat Pay sandbox on a free loopback port, with empty order state; a public-key-only
    merchant (the session merchant's modes are whatever the last sandbox started with)."""
    server = WeChatSandbox(
        sandbox_state_dir, clock=sandbox_clock, userpaying_s=3.0, key_modes=PUBLIC_KEY_ONLY
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_sandbox(
    sandbox_state_dir: Path, sandbox_clock: ManualClock
) -> Iterator[Callable[..., WeChatSandbox]]:
    """Start more sandboxes on the session merchant, each with its own options (`clock` too;
    `key_modes` public key only unless given)."""
    started: list[WeChatSandbox] = []

    def start(**options: Any) -> WeChatSandbox:
        defaults = {"clock": sandbox_clock, "key_modes": PUBLIC_KEY_ONLY}
        box = WeChatSandbox(sandbox_state_dir, **{**defaults, **options})
        box.start()
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


@pytest.fixture
async def wechat_client(
    sandbox: WeChatSandbox, sandbox_clock: ManualClock
) -> AsyncIterator[WeChatPayClient]:
    """An open client for the sandbox merchant (async tests: mark them `pytest.mark.anyio`)."""
    creds = load_merchant_json(sandbox.merchant_json)
    async with WeChatPayClient(
        creds,
        base_urls=[sandbox.base_url],
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
        clock=sandbox_clock,
    ) as client:
        yield client
