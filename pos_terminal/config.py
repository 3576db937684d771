"""The terminal's configuration: YAML file -> frozen dataclasses, validated once at start-up.

Relative paths in the file are taken relative to the working directory the terminal runs in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from pos_terminal.clock import zone
from pos_terminal.config_fields import bounds
from pos_terminal.config_schema import NodeReader
from pos_terminal.errors import ConfigError
from pos_terminal.payment_codes import CodeRules, CodeRulesConfig
from pos_terminal.payments.numbers import TERMINAL_ID_CHARS, TERMINAL_ID_MAX
from pos_terminal.registry import DevicesConfig
from pos_terminal.supervisor_pin import check_pin_sha256


def _terminal_id(value: str) -> None:
    """Raises ValueError unless `value` goes into order numbers unchanged."""
    if len(value) > TERMINAL_ID_MAX:
        raise ValueError(
            f"{value!r} has {len(value)} characters: at most {TERMINAL_ID_MAX}, as it begins "
            "every WeChat order number (32 characters at most)"
        )
    if not re.fullmatch(f"[{TERMINAL_ID_CHARS}]+", value):
        raise ValueError(f"{value!r}: only letters, digits, _ and - (it begins every order number)")


def _wechat_text(value: str) -> None:
    """Raises ValueError for characters WeChat Pay v3 refuses in request text."""
    if any(ord(char) > 0xFFFF for char in value):
        raise ValueError(f"{value!r}: WeChat Pay refuses characters beyond U+FFFF (emoji)")


@dataclass(frozen=True)
class MerchantConfig:
    name: str = field(metadata=bounds(min_len=1))  # printed on receipts; Chinese welcome
    # sent to WeChat as the store's own code (scene_info.store_info.out_id: 32 at most)
    store_id: str = field(
        metadata=bounds(min_len=1, max_len=32, check=_wechat_text, rule="no emoji")
    )
    # printed on receipts and the start of every order number
    terminal_id: str = field(
        metadata=bounds(
            min_len=1, check=_terminal_id, rule=f"at most {TERMINAL_ID_MAX} letters, digits, _, -"
        )
    )
    # the merchant's zone: receipt times and business dates
    timezone: str = field(
        default="Asia/Shanghai", metadata=bounds(check=zone, rule="an IANA time zone name")
    )
    # payments before this hour count on the previous business day (a bar closing at 02:00: 2)
    business_day_cutoff_hour: int = field(default=0, metadata=bounds(min=0, max=23))


@dataclass(frozen=True)
class SandboxConfig:
    """The local WeChat Pay sandbox, started in-process on a free loopback port."""

    enabled: bool = False  # true: no real WeChat Pay at all (a laptop, a demo)
    state_dir: str = "var/sandbox"  # its merchant.json and keys, made on first start
    # how long the customer of magic amount ¥40.01 types a password (USERPAYING)
    userpaying_s: float = field(default=8.0, metadata=bounds(min=0.0, max=600.0))
    persist: bool = True  # orders kept in state_dir/orders.sqlite, surviving a terminal crash


@dataclass(frozen=True)
class WeChatConfig:
    # what the customer's WeChat shows for the payment
    description: str = field(
        default="POS sale",
        metadata=bounds(min_len=1, max_len=127, check=_wechat_text, rule="no emoji"),
    )
    # where WeChat posts payment and refund results (the store server); a terminal polls anyway
    notify_url: str = field(
        default="https://pos.example.com/wechatpay/notify", metadata=bounds(max_len=255)
    )
    # merchant.json as the sandbox writes it; refused while the sandbox is enabled
    merchant_file: str = ""
    # primary first, then backup: the next is tried only when a request could not be sent
    hosts: tuple[str, ...] = ("https://api.mch.weixin.qq.com", "https://api2.mch.weixin.qq.com")
    connect_timeout_s: float = field(default=5.0, metadata=bounds(min=0.1, max=60.0))
    read_timeout_s: float = field(default=15.0, metadata=bounds(min=0.1, max=120.0))
    sandbox: SandboxConfig = SandboxConfig()

    @property
    def notify_path(self) -> str:
        """The path of `notify_url`: where the notification receiver takes POSTs."""
        return notify_path(self.notify_url)


@dataclass(frozen=True)
class NotifyConfig:
    """The WeChat Pay notification receiver inside the terminal (notify_server.py)."""

    # host:port the HTTPS proxy named by wechat.notify_url forwards to; "" leaves it off
    listen: str = ""
    # a request must arrive whole (head and body) this soon after connecting or the last answer
    request_timeout_s: float = field(default=5.0, metadata=bounds(min=0.5, max=60.0))
    # open connections at once; one more is closed unanswered
    max_connections: int = field(default=32, metadata=bounds(min=1, max=1024))

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` as (host, port), None when the receiver is off."""
        return split_host_port(self.listen) if self.listen else None


