"""The supervisor PIN as the configuration holds it: a SHA-256 hex digest, checked at load and
made by `pos-terminal pin-hash` (the PIN is read without echo, never printed or stored).
"""

from __future__ import annotations

import getpass
import hashlib
import re
import sys

PIN_DIGITS = (4, 12)  # what a keypad PIN is; the keypad has digits only
MAKE_ONE = "make one with `pos-terminal pin-hash`"
_HEX_64 = re.compile(r"[0-9a-fA-F]{64}")
_EMPTY_PIN = hashlib.sha256(b"").hexdigest()


def pin_sha256(pin: str) -> str:
    """The digest the configuration keeps for `pin` (lower-case hex, as the terminal compares)."""
    return hashlib.sha256(pin.encode()).hexdigest()


def check_pin_sha256(value: str) -> None:
    """Raises ValueError unless `value` is empty (refunds off) or a usable PIN digest."""
    if value == "":
        return
    if not _HEX_64.fullmatch(value):
        # never echoed: it may be the PIN itself
        raise ValueError(
            f"not a SHA-256 of the PIN (64 hex digits; this value has {len(value)} characters); "
            f"{MAKE_ONE} (an empty value turns refunds off)"
        )
    if value != value.lower():
        raise ValueError(f"write the hex digits in lower case; {MAKE_ONE}")
    if value == _EMPTY_PIN:
        raise ValueError(
            f"the SHA-256 of an empty PIN: Enter alone would authorise refunds; {MAKE_ONE}"
        )


def check_pin(pin: str) -> None:
    """Raises ValueError unless the keypad can type `pin`."""
    low, high = PIN_DIGITS
    if not (pin.isascii() and pin.isdigit()):
        raise ValueError("a PIN is digits only: the keypad has no other keys")
    if not low <= len(pin) <= high:
        raise ValueError(f"a PIN has {low} to {high} digits, not {len(pin)}")


def main() -> int:
    """`pos-terminal pin-hash`: ask for the PIN twice without echo, print its digest."""
    try:
        pin = getpass.getpass("supervisor PIN: ")
        check_pin(pin)
        if getpass.getpass("the same PIN again: ") != pin:
            raise ValueError("the two PINs differ")
    except ValueError as exc:
        print(f"pos-terminal pin-hash: {exc}; nothing was made", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("\npos-terminal pin-hash: no PIN given; nothing was made", file=sys.stderr)
        return 1
    print(pin_sha256(pin))
    print("put it in the config as staff.supervisor_pin_sha256", file=sys.stderr)
    return 0
