"""What the customer and the cashier see, drawn from the state alone: the same screen, except
for a supervisor's prompts, which are the cashier's while the customer sees WAIT_SCREEN."""

from __future__ import annotations

from pos_terminal import money
from pos_terminal.machine.effects import Show
from pos_terminal.machine.events import RefundOutcome, Resolution, Resolved
from pos_terminal.machine.state import (
    Booting,
    Phase,
    Refund,
    Sale,
    State,
    Supervisor,
    Tender,
)
from pos_terminal.machine.supervisor import pause_after, tries_left
from pos_terminal.ports import Screen

PIN_SCREEN = "主管密码 Supervisor PIN"
WRONG_PIN = "主管密码错误 Wrong supervisor PIN"
PIN_LOCKED = "主管密码已锁定 Supervisor PIN locked"
ORDER_SCREEN = "扫描小票二维码或输入单号 Scan the receipt QR or type the order no."
WAIT = "请稍候 Please wait"
WAIT_SCREEN = Screen(WAIT)  # the customer's, while the cashier sees a supervisor's prompt
DO_NOT_CHARGE_AGAIN = "请勿重复收款 Do not charge again"
DO_NOT_REFUND_AGAIN = "勿重复退款 Do not refund again"
_REFUND_RESULTS = {  # title, and what it means for the cashier
    RefundOutcome.REFUNDED: ("退款成功 Refunded", ()),
    RefundOutcome.ON_ITS_WAY: (
        "退款处理中 Refund on its way",
        ("微信已受理, 款项原路退回 WeChat has it: the money goes back as paid",),
    ),
    RefundOutcome.QUEUED: (
        "退款已排队 Refund queued",
        ("将自动完成 It finishes by itself", DO_NOT_REFUND_AGAIN),
    ),
    RefundOutcome.FAILED: ("退款失败 Refund failed", ()),
    RefundOutcome.IN_DOUBT: (
        "退款结果未知 Refund in doubt",
        ("将自动完成 It finishes by itself", DO_NOT_REFUND_AGAIN),
    ),
}
RESOLVING = "正在核对交易 Resolving payments"
RESOLVED_TITLE = "开机核对结果 Resolved at start"
ACKNOWLEDGE = "按 Enter 确认 Press Enter to go on"
SUMMARY_ROWS = 6  # rows listed on the summary: it fits the console's 80x24 with the help
NUMBER_DIGITS = 8  # an order or refund number is shown by its last digits, as typed for refunds
RESOLUTION_WORDS = {
    Resolution.PAID: "已收款 Paid",
    Resolution.PAID_REFUND_OWED: "应退款 Refund owed",
    Resolution.NOT_PAID: "未收款 Not paid",
    Resolution.REVERSED: "已撤销 Reversed",
    Resolution.EXCEPTION: "异常 Exception",
    Resolution.REFUNDED: "已退款 Refunded",
    Resolution.REFUND_UNDER_WAY: "退款处理中 Refunding",
    Resolution.NOT_REFUNDED: "未退款 Not refunded",
}


def idle_screen(notice: str = "") -> Screen:
    return Screen("欢迎光临 Welcome", lines=(notice,) if notice else ())


def amount_screen(fen: int, notice: str = "") -> Screen:
    return Screen("请输入金额 Enter amount", fen, (notice,) if notice else ())


def render(state: State) -> Show:
    """What the customer and the cashier see in `state`."""
    match state.mode:
        case Booting() as booting:
            return Show(_booting(booting))
        case Sale(phase=Phase.IDLE, notice=notice) if notice:  # for staff: not the customer's
            return Show(idle_screen(), cashier=idle_screen(notice))
        case Sale() as sale:
            return Show(_sale(state, sale))
        case Tender() as tender:
            return Show(_tender(tender))
        case Supervisor() as asking:
            return Show(WAIT_SCREEN, cashier=_supervisor(state, asking))
        case Refund() as refund:
            return Show(_refund(refund))


def _supervisor(state: State, asking: Supervisor) -> Screen:
    guard = state.session.pin_guard
    left = tries_left(guard)
    tries = f"锁定前还可试 {left} 次 Tries before lockout: {left}"
    match asking.phase:
        case Phase.SUPERVISOR_PIN:
            typed = ("*" * len(asking.pin),) if asking.pin else ()
            return Screen(PIN_SCREEN, lines=(*typed, tries) if guard.wrong else typed)
        case Phase.SUPERVISOR_WAIT:
            pause = f"{pause_after(guard.wrong):.0f}"
            return Screen(WRONG_PIN, lines=(f"请 {pause} 秒后再试 Try again in {pause} s", tries))
        case _:  # Phase.SUPERVISOR_LOCKED
            minutes = guard.locked_minutes
            if not minutes:
                return Screen(PIN_LOCKED, lines=("已解锁 Unlocked: Enter 输入密码 type the PIN",))
            wrong = f"{guard.wrong} 次密码错误 {guard.wrong} wrong PINs in a row"
            later = f"请 {minutes} 分钟后再试 Try again in {minutes} min"
            return Screen(PIN_LOCKED, lines=(wrong, later, "Esc 返回 back"))


