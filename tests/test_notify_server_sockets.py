"""The stand-alone receiver against hostile clients over raw sockets: malformed and oversized
requests, other paths and methods, idle and slowloris connections, too many connections; it
answers each as HTTP says, keeps its memory, and answers good notifications within 5 s."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from pathlib import Path

import httpx
import pytest

from hw_mocks.wechat_sandbox import notify
from hw_mocks.wechat_sandbox.keys import PLATFORM_PRIVATE, load_or_create
from pos_terminal.journal import Journal, Method, RowState
from pos_terminal.payments import wechat_sign
from pos_terminal.payments.wechat import WeChatCredentials, load_merchant_json
from tests.notify_receiver import signed_headers

ROOT = Path(__file__).parents[1]
PATH = "/wechatpay/notify"
REQUEST_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 16
ROWS = 200  # PENDING sales good notifications approve, one each
MB = 1024 * 1024
CONFIG = """\
merchant: {{name: 测试商户, store_id: S1, terminal_id: T1}}
wechat:
  notify_url: https://pos.example.com{path}
  sandbox: {{enabled: true, state_dir: {state_dir}}}
journal: {{path: {journal}}}
notify:
  listen: 127.0.0.1:0
  request_timeout_s: {timeout}
  max_connections: {limit}
"""


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    journal: Path
    creds: WeChatCredentials
    platform: object  # WeChat's private key, to sign notifications as WeChat does
    orders: Iterator[int]

    def rss_kib(self, field: str = "VmRSS") -> int:
        """The receiver's resident memory (VmRSS) or its peak so far (VmHWM), in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(field + ":"))
        return int(line.split()[1])

    def notify_paid(self, http: httpx.Client) -> tuple[int, float, str]:
        """A signed TRANSACTION.SUCCESS for the next PENDING row: (status, seconds, order)."""
        order = f"T0001SOCK{next(self.orders):05d}"
        resource = {
            "mchid": self.creds.mchid,
            "appid": self.creds.appid,
            "out_trade_no": order,
            "transaction_id": "4200" + order[-5:].rjust(24, "0"),
            "trade_state": "SUCCESS",
            "success_time": "2026-11-26T10:00:00+08:00",
            "amount": {"total": 1000},
        }
        body = notify.envelope(
            self.creds.apiv3_key,
            "TRANSACTION.SUCCESS",
            resource,
            event_id=f"EV-{order}",
            at=time.time(),
        )
        headers = signed_headers(self.platform, self.creds.public_key_id, body)  # type: ignore[arg-type]
        started = time.monotonic()
        answer = http.post(f"http://127.0.0.1:{self.port}{PATH}", content=body, headers=headers)
        return answer.status_code, time.monotonic() - started, order

    def state_of(self, order: str) -> RowState:
        journal = Journal(self.journal)  # a reader beside the receiver, which writes
        journal.open()
        try:
            row = journal.by_out_trade_no(order)
            assert row is not None
            return row.state
        finally:
            journal.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sandbox_state_dir: Path) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("hostile")
    load_or_create(sandbox_state_dir)
    journal_path = work / "journal.sqlite"
    journal = Journal(journal_path)
    journal.open()
    for n in range(ROWS):
        journal.begin_sale(
            method=Method.WECHAT_NATIVE,
            amount_fen=1000,
            out_trade_no=f"T0001SOCK{n:05d}",
            masked_code=None,
            store_id="S1",
            terminal_id="T1",
            now=datetime.now().astimezone(),
        )
    journal.close()
    config = work / "terminal.yaml"
    config.write_text(
        CONFIG.format(
            path=PATH,
            state_dir=sandbox_state_dir,
            journal=journal_path,
            timeout=REQUEST_TIMEOUT_S,
            limit=MAX_CONNECTIONS,
        ),
        encoding="utf-8",
    )
    log = (work / "stderr.log").open("w")  # a pipe nobody reads would fill and stall it
    proc = subprocess.Popen(
        [sys.executable, "-m", "pos_terminal.cli", "notify-server", "--config", str(config)],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    url = next(w for w in banner.split() if w.startswith("http://"))
    assert url.endswith(PATH), banner
    platform = wechat_sign.load_private_key((sandbox_state_dir / PLATFORM_PRIVATE).read_bytes())
    creds = load_merchant_json(sandbox_state_dir / "merchant.json")
    port = int(url.split(":")[2].split("/")[0])
    yield Server(proc, port, journal_path, creds, platform, count())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    log.close()
    stderr = (work / "stderr.log").read_text()
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr


# ---------------------------------------------------------------- raw exchanges


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (b"" if it closed without a word)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def status_of(answer: bytes) -> int | None:
    return (
        int(answer.split(b" ", 2)[1]) if answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) else None
    )