@dataclass(frozen=True)
class PaymentConfig:
    codes: CodeRulesConfig = field(default_factory=CodeRulesConfig)  # which scans are payments
    # a sale of this many yuan or more is confirmed a second time, its amount in words; 0: never
    large_amount_yuan: int = field(default=10_000, metadata=bounds(min=0, max=9_999_999))
    # a payment code answered USERPAYING (or not at all) is queried this often
    code_poll_interval_s: float = field(default=5.0, metadata=bounds(min=0.05, max=60.0))
    # and reversed once this has passed without a result
    code_deadline_s: float = field(default=45.0, metadata=bounds(min=1.0, max=600.0))
    # never reverse an order (or count it as never created) sooner than this after creating it
    reverse_min_delay_s: float = field(default=15.0, metadata=bounds(min=0.0, max=120.0))
    qr_poll_interval_s: float = field(default=2.0, metadata=bounds(min=0.05, max=60.0))
    # a QR left unpaid this long is closed
    qr_expiry_s: float = field(default=120.0, metadata=bounds(min=5.0, max=7200.0))
    # the first pause before a failed step is tried again; it doubles from there
    retry_backoff_s: float = field(default=2.0, metadata=bounds(min=0.01, max=60.0))
    refund_poll_interval_s: float = field(default=5.0, metadata=bounds(min=0.05, max=600.0))
    # the cashier waits this long for a refund's result
    refund_wait_s: float = field(default=30.0, metadata=bounds(min=0.0, max=600.0))
    # a refund still PROCESSING is asked again after this, then at doubling spacing up to 1 h
    refund_follow_s: float = field(default=60.0, metadata=bounds(min=0.05, max=3600.0))


@dataclass(frozen=True)
class ScreenConfig:
    # a sale waiting for a payment code or a QR choice goes back to idle after this
    awaiting_timeout_s: float = field(default=120.0, metadata=bounds(min=5.0, max=3600.0))
    # an approved or declined sale (and a refund result) stays on screen this long
    result_hold_s: float = field(default=3.0, metadata=bounds(min=0.0, max=60.0))


@dataclass(frozen=True)
class StaffConfig:
    # sha256 hex of the supervisor PIN that authorises refunds (`pos-terminal pin-hash` makes
    # it); empty turns refunds off
    supervisor_pin_sha256: str = field(
        default="",
        metadata=bounds(check=check_pin_sha256, rule="64 lower-case hex digits, or empty"),
    )


@dataclass(frozen=True)
class JournalConfig:
    path: str = "var/journal.sqlite"  # SQLite; the log of an interactive run lands beside it


@dataclass(frozen=True)
class Config:
    merchant: MerchantConfig
    # one section per device kind: its `type` picks the backend, and the rest of the section are
    # that backend's keys; a kind left out, or a section without `type`, is `mock`
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    wechat: WeChatConfig = WeChatConfig()
    notify: NotifyConfig = NotifyConfig()
    payment: PaymentConfig = PaymentConfig()
    screen: ScreenConfig = ScreenConfig()
    journal: JournalConfig = JournalConfig()
    staff: StaffConfig = StaffConfig()


