"""The supervisor PIN in the config: only a usable SHA-256 is taken, and `pin-hash` makes one."""

from __future__ import annotations

import hashlib
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pos_terminal.config import load_config, parse_config
from pos_terminal.errors import ConfigError
from tests.helpers import MINIMAL_CONFIG

ROOT = Path(__file__).parents[1]
SHOP = MINIMAL_CONFIG + "staff:\n  supervisor_pin_sha256: {value}\n"


def refusal(value: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(SHOP.format(value=value), "shop.yaml")
    return caught.value


def test_a_pin_written_where_its_hash_belongs_is_refused_naming_key_line_and_the_command() -> None:
    err = refusal("1234")
    assert (err.file, err.line, err.key) == ("shop.yaml", 9, "staff.supervisor_pin_sha256")
    assert "pos-terminal pin-hash" in str(err)
    assert "1234" not in str(err)  # it may be the PIN itself: never echoed to a log


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (hashlib.sha256(b"1234").hexdigest().upper(), "lower case"),
        (hashlib.sha256(b"").hexdigest(), "empty PIN"),  # Enter alone would authorise refunds
        (hashlib.sha256(b"1234").hexdigest()[:-1], "64 hex digits"),
        (hashlib.md5(b"1234").hexdigest(), "64 hex digits"),
    ],
)
def test_a_digest_that_would_silently_never_match_or_match_anything_is_refused(
    value: str, words: str
) -> None:
    err = refusal(value)
    assert err.line == 9 and words in str(err)


def test_a_real_digest_is_taken_and_an_empty_one_turns_refunds_off_explicitly() -> None:
    digest = hashlib.sha256(b"908172").hexdigest()
    assert parse_config(SHOP.format(value=digest)).staff.supervisor_pin_sha256 == digest
    assert parse_config(SHOP.format(value='""')).staff.supervisor_pin_sha256 == ""


@given(st.text(min_size=1, max_size=80))
def test_no_text_but_a_lower_case_sha256_digest_is_taken(text: str) -> None:
    value = yaml.safe_dump(text, allow_unicode=True, width=1000).removesuffix("\n...\n").strip()
    try:
        config = parse_config(SHOP.format(value=value))
    except ConfigError as exc:
        assert exc.key == "staff.supervisor_pin_sha256", exc
        return
    digest = config.staff.supervisor_pin_sha256
    assert digest == text and len(digest) == 64 and set(digest) <= set("0123456789abcdef")


def _pin_hash_in_a_terminal(*answers: str) -> tuple[int, str]:
    """Run `pos-terminal pin-hash` on a pty of its own, typing each answer at its prompt;
    returns the exit status and everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as for a person
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        os.execve(sys.executable, [sys.executable, "-m", "pos_terminal.cli", "pin-hash"], env)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.endswith(b": "):  # a prompt, waiting with echo off
                os.write(fd, pending.pop(0).encode() + b"\r")
    else:
        os.kill(pid, signal.SIGKILL)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_pin_hash_reads_the_pin_twice_without_echo_and_prints_the_digest_the_config_takes() -> None:
    status, shown = _pin_hash_in_a_terminal("1234", "1234")
    assert status == 0, shown
    digest = hashlib.sha256(b"1234").hexdigest()
    assert digest in shown and "1234" not in shown.replace(digest, "")
    # the laptop config holds the same digest, and the refund flows authorise with PIN 1234
    laptop = load_config(ROOT / "config" / "terminal.yaml")
    assert laptop.staff.supervisor_pin_sha256 == digest


@pytest.mark.parametrize(
    ("answers", "words"),
    [(("1234", "4321"), "differ"), (("12ab",), "digits only"), (("123",), "4 to 12 digits")],
)
def test_pin_hash_refuses_a_pin_the_keypad_cannot_type_or_a_mistyped_repeat(
    answers: tuple[str, ...], words: str
) -> None:
    status, shown = _pin_hash_in_a_terminal(*answers)
    assert status == 1 and words in shown and "nothing was made" in shown
    assert hashlib.sha256(answers[0].encode()).hexdigest() not in shown
