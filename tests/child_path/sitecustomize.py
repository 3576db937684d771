"""For a child process under test: at exit, write the name of every module it imported (however:
`importlib.import_module` included) to the file `POS_TEST_MODULES_FILE` names, one a line.

A program that ends by its own signal (`os.kill(os.getpid(), sig)`, as `pos-terminal run` does
when stopped) runs no atexit handler: the audit event of that kill writes the file instead.
"""

from __future__ import annotations

import atexit
import os
import sys


def _write_modules() -> None:
    with open(os.environ["POS_TEST_MODULES_FILE"], "w", encoding="utf-8") as out:
        out.write("\n".join(sorted(sys.modules)) + "\n")


def _on_audit(event: str, args: tuple[object, ...]) -> None:
    if event == "os.kill" and args and args[0] == os.getpid():
        _write_modules()


if "POS_TEST_MODULES_FILE" in os.environ:
    atexit.register(_write_modules)
    sys.addaudithook(_on_audit)
