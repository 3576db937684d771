"""`pos-terminal` command line: one subcommand per job, listed by `pos-terminal --help`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pos_terminal import systemd
from pos_terminal.config import Config, load_config
from pos_terminal.errors import ConfigError, PosError

if TYPE_CHECKING:  # the terminal's assembly is imported when a command runs it
    from pos_terminal.app import Terminal

log = logging.getLogger("pos_terminal")
DEFAULT_CONFIG = Path("config/terminal.yaml")
CONFIG_HELP = f"the terminal's YAML configuration (default: {DEFAULT_CONFIG})"
# Ctrl-C, systemd's stop, the terminal window closed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def build_parser() -> argparse.ArgumentParser:
    """The command line; `decode` only names its command, decode_cli parses its arguments."""
    parser = argparse.ArgumentParser(
        prog="pos-terminal",
        description="A Linux POS terminal taking WeChat Pay, with its sandbox and install checks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the terminal")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=CONFIG_HELP)
    run.add_argument(
        "--headless",
        action="store_true",
        help="no console UI: needed when stdout or stdin is not a terminal (systemd, a pipe)",
    )

    demo = commands.add_parser("demo", help="three scripted sales against the sandbox")
    demo.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=CONFIG_HELP)
    demo.add_argument(
        "--work-dir",
        type=Path,
        default=Path("var/demo"),
        help="emptied, then holds the demo's journal, sandbox, receipts and log",
    )

    sandbox = commands.add_parser("sandbox", help="run the WeChat Pay sandbox on loopback")
    sandbox.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sandbox.add_argument(
        "--state-dir",
        type=Path,
        default=Path("var/sandbox"),
        help="merchant.json, keys and orders (default: var/sandbox)",
    )
    sandbox.add_argument(
        "--error-style",
        choices=("underscore", "legacy"),
        default="underscore",
        help="error code spelling: SYSTEM_ERROR (underscore) or SYSTEMERROR (legacy)",
    )
    sandbox.add_argument(
        "--memory", action="store_true", help="keep orders in memory only (default: state dir)"
    )
    sandbox.add_argument(
        "--key-modes",
        type=_key_modes,
        help="the merchant's WeChat keys, remembered in merchant.json (new merchants: "
        "public_key); public_key,certificate is a merchant switching from platform certificates",
    )
    sandbox.add_argument(
        "--notify",
        action="store_true",
        help="post notifications to each order's notify_url (TRANSACTION.SUCCESS, REFUND.*)",
    )
    sandbox.add_argument(
        "--allow-loopback-notify",
        action="store_true",
        help="take notify_urls on loopback, also http (local receivers); WeChat wants public https",
    )
    for name, what in (
        ("scale", "compress the retry schedule: 0.001 runs WeChat's 24 h of retries in 86 s"),
        ("duplicates", "share of delivered notifications sent once more"),
        ("probes", "share preceded by a WECHATPAY/SIGNTEST/ probe"),
        ("gray", "share signed with the merchant's other WeChat key (key switch)"),
    ):
        sandbox.add_argument(f"--notify-{name}", type=float, help=what + "; implies --notify")

    notify = commands.add_parser(
        "notify-server",
        help="receive WeChat Pay notifications into the journal while no terminal runs on it",
    )
    notify.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=CONFIG_HELP)
    notify.add_argument(
        "--host", help="behind the HTTPS proxy WeChat calls (default: notify.listen, 127.0.0.1)"
    )
    notify.add_argument("--port", type=int, help="default: notify.listen's, or 8080")

    config = commands.add_parser(
        "config", help="check a configuration file, or print the reference of every key"
    )
    config.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=CONFIG_HELP)
    config.add_argument(
        "--reference",
        action="store_true",
        help="print every key with its type, range and default (Markdown) instead",
    )

    commands.add_parser(
        "pin-hash",
        help="ask for a supervisor PIN (not echoed) and print staff.supervisor_pin_sha256",
    )
    commands.add_parser("diagram", help="print the sale state machine as a Mermaid diagram")
    commands.add_parser(
        "decode", help="decode payment codes in image files (camera check)", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["decode"]:
        from pos_terminal.decode_cli import main as decode_main

        return decode_main(arguments[1:])
    args = parser.parse_args(arguments)
    try:
        if args.command == "diagram":
            from pos_terminal.machine import mermaid

            sys.stdout.write(mermaid())
            return 0
        if args.command == "pin-hash":
            from pos_terminal.supervisor_pin import main as pin_hash

            return pin_hash()
        if args.command == "config" and args.reference:
            from pos_terminal.config_reference import reference

            sys.stdout.write(reference())
            return 0
        if args.command == "sandbox":
            from hw_mocks.wechat_sandbox import NotifySettings, serve_forever

            _log_to_stderr()
            notify = None
            chosen = {
                setting: value
                for setting, value in (
                    ("time_scale", args.notify_scale),
                    ("duplicate_rate", args.notify_duplicates),
                    ("probe_rate", args.notify_probes),
                    ("gray_rate", args.notify_gray),
                )
                if value is not None
            }
            if args.notify or chosen:
                try:
                    notify = NotifySettings(**chosen)
                except ValueError as exc:
                    parser.error(str(exc))
            return serve_forever(
                args.port,
                args.state_dir,
                persist=not args.memory,
                error_style=args.error_style,
                key_modes=args.key_modes,
                notify=notify,
                allow_loopback_notify=args.allow_loopback_notify,
            )
        config = load_config(args.config)
        if args.command == "config":
            print(f"{args.config}: ok")
            return 0
        if args.command == "notify-server":
            return _notify_server(config, args.host, args.port)
        if args.command == "demo":
            from pos_terminal.demo import check_demo_config, run_demo

            check_demo_config(config, str(args.config))
            shutil.rmtree(args.work_dir, ignore_errors=True)  # every demo starts from nothing
            _log_to_file(Path(args.work_dir) / "demo.log")
            outcome = asyncio.run(_until_signalled(run_demo(config, args.work_dir)))
            if isinstance(outcome, signal.Signals):
                print(f"pos-terminal demo: interrupted ({_signal_name(outcome)})", file=sys.stderr)
                return exit_by(outcome)
            return outcome
        if not args.headless:
            not_tty = [name for name in ("stdout", "stdin") if not getattr(sys, name).isatty()]
            if not_tty:
                log_file = Path(config.journal.path).parent / "pos-terminal.log"
                print(
                    f"error: the console UI needs a terminal, and {' and '.join(not_tty)} "
                    f"{'is' if len(not_tty) == 1 else 'are'} not one (a pipe or a file). Run it "
                    f"in a terminal window (its log: {log_file}), or add --headless to run "
                    "without it (the log then goes to stderr)",
                    file=sys.stderr,
                )
                return 2
        stopped_by = asyncio.run(run_terminal(config, interactive=not args.headless))
        return 0 if stopped_by is None else exit_by(stopped_by)
    except KeyboardInterrupt:  # Ctrl-C while the terminal starts, before its handler is in place
        print(f"pos-terminal {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return exit_by(signal.SIGINT)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except PosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _version() -> str:
    try:
        return importlib.metadata.version("pos-terminal")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _key_modes(text: str) -> frozenset[str]:
    """`--key-modes public_key,certificate` as a set of modes."""
    from hw_mocks.wechat_sandbox.keys import check_key_modes

    try:
        return check_key_modes(mode.strip() for mode in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def merchant_file(config: Config) -> Path:
    """Where the merchant's credentials are: the sandbox's merchant.json, or the configured file."""
    sandbox = config.wechat.sandbox
    if sandbox.enabled:
        return Path(sandbox.state_dir) / "merchant.json"
    return Path(config.wechat.merchant_file)


def _notify_server(config: Config, host: str | None, port: int | None) -> int:
    """The stand-alone receiver: where `notify.listen` says unless told otherwise."""
    from pos_terminal.business_day import BusinessDay
    from pos_terminal.clock import SystemClock
    from pos_terminal.notify_server import serve
    from pos_terminal.payments.wechat import load_merchant_json

    _log_to_stderr()
    creds = load_merchant_json(merchant_file(config))
    # the sandbox runs inside the terminal, not here: no certificates to fetch then
    hosts = () if config.wechat.sandbox.enabled else config.wechat.hosts
    listen = config.notify.address or ("127.0.0.1", 8080)
    merchant = config.merchant
    return serve(
        creds,
        Path(config.journal.path),
        listen[0] if host is None else host,
        listen[1] if port is None else port,
        path=config.wechat.notify_path,
        settings=config.notify,
        business_day=BusinessDay(
            SystemClock(merchant.timezone).tz, merchant.business_day_cutoff_hour
        ),
        wechat_hosts=hosts,
    )


async def run_terminal(config: Config, *, interactive: bool) -> signal.Signals | None:
    """Run until SIGINT, SIGTERM or SIGHUP, then say what is left to recovery at the next start.

    Returns the signal that stopped it.
    """
    from pos_terminal.app import open_terminal
    from pos_terminal.in_flight import NOTHING, in_flight

    if interactive:
        _log_to_file(Path(config.journal.path).parent / "pos-terminal.log")
    else:
        _log_to_stderr()
    stopped_by: list[signal.Signals] = []
    async with open_terminal(config) as terminal:
        runtime = terminal.runtime

        def on_signal(sig: signal.Signals) -> None:
            stopped_by.append(sig)
            runtime.stop()

        _on_first_stop_signal(on_signal)
        runner = asyncio.create_task(runtime.run())
        ready = asyncio.create_task(_announce_ready(terminal.runtime.ready, interactive))
        try:
            await (_run_console(terminal, runner) if interactive else runner)
        finally:
            ready.cancel()
        left = await runtime.journal(in_flight)
    _say_stopped(stopped_by[0] if stopped_by else None, left or [NOTHING], interactive)
    return stopped_by[0] if stopped_by else None


async def _run_console(terminal: Terminal, runner: asyncio.Task[None]) -> None:
    """The laptop console, on the mock keypad and scanner and the sandbox: loaded only here, so
    a headless run imports no mock."""
    from hw_mocks.customer import MockCustomer
    from hw_mocks.keypad import MockKeypad
    from hw_mocks.scanner import MockScanner
    from pos_terminal.console import Console

    keypad, scanner = terminal.devices.inputs["keypad"], terminal.devices.inputs["scanner"]
    if (
        terminal.sandbox is None
        or not isinstance(keypad, MockKeypad)
        or not isinstance(scanner, MockScanner)
    ):
        terminal.runtime.stop()
        await runner
        raise ConfigError("the console UI needs the sandbox and mock keypad and scanner")
    customer = MockCustomer(terminal.sandbox.base_url)
    try:
        with Console(terminal.runtime, keypad, scanner, customer).attached():
            await runner
    finally:
        await customer.aclose()


def _on_first_stop_signal(react: Callable[[signal.Signals], None]) -> None:
    """Call `react` on the first SIGINT, SIGTERM or SIGHUP. A second one ends the process at
    once: the journal is safe then too, as after a power cut."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)
            signal.signal(each, signal.SIG_DFL)
        react(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)


