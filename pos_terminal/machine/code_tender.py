"""The customer's payment code, scanned by the terminal (codepay, 被扫)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pos_terminal.machine.effects import Effect, StartCodePayment
from pos_terminal.machine.events import CodeScanned, PaymentPending
from pos_terminal.machine.rules import Next, Outcome, Table, on
from pos_terminal.machine.screens import WAIT
from pos_terminal.machine.state import Phase, Sale, State, Tender
from pos_terminal.machine.tender import begin, cancel_rule, current, result_rules
from pos_terminal.ports import Screen

P = Phase


@dataclass(frozen=True)
class CodeTender:
    phase: Phase = P.CHARGING_CODE

    def screen(self, tender: Tender) -> Screen:
        if tender.customer_paying:
            waiting = "等待顾客输入密码 Customer entering password"
            return Screen(waiting, tender.amount_fen, (WAIT,))
        return Screen("正在支付 Charging", tender.amount_fen, (WAIT,))

    def on_leave(self) -> tuple[Effect, ...]:
        return ()


CODE = CodeTender()


def _scanned(state: State, sale: Sale, event: CodeScanned) -> Outcome:
    """Charge a payment code the rules accept; say why any other scan is refused."""
    code = event.code.strip()
    verdict = state.session.code_rules.classify(code)
    if verdict.refusal:
        return Next(replace(state, mode=replace(sale, notice=verdict.refusal)))
    return begin(state, sale, CODE, lambda n: StartCodePayment(n, sale.amount_fen, code))


def _pending(state: State, tender: Tender, event: PaymentPending) -> Outcome:
    if not current(state, event):
        return None
    return Next(replace(state, mode=replace(tender, customer_paying=True)))


START = Table(
    "code tender start",
    Sale,
    (on(P.AWAITING_PAYMENT, CodeScanned, (P.CHARGING_CODE, P.AWAITING_PAYMENT), _scanned),),
)
CODE_TENDER = Table(
    "code tender",
    Tender,
    (
        on(P.CHARGING_CODE, PaymentPending, (), _pending),
        cancel_rule(P.CHARGING_CODE),
        *result_rules(P.CHARGING_CODE),
    ),
)
