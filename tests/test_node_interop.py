"""An independent Node SDK, wechatpay-axios-plugin (tests/node_interop), against the sandbox.

tests/node_interop/interop.js sets the SDK up from merchant.json as its README says and runs a
Native order, a payment code and a refund; the SDK signs and verifies everything itself. `npm ci`
installs the pinned SDK into tests/node_interop/node_modules when that is missing or older than
package-lock.json (`make test` does the same), so later runs need no network. Without node and
npm these tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hw_mocks.wechat_sandbox import WeChatSandbox
from tests.conftest import PUBLIC_KEY_ONLY, SWITCHING

NODE_DIR = Path(__file__).parent / "node_interop"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(scope="session")
def node_script() -> list[str]:
    """The command that runs interop.js, the SDK installed first if need be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "the Node SDK test needs node (18 or newer) and npm: apt-get install nodejs npm"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < 18:
        pytest.skip(f"the Node SDK test needs node 18 or newer, found {version.stdout.strip()}")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci"], cwd=NODE_DIR, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"npm ci in {NODE_DIR} failed:\n{done.stdout}{done.stderr}"
    return [node, str(NODE_DIR / "interop.js")]


def run_sdk(command: list[str], sandbox: WeChatSandbox) -> dict[str, Any]:
    """interop.js against `sandbox`, straight to loopback (no proxy); its JSON summary."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    done = subprocess.run(
        [*command, sandbox.base_url, str(sandbox.merchant_json)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.stdout, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0 and "error" not in summary, summary.get("error", done.stderr)
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("key_modes", [PUBLIC_KEY_ONLY, SWITCHING], ids=["public_key", "switching"])
def test_the_node_sdk_pays_closes_and_refunds_verifying_every_answer(
    node_script: list[str],
    start_sandbox: Callable[..., WeChatSandbox],
    key_modes: tuple[str, ...],
) -> None:
    box = start_sandbox(key_modes=key_modes, clock=time.time)  # the SDK checks its own clock
    merchant = json.loads(box.merchant_json.read_text(encoding="utf-8"))
    summary = run_sdk(node_script, box)

    # an SDK sending no Wechatpay-Serial: the switching merchant answers with the certificate,
    # which merchant.json gave the SDK
    signer = merchant.get("platform_certificate_serial", merchant["public_key_id"])
    assert summary["signers"] == [signer] * 8 and signer in summary["certs"]
    native, codepay = summary["native"], summary["codepay"]
    assert native["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert (native["state"], native["close_status"], native["state_after_close"]) == (
        "NOTPAY",
        204,
        "CLOSED",
    )
    assert codepay["state"] == codepay["state_by_id"] == "SUCCESS"
    assert codepay["refund_status"] == codepay["refund_query_status"] == "PROCESSING"
    assert codepay["refund_from"] == [{"account": "AVAILABLE", "amount": 800}]
    assert summary["tampered"] == "EV3_RES_HEADER_SIGNATURE_DIGEST"  # the SDK's verifier at work

    orders = httpx.get(box.base_url + "/sandbox/orders", timeout=5).json()["orders"]
    view = {order["out_trade_no"]: order for order in orders}
    assert view.keys() == {"NODE0000001", "NODE0000002"}
    assert view["NODE0000001"]["trade_type"] == "NATIVE"
    assert view["NODE0000001"]["trade_state"] == "CLOSED"
    paid = view["NODE0000002"]
    assert (paid["trade_type"], paid["trade_state"]) == ("MICROPAY", "REFUND")
    assert paid["amount_total"] == 2500 and paid["transaction_id"] == codepay["transaction_id"]
    [refund] = paid["refunds"]
    assert (refund["out_refund_no"], refund["refund_fen"]) == ("NODER0000002", 800)
    assert refund["refund_id"] == codepay["refund_id"]