async def _until_signalled(main: Coroutine[Any, Any, int]) -> int | signal.Signals:
    """Run `main` to its end, or cancel it on SIGINT/SIGTERM/SIGHUP and return that signal."""
    task = asyncio.ensure_future(main)
    got: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        got.append(sig)
        task.cancel()

    _on_first_stop_signal(on_signal)
    try:
        status = await task
    except asyncio.CancelledError:
        if not got:
            raise
    return got[0] if got else status


def _signal_name(sig: signal.Signals | None) -> str:
    return "Ctrl-C" if sig is signal.SIGINT else (sig.name if sig else "stop")


def _say_stopped(sig: signal.Signals | None, left: list[str], interactive: bool) -> None:
    """On the console (and in the log): why it stopped and what the next start will resolve."""
    lines = [f"已停止 Stopped ({_signal_name(sig)})", *left]
    for line in lines:
        log.info("%s", line)
    if interactive:
        with contextlib.suppress(OSError):  # the window was closed (SIGHUP): the log has it
            print("\n".join(lines), flush=True)


def exit_by(sig: signal.Signals) -> int:
    """End the process by the signal that stopped it, as a shell expects of an interrupted
    program: the shell sees 128 + N (130 for Ctrl-C, 143 for SIGTERM), systemd a clean stop
    (it counts SIGHUP, SIGINT and SIGTERM as clean)."""
    with contextlib.suppress(OSError):  # a terminal or pipe that is gone
        sys.stdout.flush()
        sys.stderr.flush()
    logging.shutdown()
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    return 128 + sig  # not reached: the default action of both signals ends the process


async def _announce_ready(ready: asyncio.Event, interactive: bool) -> None:
    """Once the journal is resolved: tell systemd, and in headless mode print `ready`."""
    await ready.wait()
    if not interactive:
        print("ready", flush=True)
    systemd.notify("READY=1")
    await systemd.watchdog()


def _quiet_libraries() -> None:
    """Our client logs one line per WeChat call; httpx's own line per request is noise."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        filename=path,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # python-escpos calls basicConfig() when imported
    )
    _quiet_libraries()


if __name__ == "__main__":
    sys.exit(main())
