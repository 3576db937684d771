"""Assembly: one configuration in, a running terminal out (sandbox, client, journal, devices)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Protocol

from pos_terminal import registry
from pos_terminal.business_day import BusinessDay
from pos_terminal.clock import Clock, SystemClock
from pos_terminal.config import Config
from pos_terminal.devices import Devices, build_devices
from pos_terminal.journal import Journal, JournalWorker
from pos_terminal.journal_lock import JournalLock
from pos_terminal.notify_server import NotifyServer, in_terminal
from pos_terminal.payments.wechat import WeChatPayClient, load_merchant_json
from pos_terminal.payments.wechat_flow import Shop, WeChatPayments
from pos_terminal.payments.wechat_keys import PlatformKeys
from pos_terminal.payments.wechat_refund import WeChatRefunds
from pos_terminal.payments.wechat_settle import Settler
from pos_terminal.runtime import Runtime


class LocalSandbox(Protocol):
    """The in-process WeChat Pay sandbox of a laptop run, as the terminal uses it."""

    @property
    def base_url(self) -> str: ...

    @property
    def merchant_json(self) -> Path: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Terminal:
    config: Config
    runtime: Runtime
    devices: Devices
    journal: Journal
    sandbox: LocalSandbox | None  # with `wechat.sandbox.enabled`, loaded through the registry
    notify: NotifyServer | None  # the notification receiver, when `notify.listen` is set


@contextlib.asynccontextmanager
async def open_terminal(config: Config, *, clock: Clock | None = None) -> AsyncIterator[Terminal]:
    """Build the terminal and its in-process sandbox (when configured); tear down on exit.

    The runtime is built but not started: run `terminal.runtime.run()` as a task. The
    notification receiver (`notify.listen`) serves from here on, through the journal thread.

    Raises:
        JournalLocked: another process owns the journal (checked before anything starts).
        ListenError: `notify.listen` cannot be listened on.
    """
    with JournalLock(Path(config.journal.path)):
        async with _open_terminal(config, clock) as terminal:
            yield terminal


@contextlib.asynccontextmanager
async def _open_terminal(config: Config, clock: Clock | None) -> AsyncIterator[Terminal]:
    clock = clock or SystemClock(config.merchant.timezone)
    sandbox: LocalSandbox | None = None
    wechat = config.wechat
    if wechat.sandbox.enabled:
        laptop = registry.wechat_sandbox()
        sandbox = laptop.factory(laptop.config(wechat.sandbox, clock.timestamp))
        await asyncio.to_thread(sandbox.start)
        credentials = load_merchant_json(sandbox.merchant_json)
        hosts: tuple[str, ...] = (sandbox.base_url,)
    else:
        credentials = load_merchant_json(Path(wechat.merchant_file))
        hosts = wechat.hosts
    journal = Journal(Path(config.journal.path))
    worker = JournalWorker(journal)
    try:
        await worker(lambda j: j.open())
        keys = PlatformKeys.from_credentials(credentials)  # shared with the receiver
        client = WeChatPayClient(
            credentials,
            base_urls=hosts,
            connect_timeout_s=wechat.connect_timeout_s,
            read_timeout_s=wechat.read_timeout_s,
            clock=clock.timestamp,
            keys=keys,
        )
        business_day = BusinessDay(
            clock.now().tzinfo or UTC, config.merchant.business_day_cutoff_hour
        )
        receiver = in_terminal(
            config.notify,
            credentials,
            worker,
            path=wechat.notify_path,
            business_day=business_day,
            keys=keys,
            hosts=hosts,
            clock=clock.timestamp,
        )
        async with client, receiver as notify:
            shop = Shop(
                store_id=config.merchant.store_id,
                terminal_id=config.merchant.terminal_id,
                description=wechat.description,
                notify_url=wechat.notify_url,
            )
            settler = Settler(client, worker, clock, config.payment, business_day)
            payments = WeChatPayments(settler, config.payment, shop)
            refunds = WeChatRefunds(
                client,
                worker,
                clock,
                config.payment,
                config.merchant.terminal_id,
                notify_url=wechat.notify_url,
            )
            devices = build_devices(config.devices)
            runtime = Runtime(config, devices, payments, refunds, worker, clock)
            yield Terminal(config, runtime, devices, journal, sandbox, notify)
    finally:
        await worker(lambda j: j.close())
        worker.shutdown()
        if sandbox is not None:
            await asyncio.to_thread(sandbox.stop)
