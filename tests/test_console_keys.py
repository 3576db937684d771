"""The laptop keyboard decoder: escape sequences stay whole and never read as Esc, in any pieces."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from pos_terminal.console_keys import KeyDecoder

ESC = "\x1b"
LONE_ESC = object()  # the Esc key: nothing follows it before the timeout

# what xterm, rxvt, the Linux console, VTE and kitty send for keys that are not characters
SEQUENCES = [
    *(f"{ESC}[{c}" for c in "ABCDHF"),  # arrows, Home, End
    *(f"{ESC}[1;{m}{c}" for m in "2357" for c in "ABCDPQRS"),  # with Shift, Alt, Ctrl
    *(f"{ESC}O{c}" for c in "PQRSABCDHFMjkmnopqrstuvwxy"),  # SS3: F1-F4, keypad
    *(f"{ESC}[{n}~" for n in (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 23, 24)),
    *(f"{ESC}[[{c}" for c in "ABCDE"),  # Linux console F1-F5
    f"{ESC}[15;5~",
    f"{ESC}[200~",  # bracketed paste
    f"{ESC}[I",  # focus in
    f"{ESC}[97;5u",  # kitty's CSI u
    f"{ESC}{ESC}[A",  # Alt-Up on rxvt
    f"{ESC}\r",  # Alt-Enter
    f"{ESC}\x7f",  # Alt-Backspace
    # Alt + a character; Alt-[, Alt-O and Alt-Esc cannot be told from a sequence's start when a
    # key follows at once, in any terminal
    *(ESC + c for c in "abcdefghijklmnpqrstuvwxyz0123456789ABCNZ-=;,./ ~"),
]
plain = st.characters(exclude_characters=ESC, exclude_categories=["Cs"])
items = st.lists(st.one_of(plain, st.sampled_from(SEQUENCES), st.just(LONE_ESC)), max_size=40)


def decode(chunks: list[bytes], timeouts_after: frozenset[int] = frozenset()) -> list[str]:
    """Feed each chunk; the Esc timeout passes after the chunks named, and at the end."""
    decoder = KeyDecoder()
    keys: list[str] = []
    for i, chunk in enumerate(chunks):
        keys += decoder.feed(chunk)
        if i in timeouts_after:
            keys += decoder.timeout()
    return keys + decoder.timeout()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(items, st.lists(st.integers(min_value=0), max_size=10))
def test_each_key_comes_out_whole_and_only_a_lone_esc_is_esc(
    typed: list[object], points: list[int]
) -> None:
    """Keys typed apart (a lone Esc before a pause), their bytes read in any pieces."""
    chunks: list[bytes] = []
    pauses: set[int] = set()
    pending = ""
    for item in [*typed, None]:
        if item is LONE_ESC or item is None:
            pieces = cut(pending.encode(), points) + ([ESC.encode()] if item else [])
            chunks += pieces
            pauses.add(len(chunks) - 1)
            pending = ""
        else:
            pending += str(item)
    expected = [ESC if item is LONE_ESC else item for item in typed]
    assert decode(chunks, frozenset(pauses)) == expected


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=20))
def test_bytes_split_anywhere_decode_as_they_do_whole(data: bytes, points: list[int]) -> None:
    assert decode(cut(data, points)) == decode([data])


@given(st.binary(max_size=200))
def test_without_a_pause_esc_is_at_most_the_very_last_key(data: bytes) -> None:
    keys = decode([data])
    lone = [i for i, key in enumerate(keys) if key == ESC]
    assert lone in ([], [len(keys) - 1])
    if lone:
        assert data.endswith(ESC.encode())


def test_a_chinese_character_split_between_reads_is_one_key() -> None:
    data = "¥好".encode()
    assert decode([data[:1], data[1:3], data[3:]]) == ["¥", "好"]


def test_alt_esc_and_an_unfinished_sequence_before_a_pause_are_ignored_not_esc() -> None:
    assert decode([f"{ESC}{ESC}".encode()]) == [f"{ESC}{ESC}"]
    assert decode([f"{ESC}[1;".encode()]) == [f"{ESC}[1;"]


def test_a_sequence_cut_short_by_another_key_is_dropped_whole_not_typed() -> None:
    assert decode([f"{ESC}[12{ESC}[A5".encode()]) == [f"{ESC}[12", f"{ESC}[A", "5"]


def test_an_esc_followed_by_a_character_cut_short_is_not_a_lone_esc() -> None:
    assert decode([b"\x1b\xc2"]) == ["\x1b\ufffd"]
    assert decode([b"\x1b", b"\xc2\xa5"]) == ["\x1b¥"]  # Alt-¥, the character completed
