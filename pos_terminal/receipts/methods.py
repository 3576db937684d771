"""Payment methods as receipts word them: method line, customer's stub, masked reference label.

Each method brings its own wording, so a bank-card method says 持卡人存根 CARDHOLDER COPY while a
WeChat Pay receipt, which has no card and no cardholder, says 顾客存根 CUSTOMER COPY.
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_STUB = "顾客存根 CUSTOMER COPY"


@dataclass(frozen=True)
class PaymentMethod:
    """The receipt wording of one way to pay."""

    label: str  # the 支付方式 Method line
    customer_copy: str  # the line under the title on the copy the customer takes
    reference_label: str  # labels the masked payment code or card number, when there is one


WECHAT_CODE = PaymentMethod("微信支付 WeChat Pay 付款码", CUSTOMER_STUB, "付款码 Code")
WECHAT_NATIVE = PaymentMethod("微信支付 WeChat Pay 扫码", CUSTOMER_STUB, "付款码 Code")

_BY_NAME = {"wechat_code": WECHAT_CODE, "wechat_native": WECHAT_NATIVE}


def method_named(name: str) -> PaymentMethod:
    """The wording of the journal's method `name` ("wechat_code", "wechat_native").

    Raises:
        ValueError: no receipt wording exists for `name`.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise ValueError(f"no receipt wording for payment method {name!r} ({known})") from None
