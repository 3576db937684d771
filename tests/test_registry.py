"""The driver registry: `type:` picks the backend, loaded only then; errors name key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pos_terminal.config import parse_config
from pos_terminal.config_reference import reference
from pos_terminal.errors import ConfigError
from tests.helpers import MINIMAL_CONFIG as MINIMAL

ROOT = Path(__file__).parents[1]


def error_of(devices: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + "devices:\n" + devices, "t.yaml")
    return caught.value


def test_type_is_authoritative_a_mock_takes_no_driver_keys() -> None:
    # once a `hid:` section won over `type: mock`; now the mock's keys are the only ones
    err = error_of("  scanner:\n    type: mock\n    device: /dev/input/event3\n")
    assert (err.line, err.key) == (11, "devices.scanner.device")
    assert "unknown key" in str(err) and "valid keys: type" in str(err)


def test_the_section_is_read_against_the_named_backend() -> None:
    config = parse_config(
        MINIMAL + "devices:\n  scanner:\n    type: serial\n    port: loop://\n    baud: 115200\n"
    )
    scanner = config.devices.sections["scanner"]
    assert (scanner.type, scanner.settings.port, scanner.settings.baud) == (
        "serial",
        "loop://",
        115200,
    )


def test_an_unknown_type_lists_the_known_ones_with_file_and_line() -> None:
    err = error_of("  keypad: {type: mock}\n  scanner:\n    type: seriel\n")
    assert (err.file, err.line, err.key) == ("t.yaml", 11, "devices.scanner.type")
    assert "unknown scanner type 'seriel' (did you mean 'serial'?)" in str(err)
    assert "known: camera, hid, mock, serial" in str(err)


def test_an_unknown_device_kind_is_named() -> None:
    err = error_of("  printr:\n    type: mock\n")
    assert (err.line, err.key) == (9, "devices.printr")
    assert "did you mean 'printer'" in str(err)


def test_a_mistake_inside_a_backend_section_names_key_and_line() -> None:
    err = error_of("  printer:\n    type: escpos\n    conection: usb\n")
    assert (err.line, err.key) == (11, "devices.printer.conection")
    assert "did you mean 'connection'" in str(err)
    err = error_of("  display:\n    type: tty\n    device: /dev/ttyUSB0\n    baud: 9601\n")
    assert (err.line, err.key) == (12, "devices.display.baud")


def test_a_section_without_type_and_a_kind_left_out_are_mocks() -> None:
    config = parse_config(MINIMAL + "devices:\n  printer:\n    columns: 42\n")
    assert {kind: s.type for kind, s in config.devices.sections.items()} == {
        "keypad": "mock",
        "scanner": "mock",
        "display": "mock",
        "printer": "mock",
    }
    assert config.devices.printer.columns == 42


def test_the_reference_documents_every_backend_with_its_keys() -> None:
    text = reference()
    for heading, key in [
        ("`devices.scanner` with `type: camera`", "decoder"),
        ("`devices.scanner` with `type: serial`", "suffix"),
        ("`devices.keypad` with `type: hid`", "ignore_numlock"),
        ("`devices.display` with `type: tty`", "baud"),
        ("`devices.printer` with `type: escpos`", "connection"),
        ("`devices.printer` with `type: escpos`", "columns"),  # the printer kind's own keys
        ("`devices.printer` with `type: mock`", "out_dir"),
    ]:
        table = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in table, (heading, key)


@pytest.mark.parametrize(
    ("shipped", "loaded", "not_loaded"),
    [
        ("raspberry-pi.yaml", "drivers.tty_display", "hw_mocks"),
        ("terminal.yaml", "hw_mocks.printer", "drivers"),
    ],
)
def test_a_backend_module_loads_only_when_the_config_names_it(
    shipped: str, loaded: str, not_loaded: str
) -> None:
    script = (
        "import sys; from pathlib import Path; from pos_terminal.config import load_config; "
        f"load_config(Path('config/{shipped}')); print(' '.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded in out
    assert not [m for m in out if m.split(".")[0] == not_loaded]
