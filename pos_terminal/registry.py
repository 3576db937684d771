"""The driver registry: device kind -> backend `type` -> (its config class, its factory).

Klipper-style loading by name: `devices.<kind>.type` in the YAML names a backend, and its module
is imported only then, so the core imports no driver and a configuration that names no mock
loads none. Each backend module declares `BACKEND = ports.Backend(config=..., factory=...)`; a new
backend or device kind is one module and one line in `KINDS` below, never an edit of config.py
or devices.py. The in-process WeChat Pay sandbox of a laptop run is loaded the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import yaml

from pos_terminal.config_schema import NodeReader, is_null
from pos_terminal.ports import Backend, PrinterSettings


class Role(Enum):
    """What the runtime does with a device kind."""

    INPUT = "input"  # an InputDevice: its device events go to the machine
    DISPLAY = "display"  # the customer display
    PRINTER = "printer"  # the receipt printer


@dataclass(frozen=True)
class Kind:
    role: Role
    backends: Mapping[str, str]  # type -> the module that holds its BACKEND
    settings: type[Any] = object  # every backend's config class derives from it


DEFAULT_TYPE = "mock"  # a device kind the YAML leaves out, or whose section names no type
KINDS: Mapping[str, Kind] = {
    "keypad": Kind(Role.INPUT, {"mock": "hw_mocks.keypad", "hid": "drivers.hid_keypad"}),
    "scanner": Kind(
        Role.INPUT,
        {
            "mock": "hw_mocks.scanner",
            "camera": "drivers.camera",
            "hid": "drivers.hid_scanner",
            "serial": "drivers.serial_scanner",
        },
    ),
    "display": Kind(Role.DISPLAY, {"mock": "hw_mocks.display", "tty": "drivers.tty_display"}),
    "printer": Kind(
        Role.PRINTER,
        {"mock": "hw_mocks.printer", "escpos": "drivers.printer_escpos"},
        settings=PrinterSettings,
    ),
}
WECHAT_SANDBOX = "hw_mocks.wechat_sandbox.in_process"  # `wechat.sandbox.enabled: true`


def backend(kind: str, type_: str) -> Backend[Any]:
    """Import the backend module `type_` of `kind` names and return its BACKEND.

    Raises:
        KeyError: no such kind or type (configurations are checked when they are read).
        TypeError: the module declares no BACKEND, or one whose settings do not derive from
            the kind's.
    """
    spec = KINDS[kind]
    found = _load(spec.backends[type_])
    if not issubclass(found.config, spec.settings):
        raise TypeError(
            f"{kind} type {type_}: {found.config.__name__} must derive from "
            f"{spec.settings.__name__}"
        )
    return found


def wechat_sandbox() -> Backend[Any]:
    """The in-process sandbox's BACKEND (imported only for a configuration that enables it)."""
    return _load(WECHAT_SANDBOX)


def _load(module: str) -> Backend[Any]:
    declared = getattr(importlib.import_module(module), "BACKEND", None)
    if not isinstance(declared, Backend):
        raise TypeError(f"{module} declares no BACKEND = ports.Backend(...)")
    return declared


# ---------------------------------------------------------------------------- the devices section


@dataclass(frozen=True)
class DeviceSection:
    """One device kind's section: the backend `type` and its settings (that backend's config)."""

    type: str
    settings: Any


def _default_sections() -> dict[str, DeviceSection]:
    return {kind: _default_section(kind) for kind in KINDS}


def _default_section(kind: str) -> DeviceSection:
    return DeviceSection(DEFAULT_TYPE, backend(kind, DEFAULT_TYPE).config())


@dataclass(frozen=True)
class DevicesConfig:
    """`devices`: one section per device kind, each read as `type:` first, then the rest of the
    section against that backend's config class."""

    sections: Mapping[str, DeviceSection] = field(default_factory=_default_sections)

    @property
    def printer(self) -> PrinterSettings:
        """The printer's settings; every printer backend's derive from PrinterSettings."""
        return cast(PrinterSettings, self.sections["printer"].settings)

    def replace(self, kind: str, **changes: Any) -> DevicesConfig:
        """A copy with some settings of one kind's backend changed."""
        section = self.sections[kind]
        settings = dataclasses.replace(section.settings, **changes)
        return DevicesConfig({**self.sections, kind: DeviceSection(section.type, settings)})

    @classmethod
    def read_node(cls, reader: NodeReader, node: yaml.Node, path: str) -> DevicesConfig:
        """Read the `devices` mapping. Raises ConfigError naming the key and its line."""
        if not (isinstance(node, yaml.MappingNode) or is_null(node)):
            raise reader.error(node, path, "expected a mapping of device kinds")
        sections: dict[str, DeviceSection] = {}
        for key_node, value_node in node.value if isinstance(node, yaml.MappingNode) else []:
            kind, key_path = str(key_node.value), f"{path}.{key_node.value}"
            if kind not in KINDS:
                raise reader.error(key_node, key_path, _unknown("device kind", kind, KINDS))
            if kind in sections:
                raise reader.error(key_node, key_path, "key appears twice")
            sections[kind] = _read_section(reader, kind, value_node, key_path)
        return cls({kind: sections.get(kind) or _default_section(kind) for kind in KINDS})


def _read_section(reader: NodeReader, kind: str, node: yaml.Node, path: str) -> DeviceSection:
    type_ = DEFAULT_TYPE
    if isinstance(node, yaml.MappingNode):
        typed = [(k, v) for k, v in node.value if k.value == "type"]
        if len(typed) > 1:
            raise reader.error(typed[1][0], f"{path}.type", "key appears twice")
        for _, value_node in typed:
            type_ = reader.scalar(str, value_node, f"{path}.type")
            if type_ not in KINDS[kind].backends:
                message = _unknown(f"{kind} type", type_, KINDS[kind].backends)
                raise reader.error(value_node, f"{path}.type", message)
    settings = reader.read(backend(kind, type_).config, node, path, skip=("type",))
    return DeviceSection(type_, settings)


def _unknown(what: str, name: str, known: Mapping[str, object]) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"unknown {what} {name!r}{suffix}; known: {', '.join(sorted(known))}"
