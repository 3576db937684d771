"""The pure sale state machine, checked against expectations written here by hand.

EXPECTED below is the sale as the design says it moves, written independently of the rule
tables: each declared move is driven through `step`, every other (phase, trigger) must be ignored,
and the tables must declare exactly these pairs.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_terminal import machine as m
from pos_terminal.machine import Phase, Refund, Sale, Session, State, Supervisor, Tender
from pos_terminal.machine.code_tender import CODE
from pos_terminal.machine.qr_tender import QR
from pos_terminal.machine.rules import DIGIT, Table, key, label, on
from pos_terminal.machine.state import ModeBase, PinGuard
from pos_terminal.ports import Key, Screen

WECHAT_CODE = "134567890123456789"
SALE = m.ApprovedSale("T0001X", "4200000000000000000000000001", "wechat_code", 1234, "1345**6789")
PIN_1234 = hashlib.sha256(b"1234").hexdigest()
RESOLVED_PAID = m.Resolved("T0001202611261015000001", 1234, m.Resolution.PAID)
SESSION = Session(attempt=3, supervisor_pin_sha256=PIN_1234)
P = Phase


GUARDS = {  # the wrong PINs behind each supervisor phase
    P.SUPERVISOR_WAIT: PinGuard(wrong=1, pausing=True),
    P.SUPERVISOR_LOCKED: PinGuard(wrong=5, locked_minutes=15),
}


def at(phase: Phase, session: Session = SESSION) -> State:
    """A state in `phase` for a sale (or refund) of 12.34 at attempt 3, built by hand."""
    if phase in GUARDS:
        session = replace(session, pin_guard=GUARDS[phase])
    return State(session, _mode(phase))


def _mode(phase: Phase) -> m.Booting | Sale | Tender | Supervisor | Refund:
    match phase:
        case P.RECOVERING:
            return m.Booting()
        case P.RECOVERED:
            return m.Booting(phase, rows=(RESOLVED_PAID,))
        case P.CHARGING_CODE | P.CANCELLING:
            return Tender(phase, kind=CODE, amount_fen=1234)
        case P.SHOWING_QR:
            return Tender(phase, kind=QR, amount_fen=1234)
        case P.IN_DOUBT:
            return Tender(phase, kind=QR, amount_fen=1234, notice="timeout")
        case P.SUPERVISOR_PIN:
            return Supervisor(pin="9999")  # a wrong one, typed
        case P.SUPERVISOR_WAIT | P.SUPERVISOR_LOCKED:
            return Supervisor(phase)
        case P.REFUND_ORDER:
            return Refund(phase)
        case P.REFUND_AMOUNT | P.REFUNDING:
            return Refund(phase, out_trade_no="T0001SALE1", refundable_fen=1234, refund_fen=1234)
        case P.REFUND_RESULT:
            return Refund(
                phase,
                out_trade_no="T0001SALE1",
                refundable_fen=1234,
                refund_fen=1234,
                outcome=m.RefundFinished(m.RefundOutcome.REFUNDED, "R0001SALE1"),
            )
    return Sale(phase, 1234)


def press(k: str) -> m.KeyPressed:
    return m.KeyPressed(k)


# One example event per trigger, for a state at attempt 3.
EXAMPLES: dict[str, m.Event] = {
    "digit": press("7"),
    "enter": press(Key.ENTER),
    "backspace": press(Key.BACKSPACE),
    "clear": press(Key.CLEAR),
    "point": press(Key.POINT),
    "cancel": press(Key.CANCEL),
    "qr": press(Key.QR),
    "reprint": press(Key.REPRINT),
    "refund": press(Key.REFUND),
    "CodeScanned": m.CodeScanned(WECHAT_CODE),
    "RecoveryProgress": m.RecoveryProgress(1, 2),
    "RecoveryDone": m.RecoveryDone(),
    "QrReady": m.QrReady(3, "weixin://wxpay/bizpayurl?pr=abc"),
    "PaymentPending": m.PaymentPending(3),
    "PaymentApproved": m.PaymentApproved(3, SALE),
    "PaymentDeclined": m.PaymentDeclined(3, "余额不足 Insufficient balance"),
    "PaymentCancelled": m.PaymentCancelled(3),
    "PaymentInDoubt": m.PaymentInDoubt(3, "JournalError: disk I/O error"),
    "PaymentException": m.PaymentException(3, "WeChat says amount.total 1233 (ours 1234)"),
    "PrintDone": m.PrintDone(True),
    "OrderFound": m.OrderFound("T0001SALE1", 1234),
    "OrderNotFound": m.OrderNotFound("不是本机的交易 Not a sale of this terminal"),
    "RefundFinished": m.RefundFinished(m.RefundOutcome.REFUNDED, "R0001SALE1"),
    "TimerExpired awaiting": m.TimerExpired("awaiting"),
    "TimerExpired qr_expiry": m.TimerExpired("qr_expiry"),
    "TimerExpired result_hold": m.TimerExpired("result_hold"),
    "TimerExpired pin_pause": m.TimerExpired("pin_pause"),
    "TimerExpired pin_lockout": m.TimerExpired("pin_lockout"),
}

# phase  trigger  -> the phase the example event leads to from at(phase)
EXPECTED_TEXT = """
RECOVERING       RecoveryProgress          RECOVERING
RECOVERING       RecoveryDone              IDLE
RECOVERED        enter                     IDLE
IDLE             digit                     ENTERING_AMOUNT
IDLE             point                     ENTERING_AMOUNT
IDLE             reprint                   IDLE
IDLE             CodeScanned               IDLE
IDLE             refund                    SUPERVISOR_PIN
ENTERING_AMOUNT  digit                     ENTERING_AMOUNT
ENTERING_AMOUNT  point                     ENTERING_AMOUNT
ENTERING_AMOUNT  backspace                 ENTERING_AMOUNT
ENTERING_AMOUNT  clear                     ENTERING_AMOUNT
ENTERING_AMOUNT  enter                     CONFIRMING
ENTERING_AMOUNT  cancel                    IDLE
CONFIRMING       enter                     AWAITING_PAYMENT
CONFIRMING       backspace                 ENTERING_AMOUNT
CONFIRMING       cancel                    IDLE
CONFIRMING_LARGE enter                     AWAITING_PAYMENT
CONFIRMING_LARGE backspace                 ENTERING_AMOUNT
CONFIRMING_LARGE cancel                    IDLE
AWAITING_PAYMENT CodeScanned               CHARGING_CODE
AWAITING_PAYMENT qr                        SHOWING_QR
AWAITING_PAYMENT cancel                    IDLE
AWAITING_PAYMENT TimerExpired awaiting     IDLE
CHARGING_CODE    PaymentPending            CHARGING_CODE
CHARGING_CODE    cancel                    CANCELLING
SHOWING_QR       QrReady                   SHOWING_QR
SHOWING_QR       cancel                    CANCELLING
SHOWING_QR       TimerExpired qr_expiry    CANCELLING
EXCEPTION        enter                     IDLE
EXCEPTION        cancel                    IDLE
PRINTING         PrintDone                 APPROVED
APPROVED         reprint                   APPROVED
APPROVED         digit                     ENTERING_AMOUNT
APPROVED         point                     ENTERING_AMOUNT
APPROVED         enter                     IDLE
APPROVED         cancel                    IDLE
APPROVED         TimerExpired result_hold  IDLE
DECLINED         digit                     ENTERING_AMOUNT
DECLINED         point                     ENTERING_AMOUNT
DECLINED         enter                     AWAITING_PAYMENT
DECLINED         cancel                    IDLE
DECLINED         TimerExpired result_hold  AWAITING_PAYMENT
CANCELLED        digit                     ENTERING_AMOUNT
CANCELLED        point                     ENTERING_AMOUNT
CANCELLED        enter                     IDLE
CANCELLED        cancel                    IDLE
CANCELLED        TimerExpired result_hold  IDLE
SUPERVISOR_PIN   digit                     SUPERVISOR_PIN
SUPERVISOR_PIN   backspace                 SUPERVISOR_PIN
SUPERVISOR_PIN   enter                     SUPERVISOR_WAIT
SUPERVISOR_PIN   cancel                    IDLE
SUPERVISOR_WAIT  TimerExpired pin_pause    SUPERVISOR_PIN
SUPERVISOR_WAIT  cancel                    IDLE
SUPERVISOR_LOCKED enter                    IDLE
SUPERVISOR_LOCKED cancel                   IDLE
REFUND_ORDER     CodeScanned               REFUND_ORDER
REFUND_ORDER     digit                     REFUND_ORDER
REFUND_ORDER     backspace                 REFUND_ORDER
REFUND_ORDER     enter                     REFUND_ORDER
REFUND_ORDER     OrderFound                REFUND_AMOUNT
REFUND_ORDER     OrderNotFound             REFUND_ORDER
REFUND_ORDER     cancel                    IDLE
REFUND_AMOUNT    digit                     REFUND_AMOUNT
REFUND_AMOUNT    point                     REFUND_AMOUNT
REFUND_AMOUNT    backspace                 REFUND_AMOUNT
REFUND_AMOUNT    enter                     REFUNDING
REFUND_AMOUNT    refund                    REFUND_AMOUNT
REFUND_AMOUNT    cancel                    IDLE
REFUNDING        RefundFinished            REFUND_RESULT
REFUND_RESULT    digit                     ENTERING_AMOUNT
REFUND_RESULT    enter                     IDLE
REFUND_RESULT    reprint                   REFUND_RESULT
REFUND_RESULT    cancel                    IDLE
REFUND_RESULT    TimerExpired result_hold  IDLE
"""
# every tender phase hears the shared results (IN_DOUBT is already in doubt)
RESULTS = {
    "PaymentApproved": P.PRINTING,
    "PaymentDeclined": P.DECLINED,
    "PaymentCancelled": P.CANCELLED,
    "PaymentException": P.EXCEPTION,
    "PaymentInDoubt": P.IN_DOUBT,
}


def _expected() -> dict[tuple[Phase, str], Phase]:
    table: dict[tuple[Phase, str], Phase] = {}
    for line in EXPECTED_TEXT.strip().splitlines():
        source, *words, target = line.split()
        table[Phase(source), " ".join(words)] = Phase(target)
    for phase in (P.CHARGING_CODE, P.SHOWING_QR, P.CANCELLING, P.IN_DOUBT):
        for trigger, target in RESULTS.items():
            if not (phase is P.IN_DOUBT and target is P.IN_DOUBT):
                table[phase, trigger] = target
    for phase in Phase:  # a minute of a PIN lockout passes whatever the terminal does
        table[phase, "TimerExpired pin_lockout"] = phase
    return table


EXPECTED = _expected()
IGNORED = [(p, t) for p in Phase for t in EXAMPLES if (p, t) not in EXPECTED]


@pytest.mark.parametrize(("pair", "target"), EXPECTED.items(), ids=lambda x: str(x))
def test_each_move_of_the_design_lands_where_it_should(
    pair: tuple[Phase, str], target: Phase
) -> None:
    phase, trigger = pair
    new, _ = m.step(at(phase), EXAMPLES[trigger])
    assert new.phase is target


@pytest.mark.parametrize(("phase", "trigger"), IGNORED)
def test_every_other_event_is_ignored(phase: Phase, trigger: str) -> None:
    state = at(phase)
    assert m.step(state, EXAMPLES[trigger]) == (state, [])


def test_the_tables_declare_exactly_the_moves_of_the_design() -> None:
    declared = {
        (source, label(rule.trigger))
        for table in m.TABLES
        for rule in table.rules
        for source in rule.sources
        if rule.trigger not in (m.PrinterChanged, m.DeviceNotice)
    }
    assert declared == set(EXPECTED)


def test_every_phase_is_reached_by_driving_the_machine_from_boot() -> None:
    boot = m.initial_state(supervisor_pin_sha256=PIN_1234, large_amount_fen=1)
    pin = [press(d) for d in "1234"]
    refunding, _ = run(boot, m.RecoveryDone(), press(Key.REFUND), *pin, press(Key.ENTER))
    results = [
        event
        for n in (1, 2)
        for event in (
            m.PaymentApproved(n, SALE),
            m.PaymentDeclined(n, "x"),
            m.PaymentCancelled(n),
            m.PaymentInDoubt(n, "x"),
            m.PaymentException(n, "x"),
        )
    ]
    events = [
        *EXAMPLES.values(),
        *results,
        press("1"),
        m.CodeScanned("T0001SALE1"),
        m.RecoveryDone((RESOLVED_PAID,)),
    ]
    wrong = (press(Key.REFUND), press("9"), press(Key.ENTER), m.TimerExpired("pin_pause"))
    paused, _ = run(boot, m.RecoveryDone(()), *wrong[:3])
    locked, _ = run(paused, *wrong[3:], *wrong * 3, *wrong[:3])
    seen = {boot.phase, refunding.phase, paused.phase, locked.phase}
    frontier = [locked, paused, boot, refunding]  # the guarded ones last: their IDLE is guarded
    while frontier:
        state = frontier.pop()
        for event in events:
            new, _ = m.step(state, event)
            if new.phase not in seen:
                seen.add(new.phase)
                frontier.append(new)
    assert seen == set(Phase)


def test_keys_and_timers_no_rule_knows_are_ignored() -> None:
    for event in (press("F1"), press("12"), m.TimerExpired("bogus")):
        assert m.step(at(P.ENTERING_AMOUNT), event) == (at(P.ENTERING_AMOUNT), [])


def test_a_table_with_a_wrong_trigger_phase_or_a_clash_fails_when_built() -> None:
    def stay(state: State, sale: Sale, event: object) -> None:
        return None

    with pytest.raises(ValueError, match="not a trigger"):
        Table("bad", Sale, (on(P.IDLE, m.Show, (), stay),))  # an effect, not an event
    with pytest.raises(ValueError, match="not a trigger"):
        Table("bad", Sale, (on(P.IDLE, m.KeyPressed, (), stay),))  # keys are named by Key
    with pytest.raises(ValueError, match="is not a Sale phase"):
        Table("bad", Sale, (key(P.REFUNDING, DIGIT, (), stay),))
    with pytest.raises(ValueError, match="two rules"):
        Table("bad", Sale, (key(P.IDLE, Key.QR, (), stay), key(P.IDLE, Key.QR, (), stay)))


def run(state: State, *events: m.Event) -> tuple[State, list[m.Effect]]:
    effects: list[m.Effect] = []
    for event in events:
        state, effects = m.step(state, event)
    return state, effects


def test_digits_shift_in_fen_wise_and_show_the_amount() -> None:
    state, effects = run(at(P.IDLE), *map(press, "1234"))
    assert state.phase is P.ENTERING_AMOUNT and state.amount_fen == 1234
    assert effects == [m.Show(Screen("请输入金额 Enter amount", 1234))]


def test_backspace_and_clear_edit_the_amount() -> None:
    state, _ = m.step(at(P.ENTERING_AMOUNT), press(Key.BACKSPACE))
    assert state.amount_fen == 123
    state, _ = m.step(state, press(Key.CLEAR))
    assert state.amount_fen == 0


def test_a_tenth_digit_is_refused_and_the_cashier_is_told() -> None:
    state, effects = run(at(P.IDLE), *map(press, "1234567899"))
    assert state.amount_fen == 123456789
    refused = Screen("请输入金额 Enter amount", 123456789, ("最多 at most ¥9,999,999.99",))
    assert effects == [m.Show(refused)]
    state, effects = m.step(state, press(Key.BACKSPACE))
    assert state.amount_fen == 12345678
    assert effects == [m.Show(Screen("请输入金额 Enter amount", 12345678))]


def test_the_point_makes_the_digits_before_it_yuan() -> None:
    state, _ = run(at(P.IDLE), *map(press, "12"), press(Key.POINT), press("5"))
    assert state.amount_fen == 1250
    state, effects = run(state, press("0"), press("1"))
    assert state.amount_fen == 1250
    assert effects == [
        m.Show(Screen("请输入金额 Enter amount", 1250, ("最多两位小数 Two decimals at most",)))
    ]


def test_a_large_amount_is_confirmed_again_in_words() -> None:
    session = replace(SESSION, large_amount_fen=1_000_000)
    state, effects = run(
        State(session, Sale(P.ENTERING_AMOUNT, 1_200_000)), press(Key.ENTER), press(Key.ENTER)
    )
    assert state.phase is P.CONFIRMING_LARGE
    again = ("壹万贰仟元整", "大额请再按 Enter 确认 Large amount: Enter again to confirm")
    assert effects == [m.Show(Screen("请再次确认 Confirm again", 1_200_000, again))]
    state, _ = m.step(state, press(Key.ENTER))
    assert state.phase is P.AWAITING_PAYMENT and state.amount_fen == 1_200_000
    below, _ = run(
        State(session, Sale(P.ENTERING_AMOUNT, 999_999)), press(Key.ENTER), press(Key.ENTER)
    )
    assert below.phase is P.AWAITING_PAYMENT


def test_a_declined_sale_goes_back_to_the_payment_prompt_with_its_amount() -> None:
    declined, _ = m.step(at(P.CHARGING_CODE), m.PaymentDeclined(3, "余额不足 Insufficient balance"))
    state, effects = m.step(declined, m.TimerExpired("result_hold"))
    assert state.phase is P.AWAITING_PAYMENT and state.amount_fen == 1234
    lines = (
        "余额不足 Insufficient balance",
        "请出示付款码 Show your payment code",
        "或请收银员出示收款码 or ask for our QR",
    )
    assert effects == [
        m.Show(Screen("请付款 Please pay", 1234, lines)),
        m.StartTimer("awaiting", "awaiting"),
    ]
    state, effects = m.step(declined, press(Key.ENTER))  # the cashier need not wait
    assert state.phase is P.AWAITING_PAYMENT
    assert effects[0] == m.CancelTimer("result_hold")


def test_a_cancelled_sale_ends_when_its_result_has_been_shown() -> None:
    cancelled, _ = m.step(at(P.CANCELLING), m.PaymentCancelled(3))
    state, _ = m.step(cancelled, m.TimerExpired("result_hold"))
    assert state.phase is P.IDLE


def test_enter_with_zero_amount_does_nothing() -> None:
    state, _ = m.step(at(P.ENTERING_AMOUNT), press(Key.CLEAR))
    assert m.step(state, press(Key.ENTER)) == (state, [])


def test_confirm_starts_the_awaiting_timer_and_asks_to_pay() -> None:
    _, effects = m.step(at(P.CONFIRMING), press(Key.ENTER))
    lines = ("请出示付款码 Show your payment code", "或请收银员出示收款码 or ask for our QR")
    assert effects == [
        m.Show(Screen("请付款 Please pay", 1234, lines)),
        m.StartTimer("awaiting", "awaiting"),
    ]


def test_a_wechat_code_starts_a_new_attempt() -> None:
    new, effects = m.step(at(P.AWAITING_PAYMENT), m.CodeScanned(f" {WECHAT_CODE}\n"))
    assert new.phase is P.CHARGING_CODE
    assert effects == [
        m.CancelTimer("awaiting"),
        m.Show(Screen("正在支付 Charging", 1234, ("请稍候 Please wait",))),
        m.StartCodePayment(4, 1234, WECHAT_CODE),
    ]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("hello", "Not a payment code"),
        ("281234567890123456", "Alipay is not enabled"),
        ("6212345678901234567", "UnionPay QR is not enabled"),
        ("194567890123456789", "Not a payment code"),
    ],
)
def test_other_scans_are_refused_with_a_reason_on_screen(code: str, reason: str) -> None:
    new, effects = m.step(at(P.AWAITING_PAYMENT), m.CodeScanned(code))
    assert new.phase is P.AWAITING_PAYMENT and reason in new.notice
    [show] = effects
    assert isinstance(show, m.Show) and reason in show.screen.lines[0]


def test_qr_key_creates_a_native_order_and_arms_expiry() -> None:
    new, effects = m.step(at(P.AWAITING_PAYMENT), press(Key.QR))
    assert new.phase is P.SHOWING_QR and new.code_url is None
    assert m.StartNativePayment(4, 1234) in effects
    assert m.StartTimer("qr_expiry", "qr_expiry") in effects


def test_qr_ready_puts_the_code_on_screen_once() -> None:
    new, effects = m.step(at(P.SHOWING_QR), m.QrReady(3, "weixin://x"))
    assert new.code_url == "weixin://x"
    assert effects == [
        m.Show(Screen("微信扫码支付 Scan with WeChat", 1234, ("Esc 取消 cancel",), qr="weixin://x"))
    ]
    assert m.step(new, m.QrReady(3, "weixin://y")) == (new, [])


def test_the_customer_typing_a_password_is_shown() -> None:
    _, effects = m.step(at(P.CHARGING_CODE), m.PaymentPending(3))
    assert effects == [
        m.Show(Screen("等待顾客输入密码 Customer entering password", 1234, ("请稍候 Please wait",)))
    ]


@pytest.mark.parametrize("phase", [P.CHARGING_CODE, P.SHOWING_QR, P.CANCELLING, P.IN_DOUBT])
def test_results_of_an_older_attempt_are_ignored(phase: Phase) -> None:
    state = at(phase)
    for stale in (
        m.PaymentApproved(2, SALE),
        m.PaymentDeclined(2, "x"),
        m.PaymentCancelled(2),
        m.PaymentInDoubt(2, "x"),
        m.PaymentException(2, "x"),
        m.QrReady(2, "weixin://old"),
        m.PaymentPending(2),
    ):
        assert m.step(state, stale) == (state, [])


def test_cancelling_a_qr_stops_its_expiry_and_cancels_the_attempt() -> None:
    for event in (press(Key.CANCEL), m.TimerExpired("qr_expiry")):
        new, effects = m.step(at(P.SHOWING_QR), event)
        assert new.phase is P.CANCELLING
        assert effects == [
            m.CancelTimer("qr_expiry"),
            m.Show(Screen("正在取消 Cancelling", 1234, ("请稍候 Please wait",))),
            m.CancelPayment(3),
        ]


def test_a_payment_landing_while_cancelling_is_an_approved_sale() -> None:
    new, effects = m.step(at(P.CANCELLING), m.PaymentApproved(3, SALE))
    assert new.phase is P.PRINTING and new.last_sale == SALE
    assert effects == [
        m.Show(Screen("支付成功 Approved", 1234, ("正在打印 Printing receipt",))),
        m.PrintReceipt(SALE),
    ]


def test_an_approved_qr_stops_its_expiry() -> None:
    _, effects = m.step(at(P.SHOWING_QR), m.PaymentApproved(3, SALE))
    assert effects[0] == m.CancelTimer("qr_expiry")


def test_in_doubt_says_do_not_charge_again_and_still_hears_the_result() -> None:
    state, effects = m.step(at(P.SHOWING_QR), m.PaymentInDoubt(3, "JournalError: disk"))
    title = "支付结果未知 Payment in doubt"
    lines = ("请勿重复收款 Do not charge again", "正在核对 Resolving", "JournalError: disk")
    assert effects == [m.CancelTimer("qr_expiry"), m.Show(Screen(title, 1234, lines))]
    assert state.code_url is None and state.notice == "JournalError: disk"
    state, _ = m.step(state, m.PaymentDeclined(3, "reversed"))
    assert state.phase is P.DECLINED and state.notice == "reversed"


def test_a_contradiction_asks_for_a_supervisor_and_starts_no_timer() -> None:
    _, effects = m.step(at(P.CHARGING_CODE), m.PaymentException(3, "amount.total 1"))
    lines = ("请勿重复收款 Do not charge again", "请联系主管 Call a supervisor", "amount.total 1")
    assert effects == [m.Show(Screen("交易异常 Payment exception", 1234, lines))]


def test_a_cancelled_payment_says_nobody_was_charged() -> None:
    state, effects = m.step(at(P.CANCELLING), m.PaymentCancelled(3))
    assert state.phase is P.CANCELLED and state.notice == ""
    assert effects == [
        m.Show(Screen("已取消 Cancelled", 1234, ("未扣款 Nothing was charged",))),
        m.StartTimer("result_hold", "result_hold"),
    ]


def test_approved_prints_then_holds_then_idles() -> None:
    state, _ = m.step(at(P.CHARGING_CODE), m.PaymentApproved(3, SALE))
    state, effects = m.step(state, m.PrintDone(True))
    assert state.phase is P.APPROVED
    assert effects == [
        m.Show(Screen("支付成功 Approved", 1234, ("请取小票 Please take your receipt",))),
        m.StartTimer("result_hold", "result_hold"),
    ]
    state, effects = m.step(state, m.TimerExpired("result_hold"))
    assert state.phase is P.IDLE and state.amount_fen == 0
    assert effects == [m.CancelTimer("result_hold"), m.Show(Screen("欢迎光临 Welcome"))]


def test_a_print_failure_still_ends_approved_with_a_notice() -> None:
    state, _ = m.step(at(P.CHARGING_CODE), m.PaymentApproved(3, SALE))
    state, effects = m.step(state, m.PrintDone(False, "paper out"))
    assert state.phase is P.APPROVED and state.notice == "paper out"
    lines = ("打印机需要处理 Printer needs attention", "paper out")
    assert effects[0] == m.Show(Screen("支付成功 Approved", 1234, lines))


def test_a_digit_after_a_result_starts_the_next_sale() -> None:
    state, effects = m.step(at(P.DECLINED), press("5"))
    assert state.phase is P.ENTERING_AMOUNT and state.amount_fen == 5
    assert effects == [m.CancelTimer("result_hold"), m.Show(Screen("请输入金额 Enter amount", 5))]


@pytest.mark.parametrize("phase", list(Phase))
def test_printer_news_only_sets_the_notice_in_every_phase(phase: Phase) -> None:
    state = at(phase)
    broken, effects = m.step(state, m.PrinterChanged(False, "缺纸 Paper out"))
    assert effects == [] and broken.mode == state.mode
    assert broken.printer_notice == "缺纸 Paper out"
    assert m.step(broken, m.PrinterChanged(True)) == (state, [])


@pytest.mark.parametrize("phase", list(Phase))
def test_device_news_only_sets_that_devices_notice_in_every_phase(phase: Phase) -> None:
    state = at(phase)
    camera, _ = m.step(state, m.DeviceNotice("camera decode", "failed (KeyError); restarting"))
    both, effects = m.step(camera, m.DeviceNotice("serial scanner", "failed (OSError)"))
    assert effects == [] and both.mode == state.mode
    assert both.device_notices == (
        ("camera decode", "failed (KeyError); restarting"),
        ("serial scanner", "failed (OSError)"),
    )
    again, _ = m.step(both, m.DeviceNotice("camera decode", "failed again"))
    assert again.device_notices[-1] == ("camera decode", "failed again")
    fine, _ = m.step(again, m.DeviceNotice("camera decode", ""))
    assert fine.device_notices == (("serial scanner", "failed (OSError)"),)
    assert m.step(fine, m.DeviceNotice("serial scanner")) == (state, [])


def test_recovery_with_payments_left_for_a_supervisor_says_so_while_idle() -> None:
    state, effects = m.step(m.initial_state(), m.RecoveryDone(attention=1))
    assert state.phase is P.IDLE and "1 笔交易需主管处理" in state.notice
    [show] = effects  # the staff's news, not the customer's
    assert isinstance(show, m.Show) and show.screen == Screen("欢迎光临 Welcome")
    assert show.cashier == Screen("欢迎光临 Welcome", lines=(state.notice,))


def test_recovery_counts_the_rows_it_resolves_on_screen() -> None:
    state, effects = m.step(m.initial_state(), m.RecoveryProgress(2, 3))
    assert state.phase is P.RECOVERING
    assert effects == [
        m.Show(Screen("正在核对交易 Resolving payments 2/3", lines=("请稍候 Please wait",)))
    ]


def test_nothing_in_doubt_goes_straight_to_sales_with_no_summary_and_no_slip() -> None:
    state, effects = m.step(m.initial_state(), m.RecoveryDone())
    assert state.phase is P.IDLE
    assert effects == [m.Show(Screen("欢迎光临 Welcome"))]


def test_the_summary_lists_each_resolved_row_and_enter_starts_sales() -> None:
    rows = (
        m.Resolved("T0001202611261015000001", 1234, m.Resolution.PAID),
        m.Resolved("T0001202611261016000002", 500, m.Resolution.REVERSED),
        m.Resolved("R0001202611261017000003", 300, m.Resolution.REFUNDED),
    )
    state, effects = m.step(m.initial_state(), m.RecoveryDone(rows, attention=1))
    assert state.phase is P.RECOVERED
    summary = Screen(
        "开机核对结果 Resolved at start",
        lines=(
            "15000001 ¥12.34 已收款 Paid",
            "16000002 ¥5.00 已撤销 Reversed",
            "17000003 ¥3.00 已退款 Refunded",
            "按 Enter 确认 Press Enter to go on",
        ),
    )
    assert effects == [m.Show(summary), m.PrintRecoverySlip(rows)]
    assert m.step(state, press(Key.CANCEL)) == (state, [])  # only Enter acknowledges
    idle, effects = m.step(state, press(Key.ENTER))
    assert idle.phase is P.IDLE
    staff = ("1 笔交易需主管处理 payment(s) need a supervisor: see the journal",)
    welcome = Screen("欢迎光临 Welcome")
    assert effects == [m.Show(welcome, cashier=replace(welcome, lines=staff))]


def test_no_slip_prints_when_recovery_moved_no_money() -> None:
    rows = (
        m.Resolved("T0001202611261016000002", 500, m.Resolution.REVERSED),
        m.Resolved("T0001202611261016000003", 800, m.Resolution.NOT_PAID),
        m.Resolved("R0001202611261017000004", 300, m.Resolution.REFUND_UNDER_WAY),
    )
    state, effects = m.step(m.initial_state(), m.RecoveryDone(rows))
    assert state.phase is P.RECOVERED
    assert not any(isinstance(e, m.PrintRecoverySlip) for e in effects)


def test_a_long_summary_fits_the_console_and_says_how_many_more() -> None:
    rows = tuple(
        m.Resolved(f"T000120261126101500{n:04d}", 999_999_999, m.Resolution.PAID_REFUND_OWED)
        for n in range(9)
    )
    _, effects = m.step(m.initial_state(), m.RecoveryDone(rows))
    [show, _slip] = effects
    assert isinstance(show, m.Show)
    lines = show.screen.lines
    assert lines[0] == "15000000 ¥9,999,999.99 应退款 Refund owed"
    assert lines[-2:] == ("另有 3 笔见日志 3 more in the log", "按 Enter 确认 Press Enter to go on")
    assert len(lines) == 8  # six rows, the rest counted, the prompt: the frame keeps to 24 rows
    # the console's customer-display column is 44 wide; a CJK character takes two
    assert all(sum(2 if ord(c) > 0x2E80 else 1 for c in line) <= 44 for line in lines)


def test_r_on_a_refund_result_reprints_that_refund() -> None:
    state = at(P.REFUND_RESULT)
    assert m.step(state, press(Key.REPRINT)) == (state, [m.Reprint("R0001SALE1")])
    assert isinstance(state.mode, Refund)
    failed = m.RefundFinished(m.RefundOutcome.FAILED, reason="JournalError")
    unnumbered = replace(state, mode=replace(state.mode, outcome=failed))
    assert m.step(unnumbered, press(Key.REPRINT)) == (unnumbered, [])


def test_a_refund_records_the_supervisor_who_authorised_it_and_the_reason() -> None:
    state, _ = run(at(P.IDLE), press(Key.REFUND), *map(press, "1234"), press(Key.ENTER))
    state, _ = m.step(state, m.OrderFound("T0001SALE1", 1234))
    _, effects = m.step(state, press(Key.ENTER))
    assert m.StartRefund("T0001SALE1", 1234, "顾客退货 Customer return", "supervisor") in effects


def test_the_refund_key_on_the_amount_screen_picks_the_reason_round_the_list() -> None:
    state = at(P.REFUND_AMOUNT)
    picked = []
    for _ in range(5):
        state, effects = m.step(state, press(Key.REFUND))
        [show] = effects
        assert isinstance(show, m.Show)
        picked.append(show.screen.lines[2])
    assert picked == [
        "原因 商品问题 Faulty goods",
        "原因 收错金额 Wrong amount charged",
        "原因 其他 Other",
        "原因 顾客退货 Customer return",
        "原因 商品问题 Faulty goods",
    ]
    _, effects = m.step(state, press(Key.ENTER))
    assert m.StartRefund("T0001SALE1", 1234, "商品问题 Faulty goods", "") in effects


@pytest.mark.parametrize("phase", [P.IDLE, P.APPROVED])
def test_reprint_asks_for_the_last_receipt_again(phase: Phase) -> None:
    assert m.step(at(phase), press(Key.REPRINT)) == (at(phase), [m.Reprint()])


def test_a_receipt_qr_scanned_while_idle_reprints_that_receipt() -> None:
    state = at(P.IDLE)
    assert m.step(state, m.CodeScanned("T0001261126101500123456\n")) == (
        state,
        [m.Reprint("T0001261126101500123456")],
    )
    assert m.step(state, m.CodeScanned(WECHAT_CODE)) == (state, [])


PLEASE_WAIT = Screen("请稍候 Please wait")


def test_a_refund_needs_the_supervisor_pin_which_only_the_cashier_sees() -> None:
    idle = at(P.IDLE)
    state, effects = run(idle, press(Key.REFUND), *map(press, "1234"))
    assert state.phase is P.SUPERVISOR_PIN and "1234" not in repr(state.mode)
    prompt = Screen("主管密码 Supervisor PIN", lines=("****",))
    assert effects == [m.Show(PLEASE_WAIT, cashier=prompt)]
    state, effects = m.step(state, press(Key.ENTER))
    assert state.phase is P.REFUND_ORDER and state.entry == ""
    order = "扫描小票二维码或输入单号 Scan the receipt QR or type the order no."
    assert effects == [m.Show(Screen(order))]


def test_wrong_pins_pause_the_prompt_longer_each_time_then_lock_it_out() -> None:
    state, _ = m.step(at(P.IDLE), press(Key.REFUND))
    pauses = []
    for tries_left in (4, 3, 2, 1):
        state, effects = run(state, press("9"), press(Key.ENTER))
        assert state.phase is P.SUPERVISOR_WAIT
        [show, pause] = effects
        assert isinstance(pause, m.StartTimer) and pause.name == "pin_pause"
        pauses.append(pause.seconds)
        assert show == m.Show(
            PLEASE_WAIT,
            cashier=Screen(
                "主管密码错误 Wrong supervisor PIN",
                lines=(
                    f"请 {pause.seconds:.0f} 秒后再试 Try again in {pause.seconds:.0f} s",
                    f"锁定前还可试 {tries_left} 次 Tries before lockout: {tries_left}",
                ),
            ),
        )
        assert m.step(state, press("1")) == (state, [])  # no PIN is taken while it pauses
        state, _ = m.step(state, m.TimerExpired("pin_pause"))
        assert state.phase is P.SUPERVISOR_PIN
    assert pauses == [2.0, 4.0, 8.0, 16.0]
    state, effects = run(state, press("9"), press(Key.ENTER))
    assert state.phase is P.SUPERVISOR_LOCKED
    locked = (
        "5 次密码错误 5 wrong PINs in a row",
        "请 15 分钟后再试 Try again in 15 min",
        "Esc 返回 back",
    )
    assert effects == [
        m.Show(PLEASE_WAIT, cashier=Screen("主管密码已锁定 Supervisor PIN locked", lines=locked)),
        m.StartTimer("pin_lockout", "pin_lockout", 60.0),
    ]
    assert m.step(state, press("1")) == (state, [])


def _locked_at_idle() -> State:
    wrong = (press(Key.REFUND), press("9"), press(Key.ENTER), m.TimerExpired("pin_pause"))
    state, _ = run(at(P.IDLE), *wrong * 4, *wrong[:3], press(Key.CANCEL))
    assert state.phase is P.IDLE
    return state


def test_a_lockout_outlives_a_return_to_idle_and_counts_down_whole_minutes() -> None:
    state = _locked_at_idle()
    state, _ = run(state, press("5"))  # the cashier sells meanwhile
    state, effects = m.step(state, m.TimerExpired("pin_lockout"))
    assert state.phase is P.ENTERING_AMOUNT  # nothing on screen changes, the count goes on
    assert effects == [m.StartTimer("pin_lockout", "pin_lockout", 60.0)]
    state, _ = run(state, press(Key.CANCEL), m.TimerExpired("pin_lockout"), press(Key.REFUND))
    assert state.phase is P.SUPERVISOR_LOCKED
    assert "请 13 分钟后再试 Try again in 13 min" in m.render(state).cashier_screen.lines
    state, effects = m.step(state, m.TimerExpired("pin_lockout"))
    assert "请 12 分钟后再试 Try again in 12 min" in m.render(state).cashier_screen.lines
    assert effects[0] == m.render(state)  # the lockout screen redraws with the minutes left
    state, _ = run(state, *[m.TimerExpired("pin_lockout")] * 12)
    assert m.render(state).cashier_screen.lines == ("已解锁 Unlocked: Enter 输入密码 type the PIN",)
    state, effects = m.step(state, m.TimerExpired("pin_lockout"))
    assert (state, effects) == (state, [])  # the count has ended: a stray tick changes nothing
    state, _ = m.step(state, press(Key.ENTER))
    assert state.phase is P.SUPERVISOR_PIN
    lines = ("*", "锁定前还可试 1 次 Tries before lockout: 1")
    assert m.step(state, press("9"))[1] == [
        m.Show(PLEASE_WAIT, cashier=Screen("主管密码 Supervisor PIN", lines=lines))
    ]
    state, _ = run(state, press("9"), press(Key.ENTER))
    assert state.phase is P.SUPERVISOR_LOCKED  # after a lockout each wrong PIN locks it again


def test_leaving_a_pause_starts_it_over_when_the_pin_is_asked_again() -> None:
    state, _ = run(at(P.IDLE), press(Key.REFUND), press("9"), press(Key.ENTER))
    state, effects = m.step(state, press(Key.CANCEL))
    assert state.phase is P.IDLE and effects[0] == m.CancelTimer("pin_pause")
    assert m.render(state) == m.Show(Screen("欢迎光临 Welcome"))  # nothing said to the customer
    state, effects = m.step(state, press(Key.REFUND))
    assert state.phase is P.SUPERVISOR_WAIT
    assert effects[-1] == m.StartTimer("pin_pause", "pin_pause", 2.0)


def test_the_right_pin_forgets_the_wrong_ones_and_enter_alone_is_no_attempt() -> None:
    state, _ = run(at(P.IDLE), press(Key.REFUND), press(Key.ENTER))
    assert state.phase is P.SUPERVISOR_PIN and state.session.pin_guard == PinGuard()
    wrong = (press("9"), press(Key.ENTER), m.TimerExpired("pin_pause"))
    state, _ = run(state, *wrong * 3, *map(press, "1234"), press(Key.ENTER))
    assert state.phase is P.REFUND_ORDER and state.session.pin_guard == PinGuard()


def test_supervisor_prompts_are_never_on_the_customer_display() -> None:
    for phase in (P.SUPERVISOR_PIN, P.SUPERVISOR_WAIT, P.SUPERVISOR_LOCKED):
        shown = m.render(at(phase))
        assert shown.screen == PLEASE_WAIT and "PIN" in shown.cashier_screen.title
    for phase in set(Phase) - set(Supervisor.PHASES):
        assert m.render(at(phase)).cashier is None  # elsewhere both see the same screen


def test_refunds_are_off_without_a_configured_pin() -> None:
    state, _ = m.step(at(P.IDLE, Session()), press(Key.REFUND))
    assert state.phase is P.IDLE and "supervisor_pin_sha256" in state.notice


def test_a_scanned_or_typed_order_is_looked_up() -> None:
    ordering = at(P.REFUND_ORDER)
    assert m.step(ordering, m.CodeScanned(" T0001SALE1\n"))[1] == [m.FindRefundable("T0001SALE1")]
    state, effects = run(ordering, *map(press, "123456"), press(Key.ENTER))
    assert effects == [m.FindRefundable("123456")] and state.entry == ""
    assert m.step(ordering, press(Key.ENTER)) == (ordering, [])  # nothing typed yet


def test_the_full_amount_is_offered_and_a_partial_one_can_be_keyed() -> None:
    state, effects = m.step(at(P.REFUND_ORDER), m.OrderFound("T0001SALE1", 1234))
    assert (state.phase, state.amount_fen, state.refundable_fen) == (P.REFUND_AMOUNT, 1234, 1234)
    lines = (
        "T0001SALE1",
        "最多 at most ¥12.34",
        "原因 顾客退货 Customer return",
        "Enter 确认 confirm · f 换原因 reason",
        "",
    )
    assert effects == [m.Show(Screen("退款金额 Refund amount", 1234, lines))]
    full, effects = m.step(state, press(Key.ENTER))
    refund = m.StartRefund("T0001SALE1", 1234, "顾客退货 Customer return", "")
    assert full.phase is P.REFUNDING and refund in effects
    _, effects = run(state, press("5"), press("0"), press("0"), press(Key.ENTER))
    assert m.StartRefund("T0001SALE1", 500, "顾客退货 Customer return", "") in effects


def test_more_than_refundable_is_refused_on_screen() -> None:
    state, _ = m.step(at(P.REFUND_ORDER), m.OrderFound("T0001SALE1", 1234))
    state, effects = run(state, *map(press, "99999"), press(Key.ENTER))
    assert state.phase is P.REFUND_AMOUNT and "outside" in state.notice
    assert not any(isinstance(e, m.StartRefund) for e in effects)


@pytest.mark.parametrize(
    ("finished", "title", "lines"),
    [
        (
            m.RefundFinished(m.RefundOutcome.REFUNDED, "RT0001R1"),
            "退款成功 Refunded",
            ("退款单号 Refund no. RT0001R1",),
        ),
        (
            m.RefundFinished(m.RefundOutcome.ON_ITS_WAY, "RT0001R1"),
            "退款处理中 Refund on its way",
            (
                "微信已受理, 款项原路退回 WeChat has it: the money goes back as paid",
                "退款单号 Refund no. RT0001R1",
            ),
        ),
        (
            m.RefundFinished(m.RefundOutcome.QUEUED, "RT0001R1", "FREQUENCY_LIMITED"),
            "退款已排队 Refund queued",
            (
                "将自动完成 It finishes by itself",
                "勿重复退款 Do not refund again",
                "原因 Reason: FREQUENCY_LIMITED",
                "退款单号 Refund no. RT0001R1",
            ),
        ),
        (
            m.RefundFinished(m.RefundOutcome.FAILED, "RT0001R1", "NOT_ENOUGH: 余额不足"),
            "退款失败 Refund failed",
            ("原因 Reason: NOT_ENOUGH: 余额不足", "退款单号 Refund no. RT0001R1"),
        ),
        (
            m.RefundFinished(m.RefundOutcome.IN_DOUBT, "RT0001R1"),
            "退款结果未知 Refund in doubt",
            (
                "将自动完成 It finishes by itself",
                "勿重复退款 Do not refund again",
                "退款单号 Refund no. RT0001R1",
            ),
        ),
    ],
)
def test_the_refund_result_is_said_in_words_then_idles(
    finished: m.RefundFinished, title: str, lines: tuple[str, ...]
) -> None:
    state, effects = m.step(at(P.REFUNDING), finished)
    assert state.phase is P.REFUND_RESULT
    assert effects[0] == m.Show(Screen(title, 1234, lines))
    state, _ = m.step(state, m.TimerExpired("result_hold"))
    assert state.phase is P.IDLE and state.amount_fen == 0 and state.refundable_fen == 0


def test_a_digit_on_the_refund_result_starts_a_sale_of_that_digit_only() -> None:
    state, effects = m.step(at(P.REFUND_RESULT), press("8"))
    assert (state.phase, state.amount_fen) == (P.ENTERING_AMOUNT, 8)
    assert effects == [m.CancelTimer("result_hold"), m.Show(Screen("请输入金额 Enter amount", 8))]


def test_every_shown_screen_is_the_render_of_the_new_state() -> None:
    for (phase, trigger), _ in EXPECTED.items():
        new, effects = m.step(at(phase), EXAMPLES[trigger])
        for effect in effects:
            if isinstance(effect, m.Show):
                assert effect == m.render(new)


def test_the_diagram_draws_sub_machines_as_composite_states() -> None:
    diagram = m.mermaid()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> RECOVERING\n")
    for line in (
        "RECOVERING --> Sale : RecoveryDone",
        "Sale --> Tender : CodeScanned",
        "Sale --> Tender : qr",
        "Tender --> Sale : PaymentApproved",
        "Sale --> Supervisor : refund",
        "Supervisor --> Refund : enter",
        "Refund --> Sale : digit",
        "state Tender {",
        "AWAITING_PAYMENT --> [*] : qr",
        "[*] --> SHOWING_QR",
        "SHOWING_QR --> CANCELLING : TimerExpired qr_expiry",
        "REFUND_AMOUNT --> REFUNDING : enter",
    ):
        assert f"    {line}\n" in diagram
    # Mermaid draws no edge between states of two composite states: each block keeps to its own
    blocks = diagram.split("    state ")[1:]
    owners: dict[str, type[ModeBase]] = {
        "Sale": Sale,
        "Tender": Tender,
        "Supervisor": Supervisor,
        "Refund": Refund,
    }
    assert [b.split(" ")[0] for b in blocks] == list(owners)
    for block in blocks:
        name, _, body = block.partition(" {\n")
        for edge in body.split("    }")[0].split("\n"):
            for end in edge.split(" : ")[0].split(" --> ") if edge.strip() else ():
                assert end.strip() == "[*]" or Phase(end.strip()) in owners[name].PHASES


def test_the_readme_diagram_is_current() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{m.mermaid()}```" in readme, (
        "README diagram is stale: run `pos-terminal diagram`"
    )


def _python(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_the_machine_imports_only_the_standard_library_and_pure_modules() -> None:
    found = _python(
        "-c",
        "import sys\n"
        "before = set(sys.modules)\n"
        "import pos_terminal.machine\n"
        "print(' '.join(sorted(n for n in set(sys.modules) - before"
        " if n.split('.')[0] not in sys.stdlib_module_names)))",
    )
    outside = {n for n in found.split() if not n.startswith("pos_terminal.machine")}
    pure = {"money", "ports", "errors", "config_fields", "payment_codes", "retry"}
    assert outside == {"pos_terminal"} | {f"pos_terminal.{name}" for name in pure}


def test_a_sale_and_a_refund_run_the_same_under_python_dash_o() -> None:
    script = (
        "import hashlib\n"
        "from pos_terminal import machine as m\n"
        "s = m.initial_state(supervisor_pin_sha256=hashlib.sha256(b'1234').hexdigest())\n"
        "sale = m.ApprovedSale('T1', 'W1', 'wechat_code', 500, None)\n"
        "events = [m.RecoveryDone(), *map(m.KeyPressed, '500'), m.KeyPressed('enter'),"
        " m.KeyPressed('enter'), m.CodeScanned('" + WECHAT_CODE + "'),"
        " m.PaymentApproved(1, sale), m.PrintDone(True), m.KeyPressed('cancel'),"
        " m.KeyPressed('refund'), *map(m.KeyPressed, '1234'), m.KeyPressed('enter'),"
        " m.OrderFound('T1', 500), m.KeyPressed('enter')]\n"
        "for e in events:\n"
        "    s, fx = m.step(s, e)\n"
        "print(s.phase, fx[-1])\n"
    )
    assert _python("-O", "-c", script) == (
        "REFUNDING StartRefund(out_trade_no='T1', amount_fen=500,"
        " reason='顾客退货 Customer return', authorised_by='supervisor')"
    )


_ANY_EVENT = st.sampled_from(
    [
        *EXAMPLES.values(),
        *(press(k) for k in (*"0123456789", *Key)),
        m.CodeScanned("T0001SALE1"),
        m.CodeScanned("hello"),
        m.PrintDone(False, "paper out"),
        m.RefundFinished(m.RefundOutcome.IN_DOUBT, "RT0001R2"),
        m.PrinterChanged(False, "缺纸 Paper out"),
        m.DeviceNotice("camera decode", "failed"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ANY_EVENT, st.integers(min_value=0, max_value=3)), max_size=60))
def test_any_sequence_keeps_the_screen_and_the_attempts_straight(
    script: list[tuple[m.Event, int]],
) -> None:
    """Each result is for the current attempt or one `shift` attempts older; from AWAITING."""
    state = at(P.AWAITING_PAYMENT)
    started: list[int] = []
    for event, shift in script:
        if isinstance(event, m.PaymentApproved | m.PaymentDeclined | m.PaymentCancelled):
            event = replace(event, attempt=state.session.attempt - shift)
        before = state
        state, effects = m.step(state, event)
        for effect in effects:
            if isinstance(effect, m.Show):
                assert effect == m.render(state)
            if isinstance(effect, m.StartCodePayment | m.StartNativePayment):
                started.append(effect.attempt)
        late = shift and isinstance(event, m.PaymentApproved | m.PaymentDeclined)
        if late and before.phase in (P.CHARGING_CODE, P.SHOWING_QR, P.CANCELLING, P.IN_DOUBT):
            assert (state, effects) == (before, [])  # a late answer changes nothing
        assert 0 <= state.amount_fen < 10**9
    assert started == sorted(set(started))  # each attempt is started once, in order


def test_a_refund_amount_may_be_keyed_with_the_point() -> None:
    state, _ = run(at(P.REFUND_AMOUNT), press("5"), press(Key.POINT), press("5"))
    assert state.phase is P.REFUND_AMOUNT and state.refundable_fen == 1234
    assert isinstance(state.mode, Refund) and state.mode.refund_fen == 550
