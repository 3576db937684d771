"""The sandbox's notifications: signed, encrypted POSTs to the merchant's notify_url (§3.8).

A Native order paid gives TRANSACTION.SUCCESS (payment-code orders are never notified); a refund
ending gives REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED, when its request named a
notify_url. Each notification is WeChat's envelope (`id, create_time, resource_type, event_type,
summary, resource{original_type, algorithm, ciphertext, associated_data, nonce}`), the resource
sealed with AES-256-GCM under the merchant's APIv3 key, and each delivery is signed afresh like
an API answer (`Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type`).

Delivery follows WeChat: 200 or 204 within `answer_timeout_s` (5 s) is success; anything else is
retried after 15 s, 15 s, 30 s, 3 min, 10 min, 20 min, 30 min ×3, 1 h, 3 h ×3, 6 h ×2, then given
up. `NotifySettings.time_scale` compresses that schedule on real (monotonic) time, e.g. 0.001
runs the whole day in 86 s. Options add what WeChat does now and then:

    duplicate_rate   after a success, the same notification (same id) comes once more
    probe_rate       a delivery is preceded by a `WECHATPAY/SIGNTEST/` probe, which the
                     receiver must refuse; the real, signed copy follows at once
    gray_rate        during the key switch, this share of deliveries is signed with the
                     merchant's other WeChat key (certificate vs public key; both modes only)

The outbox lives in memory: a sandbox restart forgets notifications not yet delivered (the
terminal queries anyway; WeChat's own outbox would survive).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from hw_mocks.wechat_sandbox.keys import SandboxKeys
from hw_mocks.wechat_sandbox.orders import CST, Event
from hw_mocks.wechat_sandbox.state import OrderBook
from pos_terminal.payments import wechat_sign

log = logging.getLogger(__name__)

RETRY_SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800,
                    21600, 21600)  # fmt: skip
DUPLICATE_AFTER_S = 15.0  # a duplicate follows a success by about one retry step
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}
TICK_S = 0.05  # how often due refunds are settled and due deliveries sent


@dataclass(frozen=True)
class NotifySettings:
    """How the sandbox delivers notifications; rates are probabilities in [0, 1]."""

    time_scale: float = 1.0
    duplicate_rate: float = 0.0
    probe_rate: float = 0.0
    gray_rate: float = 0.0
    answer_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        rates = (self.duplicate_rate, self.probe_rate, self.gray_rate)
        if not all(0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError(f"notification rates must be within [0, 1], got {rates}")
        if self.time_scale <= 0 or self.answer_timeout_s <= 0:
            raise ValueError("time_scale and answer_timeout_s must be > 0")


@dataclass
class Attempt:
    """One POST: `kind` is delivery, probe or duplicate; `status` None when none came back."""

    kind: str
    serial: str
    status: int | None
    error: str
    at: float  # the injected clock's Unix time


@dataclass
class Outgoing:
    """One notification in the outbox; every retry sends the same envelope (same id)."""

    id: str
    event_type: str
    url: str
    envelope: bytes
    subject: str  # out_trade_no, or out_refund_no for a refund
    due: float  # monotonic
    failures: int = 0
    state: str = "pending"  # pending, delivered, given_up
    duplicate_due: float | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "url": self.url,
            "subject": self.subject,
            "state": self.state,
            "failures": self.failures,
            "attempts": [asdict(a) for a in self.attempts],
        }


class Notifier:
    """Settles due refunds and delivers the outbox on a background thread."""

    def __init__(
        self,
        keys: SandboxKeys,
        book: OrderBook,
        clock: Callable[[], float],
        settings: NotifySettings,
    ) -> None:
        self._keys, self._book, self._clock = keys, book, clock
        self.settings = settings
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._outbox: list[Outgoing] = []
        self._busy: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-notify")
        self._http = httpx.Client(timeout=settings.answer_timeout_s, trust_env=False)
        book.listener = self.enqueue

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def enqueue(self, events: list[Event]) -> None:
        """Take a request's events (called by the order book, its lock held: no I/O here)."""
        now = time.monotonic()
        with self._lock:
            self._outbox += [self._seal(event, now) for event in events]

    def clear(self) -> None:
        """Forget the outbox (the sandbox's reset)."""
        with self._lock:
            self._outbox.clear()

    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [item.view() for item in self._outbox]

    # ------------------------------------------------------------ internals

    def _seal(self, event: Event, now: float) -> Outgoing:
        moment = self._clock()
        event_id = "EV-" + datetime.fromtimestamp(moment, CST).strftime("%Y%m%d%H%M%S")
        event_id += secrets.token_hex(6).upper()
        body = envelope(
            self._keys.apiv3_key, event.event_type, event.resource, event_id=event_id, at=moment
        )
        subject = event.resource.get("out_refund_no") or event.resource["out_trade_no"]
        return Outgoing(event_id, event.event_type, event.notify_url, body, str(subject), now)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._book.sweep()
            except Exception:  # the sandbox must keep notifying whatever one order did
                log.exception("sandbox notifier: settling due orders failed")
            now = time.monotonic()
            with self._lock:
                due = [
                    item for item in self._outbox if item.id not in self._busy and _due(item, now)
                ]
                self._busy.update(item.id for item in due)
            for item in due:
                self._pool.submit(self._deliver, item)

    def _deliver(self, item: Outgoing) -> None:
        try:
            if item.state == "delivered":  # a duplicate of a delivered notification
                with self._lock:
                    item.duplicate_due = None
                self._post(item, "duplicate")
                return
            if not item.attempts and self._rng.random() < self.settings.probe_rate:
                self._post(item, "probe")
            status = self._post(item, "delivery")
            with self._lock:
                if status in (200, 204):
                    item.state = "delivered"
                    if self._rng.random() < self.settings.duplicate_rate:
                        item.duplicate_due = time.monotonic() + self._scaled(DUPLICATE_AFTER_S)
                    return
                item.failures += 1
                if item.failures > len(RETRY_SCHEDULE_S):
                    item.state = "given_up"
                    log.info("notification %s to %s: given up", item.id, item.url)
                else:
                    step = RETRY_SCHEDULE_S[item.failures - 1]
                    item.due = time.monotonic() + self._scaled(step)
        finally:
            with self._lock:
                self._busy.discard(item.id)

    def _post(self, item: Outgoing, kind: str) -> int | None:
        key, serial = self._signer()
        timestamp, nonce = str(int(self._clock())), wechat_sign.new_nonce()
        if kind == "probe":
            signature = PROBE_PREFIX + base64.b64encode(secrets.token_bytes(192)).decode()
        else:
            signature = wechat_sign.sign(
                key, wechat_sign.response_message(timestamp, nonce, item.envelope)
            )
        headers = {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": wechat_sign.SCHEME,
        }
        status: int | None = None
        error = ""
        try:
            status = self._http.post(item.url, content=item.envelope, headers=headers).status_code
        except Exception as exc:  # any URL or network failure is a failed attempt, retried
            error = f"{type(exc).__name__}: {exc}"[:200]
        with self._lock:
            item.attempts.append(Attempt(kind, serial, status, error, self._clock()))
        return status

    def _signer(self) -> tuple[rsa.RSAPrivateKey, str]:
        keys = self._keys
        public = (keys.platform_private_key, keys.public_key_id)
        cert = (keys.cert_private_key, keys.cert_serial)
        usual, other = (public, cert) if "public_key" in keys.key_modes else (cert, public)
        both = len(keys.key_modes) == 2
        return other if both and self._rng.random() < self.settings.gray_rate else usual

    def _scaled(self, seconds: float) -> float:
        return seconds * self.settings.time_scale


def envelope(
    apiv3_key: str, event_type: str, resource: Mapping[str, Any], *, event_id: str, at: float
) -> bytes:
    """WeChat's notification body (§3.8), `resource` sealed with AES-256-GCM under the key."""
    original = "transaction" if event_type.startswith("TRANSACTION.") else "refund"
    nonce = wechat_sign.new_nonce(12)
    plain = json.dumps(resource, ensure_ascii=False).encode()
    data = {
        "id": event_id,
        "create_time": datetime.fromtimestamp(at, CST).isoformat("T", "seconds"),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": SUMMARIES.get(event_type, event_type),
        "resource": {
            "original_type": original,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": wechat_sign.encrypt_resource(
                apiv3_key, plain, nonce=nonce, associated_data=original
            ),
            "associated_data": original,
            "nonce": nonce,
        },
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _due(item: Outgoing, now: float) -> bool:
    if item.state == "pending":
        return now >= item.due
    return item.duplicate_due is not None and now >= item.duplicate_due
