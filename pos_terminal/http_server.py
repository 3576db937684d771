"""An ASGI app served by uvicorn (h11) on the running event loop, with the limits it lacks.

uvicorn bounds the request head (`h11_max_incomplete_event_size`) and idle keep-alive, but not
the time a client may take to send a request (a slowloris, or a socket that never sends, holds
its connection forever) nor the number of connections it accepts (`limit_concurrency` answers
503 and keeps accepting). `_guarded` adds both: a deadline for each whole request, and a hard
limit on open connections. Signals stay with the program that runs the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from pos_terminal.errors import PosError

log = logging.getLogger(__name__)

WARN_EVERY_S = 60.0  # connections closed over the limit are logged at most this often


class ListenError(PosError):
    """The address cannot be listened on (in use, not ours)."""


@dataclass(frozen=True)
class Limits:
    request_timeout_s: float  # a whole request, from connecting or from the previous answer
    max_connections: int  # open at once; one more is closed before it costs a read
    max_head_bytes: int = 8 * 1024  # 400 beyond; nginx buffers 8 KiB of head by default
    keep_alive_s: int = 5  # an idle connection between two requests
    shutdown_grace_s: int = 3  # requests in flight at shutdown get this long


class HttpServer:
    """`async with HttpServer(app, host, port, limits) as server:` serves until the block ends."""

    def __init__(self, app: ASGIApp, host: str, port: int, limits: Limits) -> None:
        self.app, self.limits = app, limits
        self.address: tuple[str, int] = (host, port)  # the port it got, once open
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Listen and serve.

        Raises:
            ListenError: the address cannot be listened on.
        """
        host, port = self.address
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.address = sock.getsockname()[:2]
        limits = self.limits
        config = uvicorn.Config(
            self.app,
            http=_guarded(limits.request_timeout_s, limits.max_connections),
            ws="none",
            lifespan="off",
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            # uvicorn answers 503 once connections or running requests reach this; connections
            # stop at max_connections, so it counts requests still running for a client gone
            limit_concurrency=limits.max_connections + 1,
            timeout_keep_alive=limits.keep_alive_s,
            timeout_graceful_shutdown=limits.shutdown_grace_s,
            h11_max_incomplete_event_size=limits.max_head_bytes,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http {host}:{port}")
        self._server, self._task = server, task
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises what stopped it
            raise ListenError(f"the server on {host}:{port} stopped as it started")

    async def close(self) -> None:
        """Stop listening; requests in flight get `shutdown_grace_s` to finish."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> HttpServer:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Server(uvicorn.Server):
    """Signals belong to the program running the server (the terminal, `notify-server`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _guarded(request_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each whole request (from the connection or
    the previous answer) and a hard limit on open connections."""
    refused = 0  # connections closed over the limit since the last warning
    warned_at = -WARN_EVERY_S

    class Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nonlocal refused, warned_at
            super().connection_made(transport)  # type: ignore[arg-type]
            if len(self.connections) > max_connections:
                self.transport.close()
                refused += 1
                if self.loop.time() - warned_at >= WARN_EVERY_S:  # a flood: one line a minute
                    log.warning(
                        "%d connection(s) over the limit of %d closed", refused, max_connections
                    )
                    refused, warned_at = 0, self.loop.time()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE):  # the request is all in
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # the next request's time starts with this answer
            super().on_response_complete()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.info(
                    "no whole request within %.1f s from %s; closed", request_timeout_s, self.client
                )
                self.transport.close()

    return Guarded
