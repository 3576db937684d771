"""The Makefile as an installer meets it: quiet when all is well, loud when something fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_editable_installs_silence_the_setuptools_banner_and_nothing_else() -> None:
    planned = subprocess.run(
        ["make", "-n", "-B", ".venv/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    installs = [line for line in planned.splitlines() if "pip install" in line and " -e " in line]
    assert len(installs) == 2  # .[dev], then .[hid] best-effort
    options = {m.group(1) if (m := re.search(r'-W "([^"]+)"', line)) else "" for line in installs}
    [option] = options
    assert option, "editable installs without a -W filter show setuptools' banner every time"
    # pip re-raises each build-backend warning in its own process: the banner is one of them
    shown = subprocess.run(
        [
            sys.executable,
            "-W",
            option,
            "-c",
            "import warnings; warnings.warn('Editable installation.\\n!!\\n  **** careful ****');"
            "warnings.warn('Failed to build: something else')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    assert "Editable installation" not in shown
    assert "Failed to build: something else" in shown
