"""A QR code on screen for the customer to scan and pay (Native, 主扫); it expires."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pos_terminal.machine.effects import CancelTimer, Effect, StartNativePayment, Timer
from pos_terminal.machine.effects import start_timer as start
from pos_terminal.machine.events import KeyPressed, QrReady
from pos_terminal.machine.rules import Next, Outcome, Table, key, on, timer
from pos_terminal.machine.state import Phase, Sale, State, Tender
from pos_terminal.machine.tender import begin, cancel, cancel_rule, current, result_rules
from pos_terminal.ports import Key, Screen

P = Phase


@dataclass(frozen=True)
class QrTender:
    phase: Phase = P.SHOWING_QR

    def screen(self, tender: Tender) -> Screen:
        if tender.code_url is None:
            return Screen("正在生成二维码 Creating QR", tender.amount_fen)
        title = "微信扫码支付 Scan with WeChat"
        return Screen(title, tender.amount_fen, ("Esc 取消 cancel",), qr=tender.code_url)

    def on_leave(self) -> tuple[Effect, ...]:
        return (CancelTimer(Timer.QR),)


QR = QrTender()


def _show_qr(state: State, sale: Sale, event: KeyPressed) -> Outcome:
    native = lambda n: StartNativePayment(n, sale.amount_fen)  # noqa: E731
    return begin(state, sale, QR, native, start(Timer.QR))


def _qr_ready(state: State, tender: Tender, event: QrReady) -> Outcome:
    if not current(state, event) or tender.code_url is not None:
        return None
    return Next(replace(state, mode=replace(tender, code_url=event.code_url)))


START = Table("QR tender start", Sale, (key(P.AWAITING_PAYMENT, Key.QR, P.SHOWING_QR, _show_qr),))
QR_TENDER = Table(
    "QR tender",
    Tender,
    (
        on(P.SHOWING_QR, QrReady, (), _qr_ready),
        cancel_rule(P.SHOWING_QR),
        timer(P.SHOWING_QR, Timer.QR, P.CANCELLING, cancel),
        *result_rules(P.SHOWING_QR),
    ),
)
