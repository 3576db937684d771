"""The Raspberry Pi configuration runs on its real drivers and loads no mock.

`pos-terminal run --headless` starts `config/raspberry-pi.yaml` in a child process with its device
paths pointed at a FIFO (the HID keypad, through tests/child_path/evdev.py), a picture (the
camera), a pty (the customer display) and a file (the printer), and its WeChat hosts at a sandbox
running in another process. A QR sale is keyed in, paid by the customer and printed; at exit the
child lists every module it imported (tests/child_path/sitecustomize.py), and none is a mock.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import yaml

from tests.child_path.evdev import InputEvent, encode
from tests.flow_harness import sandbox_process

ROOT = Path(__file__).parents[1]
EV_KEY = 1
KEYS = {"1": 79, "0": 82, "enter": 96, "qr": 78}  # KP1, KP0, KPENTER, KPPLUS


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def pi_config(tmp: Path, sandbox_dir: Path, sandbox_url: str, display: str) -> Path:
    tree = yaml.safe_load((ROOT / "config" / "raspberry-pi.yaml").read_text(encoding="utf-8"))
    devices = tree["devices"]
    devices["keypad"]["device"] = str(tmp / "keypad")
    devices["scanner"]["device"] = str(tmp / "camera.png")
    devices["display"]["device"] = display
    devices["printer"].update(connection="file", device_file=str(tmp / "lp0"))
    tree["wechat"].update(merchant_file=str(sandbox_dir / "merchant.json"), hosts=[sandbox_url])
    tree["journal"]["path"] = str(tmp / "journal.sqlite")
    tree["payment"] = {"qr_poll_interval_s": 0.2}
    path = tmp / "pi.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    return path


def test_the_raspberry_pi_config_sells_on_real_drivers_and_loads_no_mock(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "keypad")
    keypad = os.open(tmp_path / "keypad", os.O_RDWR)  # a writer, as a plugged-in keypad
    cv2.imwrite(str(tmp_path / "camera.png"), np.full((480, 640, 3), 255, np.uint8))
    display_leader, display_follower = os.openpty()
    proc: subprocess.Popen[str] | None = None
    try:
        with sandbox_process(tmp_path / "sandbox") as url:
            config = pi_config(tmp_path, tmp_path / "sandbox", url, os.ttyname(display_follower))
            env = {
                **os.environ,
                "PYTHONPATH": f"{ROOT / 'tests' / 'child_path'}:{ROOT}",
                "POS_TEST_MODULES_FILE": str(tmp_path / "modules.txt"),
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "pos_terminal.cli", "run", "--headless", "--config", config],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"

            at = time.time()
            for key in ("1", "0", "0", "enter", "enter", "qr"):  # ¥1.00, confirmed, QR
                for value in (1, 0):  # pressed, released
                    at += 0.01
                    event = InputEvent(int(at), int(at % 1 * 1e6), EV_KEY, KEYS[key], value)
                    os.write(keypad, encode(event))

            def order() -> dict[str, Any] | None:
                orders = httpx.get(f"{url}/sandbox/orders").json()["orders"]
                return next((o for o in orders if o["code_url"]), None)

            qr = wait_for(order, 20, "the QR order at the sandbox")
            assert qr["amount_total"] == 100
            paid = httpx.post(f"{url}/sandbox/scan", json={"code_url": qr["code_url"]})
            assert paid.status_code == 200
            receipt = tmp_path / "lp0"
            wait_for(lambda: receipt.exists() and b"1.00" in receipt.read_bytes(), 20, "a receipt")

            shown = bytearray()

            def displayed(text: str) -> bool:
                while select.select([display_leader], [], [], 0.05)[0]:
                    shown.extend(os.read(display_leader, 4096))
                return text.encode("gb18030") in shown

            wait_for(lambda: displayed("￥1.00"), 10, "the amount on the customer display")
            assert shown.startswith(b"\x0c")  # each screen begins by clearing the display

            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGTERM, stderr[-2000:]  # stopped by the signal
        modules = set((tmp_path / "modules.txt").read_text(encoding="utf-8").split())
        assert "evdev" in modules and "pos_terminal.runtime" in modules
        assert {"drivers.hid_keypad", "drivers.camera", "drivers.tty_display"} <= modules
        assert "drivers.printer_escpos" in modules
        assert sorted(m for m in modules if m.split(".")[0] == "hw_mocks") == []
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(keypad)
        os.close(display_leader)
        os.close(display_follower)
