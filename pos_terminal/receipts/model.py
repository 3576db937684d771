"""What receipts print, as frozen data: sale, refund, void and settlement, plus the printer profile.

Amounts are integer fen; every time is timezone-aware. Nothing here formats or prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from pos_terminal.receipts.methods import PaymentMethod
from pos_terminal.receipts.text import ENCODINGS


class Copy(Enum):
    """Which stub a receipt copy is; the customer's is worded by the payment method."""

    MERCHANT = "merchant"
    CUSTOMER = "customer"


BOTH_COPIES = (Copy.MERCHANT, Copy.CUSTOMER)


def _check_time(time: datetime) -> None:
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError("receipt time must be timezone-aware")


def _check_fen(name: str, fen: int) -> None:
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError(f"receipt {name} must be a non-negative number of fen: {fen!r}")


@dataclass(frozen=True, kw_only=True)
class ReceiptHeader:
    """The lines every receipt starts with."""

    merchant_name: str
    store_id: str
    terminal_id: str
    time: datetime
    cashier: str = ""  # operator id or name; the line is left out when empty
    reprint: bool = False  # printed again later: marked 重印 REPRINT

    def __post_init__(self) -> None:
        _check_time(self.time)


@dataclass(frozen=True)
class Coupon:
    """A coupon a promotion asked to print below the sale (code printed large, not as a QR)."""

    title: str
    code: str
    valid_until: date | None = None
    terms: str = ""


@dataclass(frozen=True, kw_only=True)
class SaleReceipt(ReceiptHeader):
    """An approved sale. `amount_fen` is what the customer paid, after `discount_fen`."""

    method: PaymentMethod
    amount_fen: int
    out_trade_no: str  # also printed as a QR code: the terminal scans it to refund or reprint
    transaction_id: str
    masked_code: str | None  # already masked by the caller: "1345********6789"
    discount_fen: int = 0
    promotions: tuple[str, ...] = ()  # one line of text each, e.g. "满50减5 ￥5 off over ￥50"
    coupon: Coupon | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fen("amount", self.amount_fen)
        _check_fen("discount", self.discount_fen)

    @property
    def original_fen(self) -> int:
        """The price before the discount."""
        return self.amount_fen + self.discount_fen


class RefundResult(Enum):
    """Where the refund stands as the slip prints."""

    DONE = "done"  # the money is back (WeChat SUCCESS)
    UNDER_WAY = "under_way"  # accepted, the money still on its way back (WeChat PROCESSING)
    CLOSED = "closed"  # WeChat closed it: nothing was refunded


@dataclass(frozen=True, kw_only=True)
class RefundReceipt(ReceiptHeader):
    """Money returned for an earlier sale, in full or in part."""

    method: PaymentMethod
    refund_fen: int
    sale_amount_fen: int
    out_trade_no: str  # the sale's order number
    out_refund_no: str
    refund_id: str = ""  # the provider's id; the line is left out when it is not known
    masked_code: str | None = None
    reason: str = ""
    result: RefundResult = RefundResult.DONE

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fen("refund amount", self.refund_fen)
        _check_fen("sale amount", self.sale_amount_fen)
        if self.refund_fen > self.sale_amount_fen:
            raise ValueError(
                f"refund of {self.refund_fen} fen exceeds the sale's {self.sale_amount_fen} fen"
            )


@dataclass(frozen=True, kw_only=True)
class VoidReceipt(ReceiptHeader):
    """A sale cancelled before settlement: the whole amount goes back."""

    method: PaymentMethod
    amount_fen: int
    out_trade_no: str
    transaction_id: str = ""
    masked_code: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fen("amount", self.amount_fen)


@dataclass(frozen=True)
class MethodTotals:
    """One payment method's line on the settlement summary."""

    method: PaymentMethod
    sale_count: int
    sale_fen: int
    refund_count: int = 0
    refund_fen: int = 0

    def __post_init__(self) -> None:
        for name in ("sale_count", "sale_fen", "refund_count", "refund_fen"):
            _check_fen(name.replace("_", " "), getattr(self, name))

    @property
    def net_fen(self) -> int:
        return self.sale_fen - self.refund_fen


@dataclass(frozen=True, kw_only=True)
class SettlementReceipt(ReceiptHeader):
    """The end-of-day summary: counts and totals per method; printed once, for the merchant."""

    batch_no: str
    period_start: datetime
    methods: tuple[MethodTotals, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_time(self.period_start)
        if self.period_start > self.time:
            raise ValueError("settlement period starts after it ends")


@dataclass(frozen=True)
class RecoveredLine:
    """One payment or refund resolved at start: its number, amount and how it ended, in words."""

    number: str
    amount_fen: int
    outcome: str

    def __post_init__(self) -> None:
        _check_fen("recovered amount", self.amount_fen)


@dataclass(frozen=True, kw_only=True)
class RecoveryReceipt(ReceiptHeader):
    """What the terminal resolved at start (after a crash or power cut), for the merchant: one
    unlabelled sheet, like the settlement."""

    lines: tuple[RecoveredLine, ...]


Receipt = SaleReceipt | RefundReceipt | VoidReceipt | SettlementReceipt | RecoveryReceipt


@dataclass(frozen=True)
class PrinterProfile:
    """What the layout needs to know about the printer; the defaults are the POS-5890 class."""

    columns: int = 32  # font A, 12-dot cells on 384 dots
    dots_per_line: int = 384
    native_qr: bool = False  # GS ( k; cheap 58 mm units lack it, so the default is a raster image
    cutter: bool = False
    encoding: str = "gb18030"

    def __post_init__(self) -> None:
        if not 16 <= self.columns <= 96:
            raise ValueError(f"printer columns must be 16..96, not {self.columns}")
        if not 64 <= self.dots_per_line <= 2048:
            raise ValueError(f"printer dots_per_line must be 64..2048, not {self.dots_per_line}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"printer encoding must be one of {', '.join(ENCODINGS)}")
