"""The sandbox in the terminal's own process (`wechat.sandbox.enabled: true`), for the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hw_mocks.wechat_sandbox import WeChatSandbox
from pos_terminal.config import SandboxConfig
from pos_terminal.ports import Backend


@dataclass(frozen=True)
class InProcess:
    """What the terminal hands its sandbox: the `wechat.sandbox` section and the order clock."""

    config: SandboxConfig
    clock: Callable[[], float]


def _sandbox(settings: InProcess) -> WeChatSandbox:
    config = settings.config
    return WeChatSandbox(
        Path(config.state_dir),
        clock=settings.clock,
        userpaying_s=config.userpaying_s,
        persist=config.persist,
    )


BACKEND = Backend(config=InProcess, factory=_sandbox)
