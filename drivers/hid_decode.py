"""Pure decoding of evdev key events (US layout) into characters, named keys and scanned lines.

No I/O and no clock: time comes from the events' own timestamps, so tests feed synthetic
`evdev.InputEvent`s (or anything with `type`, `code`, `value`, `sec`, `usec`). Shared by the
HID scanner (lines ended by Enter) and the cashier keypad (one token per key press).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

EV_KEY = 1
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

# Linux input-event-codes.h
KEY_ESC, KEY_BACKSPACE, KEY_TAB, KEY_ENTER = 1, 14, 15, 28
KEY_LEFTCTRL, KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTALT = 29, 42, 54, 56
KEY_CAPSLOCK, KEY_NUMLOCK, KEY_KPENTER, KEY_RIGHTCTRL, KEY_RIGHTALT = 58, 69, 96, 97, 100
KEY_DELETE = 111

_SHIFTS = {KEY_LEFTSHIFT, KEY_RIGHTSHIFT}
_CTRLS = {KEY_LEFTCTRL, KEY_RIGHTCTRL}
_ALTS = {KEY_LEFTALT, KEY_RIGHTALT}

# code -> (plain, shifted) for the US layout's printable keys
_US: dict[int, tuple[str, str]] = {
    **dict(zip(range(2, 12), zip("1234567890", "!@#$%^&*()", strict=True), strict=True)),
    12: ("-", "_"), 13: ("=", "+"), 15: ("\t", "\t"), 26: ("[", "{"), 27: ("]", "}"),
    39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"), 43: ("\\", "|"), 51: (",", "<"),
    52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
}  # fmt: skip
_LETTERS = dict(zip((*range(16, 26), *range(30, 39), *range(44, 51)),
                    "qwertyuiopasdfghjklzxcvbnm", strict=True))  # fmt: skip

# numpad: code -> (NumLock on, NumLock off); characters or key names
_KP_DIGITS = {
    82: "0",
    79: "1",
    80: "2",
    81: "3",
    75: "4",
    76: "5",
    77: "6",
    71: "7",
    72: "8",
    73: "9",
}
_KP_NAV = {82: "insert", 79: "end", 80: "down", 81: "pagedown", 75: "left", 76: "kp5",
           77: "right", 71: "home", 72: "up", 73: "pageup"}  # fmt: skip
_KP_OPS = {55: "*", 74: "-", 78: "+", 98: "/", 117: "=", 121: ","}
KEY_KPDOT = 83

_NAMED = {KEY_ESC: "esc", KEY_BACKSPACE: "backspace", KEY_ENTER: "enter", KEY_KPENTER: "kpenter",
          KEY_DELETE: "delete", 102: "home", 107: "end", 103: "up", 108: "down", 105: "left",
          106: "right"}  # fmt: skip
# Ctrl+key -> ASCII control character (GS = Ctrl+], the GS1 separator scanners send)
_CTRL_PUNCT = {"[": "\x1b", "\\": "\x1c", "]": "\x1d", "@": "\x00", "^": "\x1e", "_": "\x1f"}

TERMINATORS = frozenset({"enter", "kpenter"})


class RawEvent(Protocol):
    """What evdev.InputEvent provides."""

    sec: int
    usec: int
    type: int
    code: int
    value: int


@dataclass(frozen=True)
class Char:
    text: str


@dataclass(frozen=True)
class Named:
    name: str  # "enter", "kpenter", "backspace", "esc", "delete", "end" ...


Token = Char | Named


@dataclass(frozen=True)
class KeyState:
    """Modifier and lock state; NumLock starts on (most keypads and scanners expect it)."""

    shift: frozenset[int] = frozenset()
    ctrl: frozenset[int] = frozenset()
    alt: frozenset[int] = frozenset()
    caps_lock: bool = False
    num_lock: bool = True
    alt_digits: str = ""  # Alt+numpad sequence typed so far


def translate(state: KeyState, event: RawEvent) -> tuple[KeyState, Token | None]:
    """One event -> new state and the token a key press produced (None for most events)."""
    if event.type != EV_KEY:
        return state, None
    code, value = event.code, event.value
    for group, attr in ((_SHIFTS, "shift"), (_CTRLS, "ctrl"), (_ALTS, "alt")):
        if code in group:
            held = getattr(state, attr)
            held = held | {code} if value != KEY_UP else held - {code}
            new = replace(state, **{attr: held})
            if attr == "alt" and not held and state.alt_digits:
                return replace(new, alt_digits=""), _alt_code(state.alt_digits)
            return new, None
    if value != KEY_DOWN:  # key up, autorepeat: a held key types once
        return state, None
    if code == KEY_CAPSLOCK:
        return replace(state, caps_lock=not state.caps_lock), None
    if code == KEY_NUMLOCK:
        return replace(state, num_lock=not state.num_lock), None
    if state.alt:
        digit = _KP_DIGITS.get(code)
        if digit is not None and len(state.alt_digits) < 4:
            return replace(state, alt_digits=state.alt_digits + digit), None
        return state, None  # Alt+other keys are menu shortcuts, not input
    return state, _press(state, code)


def _press(state: KeyState, code: int) -> Token | None:
    shifted = bool(state.shift)
    if code in _KP_DIGITS:
        return Char(_KP_DIGITS[code]) if state.num_lock else Named(_KP_NAV[code])
    if code == KEY_KPDOT:
        return Char(".") if state.num_lock else Named("delete")
    if code in _KP_OPS:
        return Char(_KP_OPS[code])
    if code in _NAMED:
        return Named(_NAMED[code])
    if code in _LETTERS:
        letter = _LETTERS[code]
        if state.ctrl:
            return Char(chr(ord(letter) - ord("a") + 1))
        return Char(letter.upper() if shifted != state.caps_lock else letter)
    if code in _US:
        char = _US[code][1 if shifted else 0]
        if state.ctrl:
            return Char(_CTRL_PUNCT[char]) if char in _CTRL_PUNCT else None
        return Char(char)
    return None


def _alt_code(digits: str) -> Token | None:
    """Alt+numpad: a leading 0 means the Windows ANSI code page, otherwise the OEM one (cp437)."""
    value = int(digits)
    if value > 255:
        return None
    if value < 128:
        return Char(chr(value))
    return Char(bytes([value]).decode("cp1252" if digits.startswith("0") else "cp437", "replace"))


# ---------------------------------------------------------------------------- scanner lines


@dataclass(frozen=True)
class LineState:
    """A scanner burst being assembled."""

    keys: KeyState = KeyState()
    buffer: str = ""
    last_key_at: float | None = None
    dropped: int = 0  # partial bursts thrown away (for diagnostics)


MAX_LINE = 512


def feed_line(
    state: LineState, event: RawEvent, inter_key_timeout_s: float
) -> tuple[LineState, str | None]:
    """One event -> new state and a completed line (Enter-terminated burst) or None.

    A gap longer than `inter_key_timeout_s` between key events drops the partial burst (a
    human typing, or a scan cut short), so only a whole, fast burst ever becomes a line.
    """
    if event.type != EV_KEY:
        return state, None
    now = event.sec + event.usec / 1e6
    last = state.last_key_at
    if state.buffer and last is not None and now - last > inter_key_timeout_s:
        state = replace(state, buffer="", dropped=state.dropped + 1)
    keys, token = translate(state.keys, event)
    state = replace(state, keys=keys, last_key_at=now)
    if isinstance(token, Named) and token.name in TERMINATORS:
        line = state.buffer
        return replace(state, buffer=""), (line or None)
    if isinstance(token, Char):
        buffer = state.buffer + token.text
        if len(buffer) > MAX_LINE:
            return replace(state, buffer="", dropped=state.dropped + 1), None
        return replace(state, buffer=buffer), None
    return state, None
