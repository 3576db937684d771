"""Typed reading of a YAML node tree into frozen dataclasses, with the file line in every error.

A dataclass field's type declares what the key holds; `field(metadata=bounds(...))` adds ranges,
lengths and a check of its own. Unknown keys, wrong types, missing required keys and out-of-range
values raise ConfigError naming the file, the line and the dotted key path. A key left with no
value (a section or list whose last entry was removed) counts as an empty section or list.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

import yaml

from pos_terminal.errors import ConfigError


class NodeReader:
    """Builds dataclass instances from yaml nodes of one file."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, node: yaml.Node | None, key: str, message: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(message, file=self.file, line=line, key=key)

    def read(
        self, cls: type[Any], node: yaml.Node, path: str, *, skip: tuple[str, ...] = ()
    ) -> Any:
        """An instance of dataclass `cls` from a mapping; keys in `skip` were read already."""
        if not (isinstance(node, yaml.MappingNode) or is_null(node)):
            raise self.error(node, path or "(top level)", "expected a mapping of keys")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        seen: set[str] = set()
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        for key_node, value_node in pairs:
            key = key_node.value
            key_path = f"{path}.{key}" if path else str(key)
            if key in skip:
                continue
            if key not in fields:
                names = [*fields, *skip]
                hint = difflib.get_close_matches(str(key), names, n=1)
                suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
                valid = ", ".join(sorted(names))
                raise self.error(key_node, key_path, f"unknown key{suffix}; valid keys: {valid}")
            if key in seen:
                raise self.error(key_node, key_path, "key appears twice")
            seen.add(key)
            spec = fields[key]
            values[key] = self.value(hints[key], value_node, key_path, dict(spec.metadata))
        for name, spec in fields.items():
            if name in values:
                continue
            missing = (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            )
            if missing:
                where = path or "(top level)"
                raise self.error(
                    node, f"{path}.{name}" if path else name, f"required key missing in {where}"
                )
        return cls(**values)

    def value(self, hint: Any, node: yaml.Node, path: str, meta: dict[str, Any]) -> Any:
        origin = typing.get_origin(hint)
        if origin in (types.UnionType, typing.Union):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            if is_null(node):
                return None
            return self.value(options[0], node, path, meta)
        read_node = getattr(hint, "read_node", None)
        if read_node is not None:
            return read_node(self, node, path)
        if dataclasses.is_dataclass(hint):
            return self.read(typing.cast(type[Any], hint), node, path)
        if origin is Literal:
            choices = typing.get_args(hint)
            raw = self.scalar(str, node, path)
            if raw not in choices:
                allowed = ", ".join(repr(c) for c in choices)
                raise self.error(node, path, f"{raw!r} is not one of {allowed}")
            return raw
        if origin is tuple:
            (item_hint, _) = typing.get_args(hint)
            if not (isinstance(node, yaml.SequenceNode) or is_null(node)):
                raise self.error(node, path, "expected a list")
            nodes = node.value if isinstance(node, yaml.SequenceNode) else []
            items = tuple(
                self.value(item_hint, item, f"{path}[{i}]", {}) for i, item in enumerate(nodes)
            )
            self.check_len(node, path, len(items), meta, "item(s)")
            return items
        value = self.scalar(hint, node, path)
        if isinstance(value, str):
            self.check_len(node, path, len(value), meta, "character(s)")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            lo, hi = meta.get("min"), meta.get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                rng = (
                    f"between {lo} and {hi}"
                    if lo is not None and hi is not None
                    else (f"at least {lo}" if lo is not None else f"at most {hi}")
                )
                raise self.error(node, path, f"{value} is out of range: must be {rng}")
        check = meta.get("check")
        if check is not None:
            try:
                check(value)
            except ValueError as exc:
                raise self.error(node, path, str(exc)) from exc
        return value

    def check_len(
        self, node: yaml.Node, path: str, length: int, meta: dict[str, Any], unit: str
    ) -> None:
        min_len, max_len = meta.get("min_len"), meta.get("max_len")
        if min_len is not None and length < min_len:
            raise self.error(node, path, f"must have at least {min_len} {unit}")
        if max_len is not None and length > max_len:
            raise self.error(node, path, f"has {length} {unit}: at most {max_len} allowed")

    def scalar(self, hint: Any, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(
                node, path, f"expected a {_type_name(hint)}, found a {_node_kind(node)}"
            )
        tag = node.tag.rsplit(":", 1)[-1]
        text = node.value
        if hint is str:
            if tag in ("str", "int", "float"):
                return text
            raise self.error(node, path, f"expected text, found {tag} {text!r}")
        if hint is bool:
            if tag == "bool":
                return text.lower() in ("true", "yes", "on")
            raise self.error(node, path, f"expected true or false, found {text!r}")
        if hint is int:
            if tag == "int":
                return int(text.replace("_", ""), 0)
            raise self.error(node, path, f"expected a whole number, found {text!r}")
        if hint is float:
            if tag in ("int", "float"):
                return float(text.replace("_", ""))
            raise self.error(node, path, f"expected a number, found {text!r}")
        raise TypeError(f"unsupported config type {hint!r} at {path}")


def is_null(node: yaml.Node) -> bool:
    """`key:` with nothing after it (also `~` and `null`)."""
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _type_name(hint: Any) -> str:
    return {str: "text value", int: "whole number", float: "number", bool: "true/false"}.get(
        hint, "value"
    )


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "value"
