"""Configurations with fast timings for flow tests, the crash test and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from hw_mocks.scripted import Harness, running
from pos_terminal.config import Config, parse_config

__all__ = ["Harness", "flow_config", "running", "sandbox_process"]

ROOT = Path(__file__).parents[1]
PIN_1234 = "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4"  # sha256 of 1234

FAST_TIMINGS = """\
payment:
  code_poll_interval_s: 0.1
  code_deadline_s: {deadline}
  reverse_min_delay_s: {reverse_min_delay}
  qr_poll_interval_s: {qr_poll}
  qr_expiry_s: 30
  retry_backoff_s: 0.05
  refund_poll_interval_s: 0.1
screen:
  awaiting_timeout_s: 60
  result_hold_s: 30
"""


def flow_config(
    tmp: Path,
    *,
    sandbox_url: str | None = None,
    merchant_json: Path | None = None,
    deadline: float = 3.0,
    qr_poll: float = 0.1,
    userpaying_s: float = 0.5,
    primary_url: str | None = None,
    reverse_min_delay: float = 0.3,
    notify_port: int | None = None,
) -> Config:
    """Fast timings; the in-process sandbox, or an external one when `sandbox_url` is given
    (behind `primary_url` as the primary host when that is given too); with `notify_port`, the
    terminal's own notification receiver on that loopback port, named by its notify_url."""
    if sandbox_url is None:
        wechat = f"""\
wechat:
  sandbox:
    enabled: true
    state_dir: {tmp / "sandbox"}
    userpaying_s: {userpaying_s}
"""
    else:
        wechat = f"""\
wechat:
  merchant_file: {merchant_json}
  hosts: [{", ".join(u for u in (primary_url, sandbox_url) if u)}]
  connect_timeout_s: 0.5
  read_timeout_s: 2
"""
    timings = FAST_TIMINGS.format(
        deadline=deadline, qr_poll=qr_poll, reverse_min_delay=reverse_min_delay
    )
    if notify_port is not None:
        wechat += f"  notify_url: http://127.0.0.1:{notify_port}/wechatpay/notify\n"
        wechat += f"notify:\n  listen: 127.0.0.1:{notify_port}\n"
    text = f"""\
merchant:
  name: 好邻居便利店（南京西路店）
  store_id: SH-0001
  terminal_id: T0001
devices:
  printer:
    out_dir: {tmp / "receipts"}
    check_interval_s: 0.1
    png: false  # pictures are for people; flow tests read the decoded text
journal:
  path: {tmp / "journal.sqlite"}
staff:
  supervisor_pin_sha256: {PIN_1234}
{wechat}{timings}"""
    return parse_config(text, "flow-test.yaml")


@contextlib.contextmanager
def sandbox_process(state_dir: Path) -> Iterator[str]:
    """`pos-terminal sandbox` in its own process on a free port; yields its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pos_terminal.cli",
            "sandbox",
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        yield next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
