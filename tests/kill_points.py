"""Kill points for the crash test: SIGKILL the terminal's process at a step boundary named.

Installed by the test harness on a running terminal; nothing in the product knows of them.
The boundaries of every WeChat call and journal write, each named "<boundary> <what>":

- `before send <call>`: the request is signed and built, not on the wire (an httpx request
  event hook on the client's own connection pool);
- `after send <call>`: WeChat has acted on it and its answer has arrived, unread (an httpx
  response hook: the client streams bodies, so it runs before the body is read);
- `after answer <call>`: the client handed the verified answer, or WeChat's error, to the
  policy, which has not journaled anything about it yet;
- `after journal write <state>`: a journal call that changed the database has committed
  (`<state>` is the row's state, `refund <state>` for refunds, `other` for notes and marks).

`<call>` is the client method (`create_codepay`, `query`, `reverse`, ...). `KillPoints.arm`
kills at the first time the named boundary is reached; every boundary reached is reported once.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from typing import Any

import httpx

from pos_terminal.journal import Journal, JournalError, JournalWorker, PaymentRow
from pos_terminal.journal_refunds import RefundRow
from pos_terminal.payments.wechat import WeChatApiError, WeChatPayClient

CALLS = (
    "create_codepay",
    "create_native",
    "query",
    "reverse",
    "close",
    "create_refund",
    "query_refund",
)
_call: ContextVar[str] = ContextVar("wechat_call", default="other")


class KillPoints:
    """Which boundary kills the process (`arm`), and the boundaries reached so far."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.target: str | None = None
        self.reached: list[str] = []
        self._report = report

    def arm(self, name: str) -> None:
        self.target = name

    def reach(self, name: str) -> None:
        if name == self.target:
            os.kill(os.getpid(), signal.SIGKILL)
        if name not in self.reached:
            self.reached.append(name)
            self._report(name)

    def install(self, client: WeChatPayClient, worker: JournalWorker) -> None:
        """Hook an open client's HTTP exchanges and calls, and the journal worker's writes."""
        http: httpx.AsyncClient = client._http  # type: ignore[assignment]  # its own pool

        async def before(request: httpx.Request) -> None:
            self.reach(f"before send {_call.get()}")

        async def after(response: httpx.Response) -> None:
            self.reach(f"after send {_call.get()}")

        http.event_hooks = {"request": [before], "response": [after]}
        for name in CALLS:
            setattr(client, name, self._answered(name, getattr(client, name)))
        worker._thread = _Committing(self, worker._thread)  # type: ignore[assignment]

    def _answered(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            token = _call.set(name)
            try:
                answer = await method(*args, **kwargs)
            except WeChatApiError:  # an answer too: WeChat refused, or says "still paying"
                self.reach(f"after answer {name}")
                raise
            finally:
                _call.reset(token)
            self.reach(f"after answer {name}")
            return answer

        return call


class _Committing(Executor):
    """The journal worker's one thread, reporting each call that changed the database."""

    def __init__(self, points: KillPoints, thread: Executor) -> None:
        self._points = points
        self._thread = thread

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            journal: Journal = args[0]
            before = _changes(journal)
            result = fn(*args, **kwargs)
            after = _changes(journal)
            if before is not None and after is not None and after != before:
                self._points.reach(f"after journal write {_label(result)}")
            return result

        return self._thread.submit(run)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._thread.shutdown(wait=wait, cancel_futures=cancel_futures)


def _changes(journal: Journal) -> int | None:
    """Rows changed on the journal's connection so far; None while it is not open."""
    try:
        return journal.db.total_changes
    except JournalError:
        return None


def _label(result: object) -> str:
    if isinstance(result, PaymentRow):
        return str(result.state)
    if isinstance(result, RefundRow):
        return f"refund {result.state}"
    return "other"
