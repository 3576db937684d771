"""The pure HID decoder, fed synthetic evdev InputEvents (no device needed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from drivers.hid_decode import (
    EV_KEY,
    Char,
    KeyState,
    LineState,
    Named,
    Token,
    feed_line,
    translate,
)

try:
    from evdev import InputEvent
except ImportError:  # evdev is optional (built from source); the decoder does not need it

    @dataclass(frozen=True)
    class InputEvent:  # type: ignore[no-redef]
        sec: int
        usec: int
        type: int
        code: int
        value: int


SHIFT, CTRL, ALT, CAPS, NUMLOCK, ENTER, KPENTER = 42, 29, 56, 58, 69, 28, 96
CODES = (
    {c: i for i, c in enumerate("1234567890", start=2)}
    | {
        c: code
        for c, code in zip(
            "qwertyuiopasdfghjklzxcvbnm",
            (*range(16, 26), *range(30, 39), *range(44, 51)),
            strict=True,
        )
    }
    | {"]": 27, "-": 12, "@": 3}
)
KP = {"0": 82, "1": 79, "2": 80, "3": 81, "4": 75, "5": 76, "6": 77, "7": 71, "8": 72, "9": 73}


class Keyboard:
    """Builds timed key events the way a scanner sends them (1 ms apart by default)."""

    def __init__(self, gap_s: float = 0.001) -> None:
        self.t = 1000.0
        self.gap_s = gap_s

    def ev(self, code: int, value: int) -> InputEvent:
        self.t += self.gap_s
        return InputEvent(int(self.t), round((self.t % 1) * 1e6), EV_KEY, code, value)

    def tap(self, code: int) -> list[InputEvent]:
        return [self.ev(code, 1), self.ev(code, 0)]

    def hold(self, modifier: int, codes: Iterable[int]) -> list[InputEvent]:
        inner = [e for c in codes for e in self.tap(c)]
        return [self.ev(modifier, 1), *inner, self.ev(modifier, 0)]

    def type(self, text: str) -> list[InputEvent]:
        out: list[InputEvent] = []
        for ch in text:
            if ch.isupper():
                out += self.hold(SHIFT, [CODES[ch.lower()]])
            else:
                out += self.tap(CODES[ch])
        return out

    def pause(self, s: float) -> None:
        self.t += s


def tokens(events: Iterable[InputEvent]) -> list[Token]:
    state, out = KeyState(), []
    for e in events:
        state, tok = translate(state, e)
        if tok is not None:
            out.append(tok)
    return out


def lines(events: Iterable[InputEvent], timeout_s: float = 0.05) -> Iterator[str]:
    state = LineState()
    for e in events:
        state, line = feed_line(state, e, timeout_s)
        if line is not None:
            yield line


def test_a_scanner_burst_ended_by_enter_is_one_line() -> None:
    kb = Keyboard()
    assert list(lines([*kb.type("134567890123456789"), *kb.tap(ENTER)])) == ["134567890123456789"]


def test_shift_gives_capitals_and_symbols() -> None:
    kb = Keyboard()
    events = [*kb.type("Ab"), *kb.hold(SHIFT, [CODES["1"], CODES["-"]])]
    assert tokens(events) == [Char("A"), Char("b"), Char("!"), Char("_")]


def test_caps_lock_inverts_shift_for_letters_only() -> None:
    kb = Keyboard()
    events = [
        *kb.tap(CAPS),
        *kb.tap(CODES["a"]),
        *kb.hold(SHIFT, [CODES["a"]]),
        *kb.tap(CODES["1"]),
    ]
    assert tokens(events) == [Char("A"), Char("a"), Char("1")]


def test_numpad_digits_follow_numlock() -> None:
    kb = Keyboard()
    on = [*kb.tap(KP["5"]), *kb.tap(83)]
    off = [*kb.tap(NUMLOCK), *kb.tap(KP["5"]), *kb.tap(KP["1"]), *kb.tap(83)]
    assert tokens(on) == [Char("5"), Char(".")]
    assert tokens(off) == [Named("kp5"), Named("end"), Named("delete")]


def test_alt_numpad_sequence_types_one_character() -> None:
    kb = Keyboard()
    events = kb.hold(ALT, [KP["6"], KP["5"]]) + kb.hold(ALT, [KP["0"], KP["2"], KP["9"]])
    assert tokens(events) == [Char("A"), Char("\x1d")]


def test_alt_numpad_above_127_uses_the_windows_code_pages() -> None:
    kb = Keyboard()
    ansi = kb.hold(ALT, [KP["0"], KP["1"], KP["6"], KP["5"]])  # cp1252 0xA5 = ¥
    oem = kb.hold(ALT, [KP["1"], KP["5"], KP["7"]])  # cp437 0x9D = ¥
    assert tokens(ansi + oem) == [Char("¥"), Char("¥")]


def test_ctrl_letters_and_brackets_give_control_characters() -> None:
    kb = Keyboard()
    events = kb.hold(CTRL, [CODES["]"], CODES["d"]])
    assert tokens(events) == [Char("\x1d"), Char("\x04")]


def test_a_gs1_code_with_group_separators_survives_as_one_line() -> None:
    kb = Keyboard()
    events = [*kb.type("01"), *kb.hold(CTRL, [CODES["]"]]), *kb.type("10"), *kb.tap(ENTER)]
    assert list(lines(events)) == ["01\x1d10"]


def test_keypad_enter_also_ends_a_line() -> None:
    kb = Keyboard()
    assert list(lines([*kb.tap(KP["4"]), *kb.tap(KP["2"]), *kb.tap(KPENTER)])) == ["42"]


def test_a_partial_burst_is_dropped_after_the_inter_key_timeout() -> None:
    kb = Keyboard()
    events = kb.type("1345")
    kb.pause(0.2)
    events += [*kb.type("134567890123456789"), *kb.tap(ENTER)]
    assert list(lines(events)) == ["134567890123456789"]


def test_human_typing_never_becomes_a_line() -> None:
    kb = Keyboard(gap_s=0.12)
    assert list(lines([*kb.type("134567890123456789"), *kb.tap(ENTER)])) == []


def test_autorepeat_and_key_up_type_nothing() -> None:
    kb = Keyboard()
    assert tokens([kb.ev(CODES["7"], 1), kb.ev(CODES["7"], 2), kb.ev(CODES["7"], 0)]) == [Char("7")]


def test_enter_alone_and_non_key_events_give_no_line() -> None:
    kb = Keyboard()
    syn = InputEvent(1000, 0, 0, 0, 0)
    assert list(lines([syn, *kb.tap(ENTER), syn])) == []


@pytest.mark.parametrize("code", [0, 3, 240, 600, 0xFFFF])
def test_unknown_keys_are_ignored(code: int) -> None:
    kb = Keyboard()
    assert tokens(kb.tap(code)) == ([Char("2")] if code == 3 else [])


# ---------------------------------------------------------------------------- the evdev drivers


def test_the_hid_scanner_posts_each_code_once_within_the_repeat_window() -> None:
    from drivers.hid_scanner import HidScanner, HidScannerConfig
    from pos_terminal.ports import CodeRead

    scanner = HidScanner(HidScannerConfig(device="/dev/null"), clock=lambda: 0.0)
    posted: list[object] = []
    scanner._sink = posted.append  # as open() would, without a device
    kb = Keyboard()
    for _ in range(2):
        for event in [*kb.type("134567890123456789"), *kb.tap(ENTER)]:
            scanner.feed(event)
    assert posted == [CodeRead("134567890123456789")]


def test_the_hid_keypad_maps_numpad_keys_to_sale_keys_whatever_numlock_says() -> None:
    from drivers.hid_keypad import HidKeypad, HidKeypadConfig
    from pos_terminal.ports import Key, KeyPress

    keypad = HidKeypad(HidKeypadConfig(device="/dev/null"))
    posted: list[object] = []
    keypad._sink = posted.append
    kb = Keyboard()
    for event in [*kb.tap(KP["1"]), *kb.tap(NUMLOCK), *kb.tap(KP["2"]), *kb.tap(KPENTER),
                  *kb.tap(14), *kb.tap(78), *kb.tap(74)]:  # fmt: skip
        keypad.feed(event)
    assert posted == [
        KeyPress("1"), KeyPress("2"), KeyPress(Key.ENTER), KeyPress(Key.BACKSPACE),
        KeyPress(Key.QR), KeyPress(Key.CANCEL),
    ]  # fmt: skip


@pytest.mark.anyio
async def test_a_missing_hid_device_is_a_device_error_naming_the_path() -> None:
    pytest.importorskip("evdev")
    from drivers.hid_scanner import HidScanner, HidScannerConfig
    from pos_terminal.errors import DeviceError

    with pytest.raises(DeviceError, match="/dev/input/none"):
        await HidScanner(HidScannerConfig(device="/dev/input/none")).open(lambda e: None)


def test_without_evdev_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from drivers.hid_scanner import import_evdev
    from pos_terminal.errors import DeviceError

    monkeypatch.setitem(sys.modules, "evdev", None)
    with pytest.raises(DeviceError, match="pos-terminal\\[hid\\]"):
        import_evdev()