def load_config(path: Path) -> Config:
    """Read and validate a configuration file.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or breaks the schema; the message
            names the file, the line and the key path.
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc.strerror or exc}", file=name
        ) from exc
    return parse_config(text, name)


def parse_config(text: str, name: str = "<config>") -> Config:
    """Validate configuration text; `name` is used in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {exc.problem}", file=name, line=line) from exc
    if node is None:
        raise ConfigError("the file is empty", file=name)
    reader = NodeReader(name)
    config: Config = reader.read(Config, node, "")
    if not config.wechat.sandbox.enabled:
        _require_production_wechat(config.wechat, reader, node)
    elif config.wechat.merchant_file:
        raise reader.error(
            _node_at(node, "wechat.merchant_file"),
            "wechat.merchant_file",
            "given while wechat.sandbox.enabled is true, so the sandbox would take every payment "
            "and WeChat none: set wechat.sandbox.enabled: false for real payments, or remove it",
        )
    if config.notify.listen and not config.wechat.sandbox.enabled:
        host = urlsplit(config.wechat.notify_url).hostname or ""
        if _reserved_name(host):
            raise reader.error(
                _node_at(node, "wechat.notify_url"),
                "wechat.notify_url",
                f"{host} is a reserved example name WeChat cannot post to, so notify.listen "
                "would never hear a notification: name the HTTPS proxy in front of it",
            )
    for key, check in (
        ("wechat.notify_url", lambda: config.wechat.notify_path),
        ("notify.listen", lambda: config.notify.address),
    ):
        try:
            check()
        except ValueError as exc:
            raise reader.error(node, key, str(exc)) from exc
    rules = code_rules(config, reader, node)
    for provider in rules.enabled:
        if provider != "wechat":
            raise reader.error(
                node,
                "payment.codes.providers",
                f"{provider} cannot be enabled: only WeChat Pay is wired",
            )
    return config


def code_rules(
    config: Config, reader: NodeReader | None = None, node: yaml.Node | None = None
) -> CodeRules:
    """The payment-code rules the configuration describes.

    Raises:
        ConfigError: a rule is malformed (bad prefix range, digit counts).
    """
    try:
        return CodeRules.from_config(config.payment.codes)
    except ConfigError as exc:
        if reader is None:
            raise
        raise reader.error(node, exc.key, exc.reason) from exc


_URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")


def notify_path(url: str) -> str:
    """The path of a notify_url: an http(s) URL without query or fragment, as WeChat requires.

    Raises:
        ValueError: not such a URL, or a path with characters other than letters, digits and
            `._~/-`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(f"{url!r}: WeChat takes no query or fragment in a notify_url")
    path = parts.path or "/"
    if not _URL_PATH.fullmatch(path):
        raise ValueError(f"{path!r}: a path of letters, digits and ._~/- only")
    return path


def split_host_port(text: str) -> tuple[str, int]:
    """`127.0.0.1:8080` or `[::1]:8080` as (host, port); port 0 picks a free one.

    Raises:
        ValueError: not host:port, or the port is out of range.
    """
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isascii() or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:8080)")
    if int(port) > 65535:
        raise ValueError(f"port {port} is out of range: must be between 0 and 65535")
    return host, int(port)


def _reserved_name(host: str) -> bool:
    """Names no public host has: example.com/net/org and the reserved top-level names."""
    host = host.lower().rstrip(".")
    examples = ("example.com", "example.net", "example.org")
    if any(host == name or host.endswith("." + name) for name in examples):
        return True
    return host.rpartition(".")[2] in ("example", "test", "invalid", "localhost")


def _node_at(root: yaml.Node, dotted: str) -> yaml.Node:
    """The value node of a dotted key path (for the line of an error), else the deepest found."""
    node = root
    for name in dotted.split("."):
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        found = [value for key, value in pairs if key.value == name]
        if not found:
            break
        node = found[0]
    return node


def _require_production_wechat(wechat: WeChatConfig, reader: NodeReader, node: yaml.Node) -> None:
    if not wechat.merchant_file:
        raise reader.error(
            node, "wechat.merchant_file", "required when wechat.sandbox.enabled is false"
        )
    if not wechat.hosts:
        raise reader.error(node, "wechat.hosts", "at least one host is required")
