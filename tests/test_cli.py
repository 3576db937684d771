"""The command line as an installer uses it: real processes, real signals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hw_mocks.wechat_sandbox import WeChatSandbox, notify
from pos_terminal.cli import build_parser
from pos_terminal.journal import Journal, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatApiError, WeChatPayClient, load_merchant_json
from tests.helpers import sandbox_merchant
from tests.journal_rows import journal_with_sale

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
LAPTOP = str(ROOT / "config" / "terminal.yaml")


def cli(
    *args: str, cwd: Path, stdin: int | None = None, stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pos_terminal.cli", *args],
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """stdout and stderr of a process that must end by itself; killed if it does not."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_run_refuses_a_stdout_that_is_not_a_terminal_and_says_why(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:  # `make run | tee log`: stdin is the terminal, stdout a pipe
        proc = cli("run", "--config", LAPTOP, cwd=tmp_path, stdin=follower)
        os.close(follower)
        out, err = finished(proc)
    finally:
        os.close(leader)
    assert proc.returncode == 2
    assert out == ""
    [line] = err.splitlines()
    assert "stdout" in line and "stdin" not in line and "--headless" in line
    assert not (tmp_path / "var").exists()  # refused before anything started


def test_run_refuses_a_stdin_that_is_not_a_terminal_and_says_why(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        proc = cli("run", "--config", LAPTOP, cwd=tmp_path, stdin=subprocess.PIPE, stdout=follower)
        os.close(follower)
        _, err = finished(proc)
    finally:
        os.close(leader)
    assert proc.returncode == 2
    [line] = err.splitlines()
    assert "stdin" in line and "stdout" not in line and "--headless" in line


def test_help_names_every_command_and_every_option_says_what_it_does() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {
        "run", "demo", "sandbox", "notify-server", "config", "pin-hash", "diagram", "decode"
    }  # fmt: skip
    assert all(choice.help for choice in commands._choices_actions)
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
    result = subprocess.run(
        [sys.executable, "-m", "pos_terminal.cli", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert result.returncode == 0 and listed >= set(commands.choices)


def test_version_comes_from_the_package_metadata() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pos_terminal.cli", "--version"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout == f"pos-terminal {importlib.metadata.version('pos-terminal')}\n"


@pytest.mark.slow
def test_headless_run_reports_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = cli(
        "run", "--headless", "--config", str(ROOT / "config" / "terminal.yaml"), cwd=tmp_path
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, stderr  # it ends by the signal, after shutting down
    assert "Traceback" not in stderr
    assert "Stopped (SIGTERM)" in stderr and "No payment or refund was in flight" in stderr
    assert (tmp_path / "var" / "journal.sqlite").exists()
    assert (tmp_path / "var" / "sandbox" / "merchant.json").exists()


@contextlib.contextmanager
def headless_terminal(cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """`pos-terminal run --headless` on the laptop config, once ready; stopped with SIGTERM."""
    proc = cli("run", "--headless", "--config", str(ROOT / "config" / "terminal.yaml"), cwd=cwd)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.slow
@pytest.mark.parametrize(
    ("second", "advice"),
    [
        (("run", "--headless"), "journal.sqlite is in use by another pos-terminal"),
        (("notify-server", "--port", "0"), "notify.listen"),
    ],
)
def test_a_second_process_on_the_same_journal_refuses_at_once_naming_the_holder(
    tmp_path: Path, second: tuple[str, ...], advice: str
) -> None:
    config = str(ROOT / "config" / "terminal.yaml")
    with headless_terminal(tmp_path) as first:
        refused = cli(*second, "--config", config, cwd=tmp_path)
        out, err = refused.communicate(timeout=30)
        assert refused.returncode == 1 and out == ""
        assert err.count("\n") == 1, err
        assert f"(pid {first.pid})" in err and advice in err
        assert first.poll() is None  # the owner runs on, untouched
    with headless_terminal(tmp_path):  # the lock died with its owner
        pass


def test_sandbox_command_writes_merchant_json_and_serves(tmp_path: Path) -> None:
    proc = cli("sandbox", "--port", "0", "--state-dir", str(tmp_path / "sb"), cwd=tmp_path)
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert "http://127.0.0.1:" in first
        merchant = json.loads((tmp_path / "sb" / "merchant.json").read_text(encoding="utf-8"))
        assert set(merchant) >= {
            "mchid",
            "appid",
            "merchant_serial",
            "merchant_private_key",
            "platform_public_key",
            "public_key_id",
            "apiv3_key",
        }
        assert merchant["public_key_id"].startswith("PUB_KEY_ID_")
        assert merchant["key_modes"] == ["public_key"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_sandbox_key_modes_option_makes_a_switching_merchant_and_refuses_unknown_modes(
    tmp_path: Path,
) -> None:
    state = tmp_path / "sb"
    proc = cli(
        "sandbox", "--state-dir", str(state), "--key-modes", "public_key,certificate", cwd=tmp_path
    )
    assert proc.stdout is not None
    try:
        assert "http://127.0.0.1:" in proc.stdout.readline()
        merchant = json.loads((state / "merchant.json").read_text(encoding="utf-8"))
        assert merchant["key_modes"] == ["public_key", "certificate"]
        assert "CERTIFICATE" in (state / merchant["platform_certificate"]).read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    bad = cli("sandbox", "--state-dir", str(state), "--key-modes", "public_key,rsa", cwd=tmp_path)
    _, stderr = bad.communicate(timeout=30)
    assert bad.returncode == 2 and "key_modes must be a non-empty subset" in stderr


def test_sandbox_notify_options_turn_notifications_on_and_bad_rates_are_refused(
    tmp_path: Path,
) -> None:
    state = str(tmp_path / "sb")
    proc = cli(
        "sandbox", "--port", "0", "--state-dir", state, "--notify-scale", "0.001", cwd=tmp_path
    )
    assert proc.stdout is not None
    try:
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        answer = httpx.get(url + "/sandbox/notifications", timeout=5).json()
        assert answer == {"enabled": True, "notifications": []}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    bad = cli("sandbox", "--state-dir", state, "--notify-probes", "1.5", cwd=tmp_path)
    _, stderr = bad.communicate(timeout=30)
    assert bad.returncode == 2 and "rates must be within [0, 1]" in stderr


def test_sandbox_takes_a_loopback_notify_url_only_with_its_option(tmp_path: Path) -> None:
    state = tmp_path / "sb"

    async def native(url: str, out_trade_no: str) -> None:
        creds = load_merchant_json(state / "merchant.json")
        async with WeChatPayClient(creds, base_urls=[url]) as client:
            await client.create_native(
                out_trade_no=out_trade_no,
                amount_fen=100,
                description="sale",
                notify_url="http://127.0.0.1:8080/notify",
            )

    for options, refused in (((), True), (("--allow-loopback-notify",), False)):
        proc = cli("sandbox", "--state-dir", str(state), "--memory", *options, cwd=tmp_path)
        assert proc.stdout is not None
        try:
            url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
            if refused:
                with pytest.raises(WeChatApiError) as caught:
                    asyncio.run(native(url, "N0000001"))
                detail = caught.value.detail
                assert caught.value.code == "PARAM_ERROR" and detail is not None
                assert detail["field"] == "/notify_url"
            else:
                asyncio.run(native(url, "N0000002"))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)


@pytest.mark.slow
def test_demo_runs_three_sales_and_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pos_terminal.cli",
            "demo",
            "--config",
            str(ROOT / "config" / "terminal.yaml"),
            "--work-dir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=240,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in lines] == [
        "1. Native QR, paid by the customer",
        "2. Payment code, password (USERPAYING) then paid",
        "3. Native QR, cancelled by the cashier",
    ]
    assert all(": ok " in line for line in lines)


def test_demo_refuses_a_config_with_real_wechat_pay_or_devices_naming_each(
    tmp_path: Path,
) -> None:
    shop = (ROOT / "config" / "terminal.yaml").read_text(encoding="utf-8")
    real_wechat = tmp_path / "shop.yaml"
    real_wechat.write_text(
        shop.replace("enabled: true", "enabled: false").replace(
            "wechat:\n", "wechat:\n  merchant_file: m.json\n"
        ),
        encoding="utf-8",
    )
    cases = {
        str(real_wechat): ["wechat.sandbox.enabled: false"],
        str(ROOT / "config" / "raspberry-pi.yaml"): [
            "wechat.sandbox.enabled: false",
            "devices.keypad.type: hid",
            "devices.scanner.type: camera",
            "devices.display.type: tty",
            "devices.printer.type: escpos",
        ],
    }
    for config, named in cases.items():
        work = tmp_path / "demo"
        proc = cli("demo", "--config", config, "--work-dir", str(work), cwd=tmp_path)
        out, err = finished(proc)
        assert proc.returncode == 2 and out == ""
        [line] = err.splitlines()
        assert line.startswith(f"config error: {config}: ")
        assert all(setting in line for setting in named)
        assert line.count("devices.") == sum(s.startswith("devices.") for s in named)
        assert not work.exists()  # nothing was started


def test_diagram_prints_mermaid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pos_terminal.cli", "diagram"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.startswith("stateDiagram-v2")


@pytest.mark.slow
def test_notify_server_starts_and_refuses_an_unsigned_post(tmp_path: Path) -> None:
    sandbox = WeChatSandbox(tmp_path / "var" / "sandbox")
    sandbox.start()  # writes the merchant.json the laptop config points at
    sandbox.stop()
    config = str(ROOT / "config" / "terminal.yaml")
    proc = cli("notify-server", "--config", config, "--port", "0", cwd=tmp_path)
    assert proc.stdout is not None
    try:
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        answer = httpx.post(url, content=b"{}", timeout=5)
        assert answer.status_code == 400 and answer.json()["code"] == "FAIL"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.slow
def test_notify_server_dates_payments_by_the_configured_zone_and_cut_off_hour(
    tmp_path: Path,
) -> None:
    merchant_json, platform = sandbox_merchant(tmp_path / "var" / "sandbox")
    creds = load_merchant_json(merchant_json)
    journal_with_sale(tmp_path / "var" / "journal.sqlite", "T1NOTIFYDAY001", amount_fen=500).close()
    config = tmp_path / "bar.yaml"  # a bar in Tokyo counting its nights until 02:00
    config.write_text(
        (ROOT / "config" / "terminal.yaml")
        .read_text(encoding="utf-8")
        .replace("timezone: Asia/Shanghai", "timezone: Asia/Tokyo")
        .replace("business_day_cutoff_hour: 0", "business_day_cutoff_hour: 2"),
        encoding="utf-8",
    )
    resource = {
        "mchid": creds.mchid,
        "appid": creds.appid,
        "out_trade_no": "T1NOTIFYDAY001",
        "transaction_id": "4200000000202611260000000009",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-26T01:30:00+09:00",  # 01:30 in Tokyo: still the 25th's night
        "amount": {"total": 500},
    }
    body = notify.envelope(
        creds.apiv3_key, "TRANSACTION.SUCCESS", resource, event_id="EV-DAY-1", at=time.time()
    )
    ts, nonce = str(int(time.time())), wechat_sign.new_nonce()
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": creds.public_key_id,
        "Wechatpay-Signature": wechat_sign.sign(
            platform,
            wechat_sign.response_message(ts, nonce, body),
        ),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Content-Type": "application/json",
    }
    proc = cli("notify-server", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert proc.stdout is not None
    try:
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        assert httpx.post(url, content=body, headers=headers, timeout=5).status_code == 204
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    journal = Journal(tmp_path / "var" / "journal.sqlite")
    journal.open()
    try:
        row = journal.by_out_trade_no("T1NOTIFYDAY001")
    finally:
        journal.close()
    assert row is not None and row.state is RowState.APPROVED
    assert row.business_date == "2026-11-25"


def test_notify_server_without_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    config = str(ROOT / "config" / "terminal.yaml")
    proc = cli("notify-server", "--config", config, "--port", "0", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.strip().startswith(
        "error: var/sandbox/merchant.json: cannot load merchant credentials"
    )
    assert len(stderr.strip().splitlines()) == 1


def test_ctrl_c_in_the_demo_ends_it_with_one_line_and_the_interrupt_status(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = cli("demo", "--config", LAPTOP, "--work-dir", str(work), cwd=tmp_path)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("1. ")  # the second sale is under way
        proc.send_signal(signal.SIGINT)
        _, err = finished(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT
    assert err.strip().splitlines()[-1] == "pos-terminal demo: interrupted (Ctrl-C)"
    assert "Traceback" not in err