def head(method: str = "POST", path: str = PATH, *lines: str) -> bytes:
    text = "\r\n".join([f"{method} {path} HTTP/1.1", "Host: pos.example.com", *lines, "", ""])
    return text.encode("latin-1")


def send_until_refused(sock: socket.socket, first: bytes, block: bytes, limit: int) -> int:
    """Send `first`, then `block` again and again until the server stops reading or hangs up
    (or `limit` bytes went); returns how many bytes went."""
    sock.sendall(first)
    sent = len(first)
    sock.settimeout(2)
    try:
        while sent < limit:
            sock.sendall(block)
            sent += len(block)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    sock.settimeout(10)
    return sent


def chunked(size: int) -> bytes:
    return f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"


OVERSIZED = 64 * 1024 + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(head("POST", PATH, "Content-Length: -1") + b"{}", 400, id="negative-length"),
        pytest.param(head("POST", PATH, "Content-Length: abc") + b"{}", 400, id="text-length"),
        pytest.param(head("POST", PATH, "Content-Length: ²") + b"{}", 400, id="unicode-digit"),
        pytest.param(
            head("POST", PATH, f"Content-Length: {OVERSIZED}"), 413, id="declared-too-large"
        ),
        pytest.param(head("GET", PATH), 405, id="get"),
        pytest.param(head("POST", "/other", "Content-Length: 2") + b"{}", 404, id="other-path"),
        pytest.param(head("POST", PATH, "X-Pad: " + "a" * 9000), 400, id="head-too-large"),
        pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" * 40, 400, id="tls-hello"),
        pytest.param(b"\x00\xff garbage \r\n\r\n", 400, id="garbage"),
    ],
)
def test_a_malformed_or_misdirected_request_gets_its_status_and_nothing_more(
    server: Server, request_bytes: bytes, expected: int
) -> None:
    with connect(server) as sock:
        sock.sendall(request_bytes)
        answer = answer_of(sock)
    assert status_of(answer) == expected, answer[:200]


@pytest.mark.parametrize(
    "framing",
    ["chunked", "lying-length", "negative-length"],
)
def test_a_body_past_64_kib_is_never_read_whatever_the_framing_says(
    server: Server, framing: str
) -> None:
    first = {
        "chunked": head("POST", PATH, "Transfer-Encoding: chunked"),
        "lying-length": head("POST", PATH, "Content-Length: 10"),
        "negative-length": head("POST", PATH, "Content-Length: -1"),
    }[framing]
    block = chunked(16 * 1024) if framing == "chunked" else b"x" * 65536
    with connect(server) as sock:
        sent = send_until_refused(sock, first, block, limit=256 * MB)
        answer = answer_of(sock)
    # chunked: refused once past the cap; a short length: its 10 bytes are no notification
    assert status_of(answer) == {"chunked": 413}.get(framing, 400), answer[:200]
    assert sent < 32 * MB  # the server stopped taking bytes, it did not swallow them