def _booting(booting: Booting) -> Screen:
    if booting.phase is Phase.RECOVERING:
        if not booting.total:
            return Screen(RESOLVING)
        return Screen(f"{RESOLVING} {booting.position}/{booting.total}", lines=(WAIT,))
    lines = [summary_line(r) for r in booting.rows[:SUMMARY_ROWS]]
    hidden = len(booting.rows) - SUMMARY_ROWS
    if hidden > 0:
        lines.append(f"另有 {hidden} 笔见日志 {hidden} more in the log")
    return Screen(RESOLVED_TITLE, lines=(*lines, ACKNOWLEDGE))


def summary_line(row: Resolved) -> str:
    """One resolved row in a line: the number's last digits, the amount, how it ended."""
    number = row.number[-NUMBER_DIGITS:]
    return f"{number} {money.format_yuan(row.amount_fen)} {RESOLUTION_WORDS[row.resolution]}"


def _sale(state: State, sale: Sale) -> Screen:
    fen = sale.amount_fen
    match sale.phase:
        case Phase.IDLE:
            return idle_screen(sale.notice)
        case Phase.ENTERING_AMOUNT:
            return amount_screen(fen, sale.notice)
        case Phase.CONFIRMING:
            return Screen("请确认金额 Confirm amount", fen, ("Enter 确认 confirm",))
        case Phase.CONFIRMING_LARGE:
            again = "大额请再按 Enter 确认 Large amount: Enter again to confirm"
            return Screen("请再次确认 Confirm again", fen, (money.in_words(fen), again))
        case Phase.AWAITING_PAYMENT:
            lines = (
                "请出示付款码 Show your payment code",
                "或请收银员出示收款码 or ask for our QR",
            )
            return Screen("请付款 Please pay", fen, (sale.notice, *lines) if sale.notice else lines)
        case Phase.PRINTING | Phase.APPROVED:
            paid = state.last_sale.amount_fen if state.last_sale else None
            if sale.phase is Phase.PRINTING:
                return Screen("支付成功 Approved", paid, ("正在打印 Printing receipt",))
            if sale.printed:
                return Screen("支付成功 Approved", paid, ("请取小票 Please take your receipt",))
            return Screen(
                "支付成功 Approved", paid, ("打印机需要处理 Printer needs attention", sale.notice)
            )
        case Phase.CANCELLED:
            return Screen("已取消 Cancelled", fen, ("未扣款 Nothing was charged",))
        case Phase.DECLINED:
            return Screen("支付失败 Declined", fen, (sale.notice,))
        case _:  # Phase.EXCEPTION
            advice = (DO_NOT_CHARGE_AGAIN, "请联系主管 Call a supervisor", sale.notice)
            return Screen("交易异常 Payment exception", fen, advice)


def _tender(tender: Tender) -> Screen:
    fen = tender.amount_fen
    if tender.phase is Phase.CANCELLING:
        return Screen("正在取消 Cancelling", fen, (WAIT,))
    if tender.phase is Phase.IN_DOUBT:
        advice = (DO_NOT_CHARGE_AGAIN, "正在核对 Resolving", tender.notice)
        return Screen("支付结果未知 Payment in doubt", fen, advice)
    return tender.kind.screen(tender)


def _refund(refund: Refund) -> Screen:
    fen = refund.refund_fen
    match refund.phase:
        case Phase.REFUND_ORDER:
            entry, notice = refund.order_entry, refund.notice
            return Screen(ORDER_SCREEN, lines=(entry, notice) if entry or notice else ())
        case Phase.REFUND_AMOUNT:
            limit = money.format_yuan(refund.refundable_fen)
            lines = (
                refund.out_trade_no,
                f"最多 at most {limit}",
                f"原因 {refund.reason}",
                "Enter 确认 confirm · f 换原因 reason",
            )
            return Screen("退款金额 Refund amount", fen, (*lines, refund.notice))
        case Phase.REFUNDING:
            return Screen("正在退款 Refunding", fen, (WAIT,))
        case _:  # Phase.REFUND_RESULT
            return _refund_result(refund)


def _refund_result(refund: Refund) -> Screen:
    ended = refund.outcome
    title, meaning = _REFUND_RESULTS[ended.outcome]
    reason = (f"原因 Reason: {ended.reason}",) if ended.reason else ()
    number = (f"退款单号 Refund no. {ended.refund_no}",) if ended.refund_no else ()
    return Screen(title, refund.refund_fen, (*meaning, *reason, *number))
