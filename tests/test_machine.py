"""The pure sale state machine: every declared transition, and everything else ignored."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from pos_terminal import machine as m
from pos_terminal.machine import Phase
from pos_terminal.ports import Key

WECHAT_CODE = "134567890123456789"
SALE = m.ApprovedSale("T0001X", "4200000000000000000000000001", "wechat_code", 1234, "1345**6789")


def at(phase: Phase, **kw: object) -> m.State:
    base = m.State(phase=phase, amount_fen=1234, attempt=3)
    return replace(base, **kw)  # type: ignore[arg-type]


def key(k: str) -> m.KeyPressed:
    return m.KeyPressed(k)


# One example event per trigger, built for a state at attempt 3.
EXAMPLES: dict[str, m.Event] = {
    "digit": key("7"),
    "enter": key(Key.ENTER),
    "backspace": key(Key.BACKSPACE),
    "clear": key(Key.CLEAR),
    "cancel": key(Key.CANCEL),
    "qr": key(Key.QR),
    "reprint": key(Key.REPRINT),
    "refund": key(Key.REFUND),
    "OrderFound": m.OrderFound("T0001SALE1", 1234),
    "OrderNotFound": m.OrderNotFound("不是本机的交易 Not a sale of this terminal"),
    "RefundFinished": m.RefundFinished(True, "SUCCESS"),
    "CodeScanned": m.CodeScanned(WECHAT_CODE),
    "RecoveryDone": m.RecoveryDone(0),
    "QrReady": m.QrReady(3, "weixin://wxpay/bizpayurl?pr=abc"),
    "PaymentPending": m.PaymentPending(3),
    "PaymentApproved": m.PaymentApproved(3, SALE),
    "PaymentDeclined": m.PaymentDeclined(3, "余额不足 Insufficient balance"),
    "PaymentCancelled": m.PaymentCancelled(3),
    "PaymentInDoubt": m.PaymentInDoubt(3, "JournalError: disk I/O error"),
    "PaymentException": m.PaymentException(3, "WeChat says amount.total 1233 (ours 1234)"),
    "PrintDone": m.PrintDone(True),
    f"TimerExpired:{m.TIMER_AWAITING}": m.TimerExpired(m.TIMER_AWAITING),
    f"TimerExpired:{m.TIMER_QR}": m.TimerExpired(m.TIMER_QR),
    f"TimerExpired:{m.TIMER_RESULT}": m.TimerExpired(m.TIMER_RESULT),
}


@pytest.mark.parametrize("rule", m.RULES, ids=lambda r: f"{r.source}-{r.trigger}")
def test_every_rule_lands_in_a_declared_target(rule: m.Rule) -> None:
    state = at(rule.source)
    new, effects = m.step(state, EXAMPLES[rule.trigger])
    assert new.phase in rule.targets
    assert all(isinstance(e, m.Effect) for e in effects)  # type: ignore[arg-type]


_DECLARED = {(r.source, r.trigger) for r in m.RULES}
_UNDECLARED = [(p, t) for p in Phase for t in EXAMPLES if (p, t) not in _DECLARED]


@pytest.mark.parametrize(("phase", "trigger"), _UNDECLARED)
def test_events_without_a_rule_are_ignored(phase: Phase, trigger: str) -> None:
    state = at(phase)
    assert m.step(state, EXAMPLES[trigger]) == (state, [])


def test_every_phase_is_reachable_and_has_a_way_out() -> None:
    sources = {r.source for r in m.RULES}
    targets = {t for r in m.RULES for t in r.targets} | {Phase.RECOVERING}
    assert sources == set(Phase)
    assert targets == set(Phase)


def test_digits_shift_in_fen_wise_and_show_the_amount() -> None:
    state = at(Phase.IDLE, amount_fen=0)
    for digit in "1234":
        state, effects = m.step(state, key(digit))
    assert state.phase is Phase.ENTERING_AMOUNT
    assert state.amount_fen == 1234
    assert effects == [m.Show(m.amount_screen(1234))]


def test_backspace_and_clear_edit_the_amount() -> None:
    state = at(Phase.ENTERING_AMOUNT, amount_fen=1234)
    state, _ = m.step(state, key(Key.BACKSPACE))
    assert state.amount_fen == 123
    state, _ = m.step(state, key(Key.CLEAR))
    assert state.amount_fen == 0


def test_a_tenth_digit_is_refused() -> None:
    state = at(Phase.ENTERING_AMOUNT, amount_fen=123456789)
    state, _ = m.step(state, key("9"))
    assert state.amount_fen == 123456789


def test_enter_with_zero_amount_does_nothing() -> None:
    state = at(Phase.ENTERING_AMOUNT, amount_fen=0)
    assert m.step(state, key(Key.ENTER)) == (state, [])


def test_confirm_starts_the_awaiting_timer() -> None:
    new, effects = m.step(at(Phase.CONFIRMING), key(Key.ENTER))
    assert new.phase is Phase.AWAITING_PAYMENT
    assert m.StartTimer(m.TIMER_AWAITING, m.TIMER_AWAITING) in effects


def test_a_wechat_code_starts_a_new_attempt() -> None:
    new, effects = m.step(at(Phase.AWAITING_PAYMENT), m.CodeScanned(f" {WECHAT_CODE}\n"))
    assert new.phase is Phase.CHARGING_CODE
    assert new.attempt == 4
    assert m.StartCodePayment(4, 1234, WECHAT_CODE) in effects
    assert m.CancelTimer(m.TIMER_AWAITING) in effects


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("hello", "Not a payment code"),
        ("281234567890123456", "Alipay is not enabled"),
        ("6212345678901234567", "UnionPay QR is not enabled"),
        ("194567890123456789", "Not a payment code"),
    ],
)
def test_other_scans_are_refused_with_a_reason(code: str, reason: str) -> None:
    new, effects = m.step(at(Phase.AWAITING_PAYMENT), m.CodeScanned(code))
    assert new.phase is Phase.AWAITING_PAYMENT
    assert reason in new.notice
    assert not any(isinstance(e, m.StartCodePayment) for e in effects)


def test_qr_key_creates_a_native_order_and_arms_expiry() -> None:
    new, effects = m.step(at(Phase.AWAITING_PAYMENT), key(Key.QR))
    assert new.phase is Phase.SHOWING_QR
    assert m.StartNativePayment(4, 1234) in effects
    assert m.StartTimer(m.TIMER_QR, m.TIMER_QR) in effects


def test_qr_ready_puts_the_code_on_screen() -> None:
    new, effects = m.step(at(Phase.SHOWING_QR, attempt=3), m.QrReady(3, "weixin://x"))
    assert new.code_url == "weixin://x"
    assert isinstance(effects[0], m.Show) and effects[0].screen.qr == "weixin://x"


@pytest.mark.parametrize("phase", [Phase.CHARGING_CODE, Phase.SHOWING_QR, Phase.CANCELLING])
def test_results_of_an_older_attempt_are_ignored(phase: Phase) -> None:
    state = at(phase, attempt=3)
    for stale in (
        m.PaymentApproved(2, SALE),
        m.PaymentDeclined(2, "x"),
        m.PaymentCancelled(2),
        m.QrReady(2, "weixin://old"),
        m.PaymentPending(2),
    ):
        assert m.step(state, stale) == (state, [])


@pytest.mark.parametrize("phase", [Phase.CHARGING_CODE, Phase.SHOWING_QR])
def test_cancel_while_waiting_asks_to_cancel_the_payment(phase: Phase) -> None:
    new, effects = m.step(at(phase), key(Key.CANCEL))
    assert new.phase is Phase.CANCELLING
    assert m.CancelPayment(3) in effects


def test_qr_expiry_cancels_like_the_cashier() -> None:
    new, effects = m.step(at(Phase.SHOWING_QR), m.TimerExpired(m.TIMER_QR))
    assert new.phase is Phase.CANCELLING
    assert m.CancelPayment(3) in effects


def test_a_payment_landing_while_cancelling_is_an_approved_sale() -> None:
    new, effects = m.step(at(Phase.CANCELLING), m.PaymentApproved(3, SALE))
    assert new.phase is Phase.PRINTING
    assert m.PrintReceipt(SALE) in effects


def test_approved_prints_then_holds_then_idles() -> None:
    state, effects = m.step(at(Phase.CHARGING_CODE), m.PaymentApproved(3, SALE))
    assert state.last_sale == SALE and m.PrintReceipt(SALE) in effects
    state, effects = m.step(state, m.PrintDone(True))
    assert state.phase is Phase.APPROVED
    assert m.StartTimer(m.TIMER_RESULT, m.TIMER_RESULT) in effects
    state, _ = m.step(state, m.TimerExpired(m.TIMER_RESULT))
    assert state.phase is Phase.IDLE and state.amount_fen == 0


def test_a_print_failure_still_ends_approved_with_a_notice() -> None:
    state, _ = m.step(at(Phase.PRINTING, last_sale=SALE), m.PrintDone(False, "paper out"))
    assert state.phase is Phase.APPROVED
    assert state.notice == "paper out"


def test_a_digit_after_a_result_starts_the_next_sale() -> None:
    state, effects = m.step(at(Phase.APPROVED), key("5"))
    assert state.phase is Phase.ENTERING_AMOUNT and state.amount_fen == 5
    assert m.CancelTimer(m.TIMER_RESULT) in effects


@pytest.mark.parametrize("phase", list(Phase))
def test_printer_news_only_sets_the_notice_in_every_phase(phase: Phase) -> None:
    state = at(phase)
    broken, effects = m.step(state, m.PrinterChanged(False, "缺纸 Paper out"))
    assert broken == replace(state, printer_notice="缺纸 Paper out") and effects == []
    assert m.step(broken, m.PrinterChanged(True)) == (state, [])


@pytest.mark.parametrize("phase", list(Phase))
def test_device_news_only_sets_that_devices_notice_in_every_phase(phase: Phase) -> None:
    state = at(phase)
    camera, _ = m.step(state, m.DeviceNotice("camera decode", "failed (KeyError); restarting"))
    both, effects = m.step(camera, m.DeviceNotice("serial scanner", "failed (OSError)"))
    assert effects == [] and both == replace(
        state,
        device_notices=(
            ("camera decode", "failed (KeyError); restarting"),
            ("serial scanner", "failed (OSError)"),
        ),
    )
    again, _ = m.step(both, m.DeviceNotice("camera decode", "failed again"))
    assert again.device_notices[-1] == ("camera decode", "failed again")
    fine, _ = m.step(again, m.DeviceNotice("camera decode", ""))
    assert fine.device_notices == (("serial scanner", "failed (OSError)"),)
    assert m.step(fine, m.DeviceNotice("serial scanner")) == (state, [])


@pytest.mark.parametrize("phase", [Phase.IDLE, Phase.APPROVED])
def test_reprint_asks_for_the_last_receipt_again(phase: Phase) -> None:
    assert m.step(at(phase), key(Key.REPRINT)) == (at(phase), [m.Reprint()])


def test_a_receipt_qr_scanned_while_idle_reprints_that_receipt() -> None:
    state = at(Phase.IDLE)
    assert m.step(state, m.CodeScanned("T0001261126101500123456\n")) == (
        state,
        [m.Reprint("T0001261126101500123456")],
    )
    assert m.step(state, m.CodeScanned(WECHAT_CODE)) == (state, [])


def test_the_diagram_names_every_rule() -> None:
    diagram = m.mermaid()
    assert diagram.startswith("stateDiagram-v2")
    for rule in m.RULES:
        for target in rule.targets:
            assert f"{rule.source} --> {target} : {rule.trigger.replace(':', ' ')}" in diagram


def test_the_readme_diagram_is_current() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{m.mermaid()}```" in readme, (
        "README diagram is stale: run `pos-terminal diagram`"
    )


def test_the_machine_imports_no_io() -> None:
    source = Path(m.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0] if node.level == 0 else node.module)
    forbidden = {
        "asyncio",
        "sqlite3",
        "socket",
        "time",
        "random",
        "secrets",
        "httpx",
        "drivers",
        "hw_mocks",
    }
    assert not imported & forbidden


PIN_1234 = hashlib.sha256(b"1234").hexdigest()


def run(state: m.State, *events: m.Event) -> tuple[m.State, list[m.Effect]]:
    effects: list[m.Effect] = []
    for event in events:
        state, effects = m.step(state, event)
    return state, effects


def test_a_refund_needs_the_supervisor_pin() -> None:
    idle = replace(m.initial_state(supervisor_pin_sha256=PIN_1234), phase=Phase.IDLE)
    state, _ = run(idle, key(Key.REFUND), *map(key, "9999"), key(Key.ENTER))
    assert state.phase is Phase.IDLE and "Wrong supervisor PIN" in state.notice
    state, effects = run(idle, key(Key.REFUND), *map(key, "1234"))
    assert state.phase is Phase.SUPERVISOR_PIN
    assert effects == [m.Show(m.Screen(m.PIN_SCREEN, lines=("****",)))]  # never the digits
    state, _ = m.step(state, key(Key.ENTER))
    assert state.phase is Phase.REFUND_ORDER and state.entry == ""


def test_refunds_are_off_without_a_configured_pin() -> None:
    state, _ = m.step(replace(m.initial_state(), phase=Phase.IDLE), key(Key.REFUND))
    assert state.phase is Phase.IDLE and "supervisor_pin_sha256" in state.notice


def test_a_scanned_or_typed_order_is_looked_up() -> None:
    ordering = replace(at(Phase.REFUND_ORDER), entry="")
    assert m.step(ordering, m.CodeScanned(" T0001SALE1\n"))[1] == [m.FindRefundable("T0001SALE1")]
    state, effects = run(ordering, *map(key, "123456"), key(Key.ENTER))
    assert effects == [m.FindRefundable("123456")] and state.entry == ""


def test_the_full_amount_is_offered_and_a_partial_one_can_be_keyed() -> None:
    state, _ = m.step(at(Phase.REFUND_ORDER), m.OrderFound("T0001SALE1", 1234))
    assert (state.phase, state.amount_fen, state.refund_order) == (
        Phase.REFUND_AMOUNT,
        1234,
        "T0001SALE1",
    )
    full, effects = m.step(state, key(Key.ENTER))
    assert full.phase is Phase.REFUNDING and m.StartRefund("T0001SALE1", 1234) in effects
    _, effects = run(state, key("5"), key("0"), key("0"), key(Key.ENTER))
    assert m.StartRefund("T0001SALE1", 500) in effects


def test_more_than_refundable_is_refused_on_screen() -> None:
    state, _ = m.step(at(Phase.REFUND_ORDER), m.OrderFound("T0001SALE1", 1234))
    state, effects = run(state, *map(key, "99999"), key(Key.ENTER))
    assert state.phase is Phase.REFUND_AMOUNT and "outside" in state.notice
    assert not any(isinstance(e, m.StartRefund) for e in effects)


def test_the_refund_result_is_shown_then_idles() -> None:
    state, _ = m.step(at(Phase.REFUNDING), m.RefundFinished(False, "NOT_ENOUGH"))
    assert state.phase is Phase.REFUND_RESULT and "NOT_ENOUGH" in state.notice
    state, _ = m.step(state, m.TimerExpired(m.TIMER_RESULT))
    assert state.phase is Phase.IDLE and state.refund_order is None