@pytest.mark.slow
def test_idle_and_slowloris_connections_are_closed_after_the_request_timeout(
    server: Server,
) -> None:
    def trickle(request: bytes, already: int) -> float:
        """Send `request[:already]` at once, then a byte a second; seconds until closed."""
        with connect(server) as sock:
            started = time.monotonic()
            sock.sendall(request[:already])
            for i in range(already, len(request) + 30):
                if select.select([sock], [], [], 1.0)[0]:
                    assert answer_of(sock) == b""  # closed, no answer
                    return time.monotonic() - started
                if i < len(request):
                    sock.sendall(request[i : i + 1])
            raise AssertionError("still open after 30 s")

    request = head("POST", PATH, "Content-Length: 40") + b"{" + b" " * 38 + b"}"
    with ThreadPoolExecutor(3) as pool:
        waits = [
            pool.submit(trickle, b"", 0),  # idle: never a byte
            pool.submit(trickle, request, 0),  # slowloris: the head a byte a second
            pool.submit(trickle, request, request.index(b"{")),  # the body a byte a second
        ]
        closed_after = [w.result(timeout=40) for w in waits]
    for seconds in closed_after:
        assert REQUEST_TIMEOUT_S - 0.1 <= seconds <= REQUEST_TIMEOUT_S + 0.5, closed_after


def test_connections_over_the_limit_are_closed_at_once_and_service_resumes(
    server: Server,
) -> None:
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # all accepted
        with connect(server) as extra:
            started = time.monotonic()
            assert answer_of(extra) == b""
            assert time.monotonic() - started < 1.0
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    with httpx.Client(timeout=5) as http:
        status, _, order = server.notify_paid(http)
    assert status == 204 and server.state_of(order) is RowState.APPROVED


@pytest.mark.slow
def test_good_notifications_are_answered_within_5_s_while_hostile_clients_keep_at_it(
    server: Server,
) -> None:
    """Floods of unbounded and oversized bodies, slowloris, idle sockets and garbage, over and
    over for 6 s; meanwhile every good notification is answered 204 within 5 s and approves
    its row, and the receiver's peak memory grows by less than 20 MiB."""
    stop = threading.Event()
    before = server.rss_kib()

    def again_and_again(attack: Callable[[], object]) -> None:
        """One connection at a time, each held until the server is done with it."""
        while not stop.is_set():
            with contextlib.suppress(OSError):
                attack()

    def negative_flood() -> None:
        with connect(server) as sock:
            send_until_refused(
                sock, head("POST", PATH, "Content-Length: -1"), b"x" * 65536, 64 * MB
            )

    def chunked_flood() -> None:
        with connect(server) as sock:
            send_until_refused(
                sock, head("POST", PATH, "Transfer-Encoding: chunked"), chunked(65536), 64 * MB
            )

    def slowloris() -> None:
        with connect(server) as sock:
            for byte in head("POST", PATH, "Content-Length: 100"):
                if stop.wait(1.0):
                    return
                sock.sendall(bytes([byte]))

    def idle() -> None:
        with connect(server) as sock:
            answer_of(sock)

    def garbage() -> None:
        with connect(server) as sock:
            sock.sendall(os.urandom(4096))
            answer_of(sock)

    attacks = [negative_flood, chunked_flood, slowloris, slowloris, idle, idle, garbage]
    threads = [threading.Thread(target=again_and_again, args=(a,)) for a in attacks]
    for thread in threads:
        thread.start()
    results = []
    try:
        with httpx.Client(timeout=10) as http:
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline:
                results.append(server.notify_paid(http))
                time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert len(results) >= 20
    assert {status for status, _, _ in results} == {204}
    slowest = max(seconds for _, seconds, _ in results)
    assert slowest < 5.0
    assert all(server.state_of(order) is RowState.APPROVED for _, _, order in results)
    growth_mib = (server.rss_kib("VmHWM") - before) / 1024
    assert growth_mib < 20, f"peak memory grew by {growth_mib:.0f} MiB"
