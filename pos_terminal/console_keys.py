"""The laptop keyboard as bytes from a terminal, cut into keys: escape sequences stay whole.

Function keys, arrows and Alt-combinations arrive as sequences that begin with Esc (ECMA-48 CSI
`ESC [ params final`, SS3 `ESC O x`, the Linux console's `ESC [ [ x`, Alt as `ESC key`). Only an
Esc that nothing follows within ESC_TIMEOUT_S is the Esc key: a terminal writes a sequence whole,
so its bytes follow each other at once (also when they reach us in pieces).
"""

from __future__ import annotations

import codecs

ESC = "\x1b"
ESC_TIMEOUT_S = 0.1  # after a trailing Esc (or a sequence cut short): the Esc key, or garbage


class KeyDecoder:
    """Feed raw bytes in, get keys out: one character, or one whole escape sequence, each.

    A lone Esc is only returned by `timeout()`, called when no byte came for ESC_TIMEOUT_S after
    `feed` left input `pending`. An unfinished sequence is returned whole by `timeout()` too, so
    that it is ignored rather than read as the keys it is made of.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""

    @property
    def pending(self) -> bool:
        """True while the end of the input may be the start of a sequence."""
        return bool(self._rest)

    def feed(self, data: bytes) -> list[str]:
        keys, self._rest = split_keys(self._rest + self._utf8.decode(data))
        return keys

    def timeout(self) -> list[str]:
        rest, self._rest = self._rest, ""
        if not rest:
            return []
        held = self._utf8.decode(b"", final=True)  # bytes of a character cut short after it
        return [rest + held]  # a lone Esc; with anything after it, a key to ignore


def split_keys(text: str) -> tuple[list[str], str]:
    """Keys in `text`, and the unfinished sequence at its end ("" when there is none)."""
    keys: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != ESC:
            keys.append(text[i])
            i += 1
            continue
        end = _sequence_end(text, i)
        if end is None:
            return keys, text[i:]
        keys.append(text[i:end])
        i = end
    return keys, ""


def _sequence_end(text: str, start: int) -> int | None:
    """Where the sequence beginning with the Esc at `start` ends; None when `text` ends first."""
    i = start + 1
    if i == len(text):
        return None
    lead = text[i]
    if lead == ESC:  # Alt with a key that is itself a sequence (Alt-Up: ESC ESC [ A), or Alt-Esc
        return _sequence_end(text, i)
    if lead == "O":  # SS3: F1-F4, keypad keys in application mode
        if i + 1 == len(text):
            return None
        return i + 2 if 0x20 <= ord(text[i + 1]) <= 0x7E else i + 1  # else it was Alt-O
    if lead != "[":  # Alt + key
        return i + 1
    i += 1
    if i < len(text) and text[i] == "[":  # Linux console F1-F5: ESC [ [ A..E
        return i + 2 if i + 1 < len(text) else None
    while i < len(text):
        code = ord(text[i])
        if 0x40 <= code <= 0x7E:  # final byte
            return i + 1
        if not 0x20 <= code <= 0x3F:  # not a parameter or intermediate byte: cut short here
            return i
        i += 1
    return None
