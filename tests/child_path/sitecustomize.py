"""For a child process under test: at exit, write the name of every module it imported (however:
`importlib.import_module` included) to the file `POS_TEST_MODULES_FILE` names, one a line."""

from __future__ import annotations

import atexit
import os
import sys


def _write_modules() -> None:
    with open(os.environ["POS_TEST_MODULES_FILE"], "w", encoding="utf-8") as out:
        out.write("\n".join(sorted(sys.modules)) + "\n")


if "POS_TEST_MODULES_FILE" in os.environ:
    atexit.register(_write_modules)
