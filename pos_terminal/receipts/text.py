"""Receipt text: East Asian column widths, wrapping, and our own GB18030/GBK encoder."""

from __future__ import annotations

import logging
import unicodedata

log = logging.getLogger(__name__)

ENCODINGS = ("gb18030", "gbk")
_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_PRINTED = 2  # the receipt counts ambiguous-width characters as a GB printer prints them


def char_width(char: str, *, ambiguous: int = 1) -> int:
    """Columns one character takes: wide/full-width 2, combining 0, ambiguous as given, else 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
        return 0
    east_asian = unicodedata.east_asian_width(char)
    if east_asian in ("W", "F"):
        return 2
    return ambiguous if east_asian == "A" else 1


def display_width(text: str, *, ambiguous: int = 1) -> int:
    """Columns `text` takes on a fixed-pitch device (terminal, receipt printer).

    `ambiguous=2` suits GB printers: '·', '—', '°', 'é', box drawing are double-byte in GBK and
    print with the 24-dot Hanzi font, so they take two columns on paper.
    """
    return sum(char_width(char, ambiguous=ambiguous) for char in text)


def printed_width(text: str) -> int:
    """Columns `text` takes on the receipt printer (ambiguous characters count 2)."""
    return display_width(text, ambiguous=_PRINTED)


def wrap_columns(text: str, columns: int) -> list[str]:
    """Break text into lines of at most `columns` printed columns.

    Breaks at spaces when a word fits on a line of its own, otherwise on the column boundary;
    a double-width character is never split and combining marks stay with their base.
    """
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if token.isspace():
            line += token if line else ""
        elif printed_width(line + token) <= columns:
            line += token
        elif line and printed_width(token) <= columns:
            lines.append(line.rstrip())
            line = token
        else:
            for cluster in _clusters(token):
                if printed_width(line + cluster) > columns:
                    lines.append(line.rstrip())
                    line = ""
                line += cluster
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _clusters(text: str) -> list[str]:
    """Characters with their following zero-width marks attached."""
    clusters: list[str] = []
    for char in text:
        if clusters and char_width(char) == 0:
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _tokens(text: str) -> list[str]:
    """Runs of spaces, runs of printable ASCII (words), and every other character alone."""
    tokens: list[str] = []
    for cluster in _clusters(text):
        kind = _kind(cluster)
        if kind and tokens and _kind(tokens[-1]) == kind:
            tokens[-1] += cluster
        else:
            tokens.append(cluster)
    return tokens


def _kind(token: str) -> str:
    if token.isspace():
        return " "
    return "a" if all("!" <= char <= "~" for char in token) else ""


def clean(text: str) -> str:
    """What the receipt prints: NFC, the full-width yuan sign, no control characters."""
    text = unicodedata.normalize("NFC", text).replace("\u00a5", "\uffe5")
    return "".join(" " if unicodedata.category(c) in _UNPRINTABLE_CATEGORIES else c for c in text)


class TextEncoder:
    """Unicode to printer bytes in one GB encoding, never through python-escpos's code pages.

    U+00A5 '¥' becomes U+FFE5 '￥' (GBK has only the full-width sign); a character the encoding
    lacks prints as '?' and is logged once per encoder.
    """

    def __init__(self, encoding: str) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"printer encoding must be one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        self._warned: set[str] = set()

    def encode(self, text: str) -> bytes:
        text = text.replace("\u00a5", "\uffe5")
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError:
            return b"".join(self._encode_char(char) for char in text)

    def _encode_char(self, char: str) -> bytes:
        try:
            return char.encode(self.encoding)
        except UnicodeEncodeError:
            if char not in self._warned:
                self._warned.add(char)
                log.warning(
                    "receipt text U+%04X %r is not in %s; printed as '?'",
                    ord(char),
                    char,
                    self.encoding,
                )
            return b"?"
