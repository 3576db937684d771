"""`pos-terminal config --reference`: every configuration key with its type, range and default.

Built from the schema itself (`config.Config` and the dataclasses it holds) as Markdown; a key's
description is its comment in the dataclass source, on its own lines or just above them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

import yaml

from pos_terminal import registry
from pos_terminal.config import Config

HEADER = """\
# Configuration reference

Every key of the terminal's YAML file (`config/terminal.yaml` on a laptop). Generated from the
schema by `pos-terminal config --reference`; a test fails when this copy is stale. A key left out
takes its default; an unknown key, a wrong type or a value outside its range stops the terminal
with one line naming the file, the line and the key. Durations (`_s`) are in seconds.
"""
_NAMES = {str: "text", int: "integer", float: "number", bool: "true/false"}


def reference() -> str:
    """The whole reference, Markdown."""
    return HEADER + "".join(_section(*part) for part in _parts(Config, "", ""))


Part = tuple[str, str, list[str], str]  # heading, text above the table, its rows, text below


def _parts(
    cls: type[Any], path: str, intro: str, outro: str = "", *, title: str = ""
) -> Iterator[Part]:
    """The parts of `cls` and then of every section it holds, depth first; `title` is the
    heading when it is more than the path."""
    if cls is registry.DevicesConfig:
        yield f"`{path}`", _sentences(intro), [], ""
        yield from _device_parts(path)
        return
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    rows: list[str] = []
    below: list[tuple[type[Any], str, str, str]] = []
    for spec in dataclasses.fields(cls):
        hint, note = hints[spec.name], comments.get(spec.name, "")
        key = f"{path}.{spec.name}" if path else spec.name
        section = _section_type(hint)
        if section is not None:
            below.append((section, key, _sentences(note), ""))
            continue
        default = _default(spec)
        item = _item_type(hint)
        if item is not None:
            listed = f"The default list:\n\n```yaml\n{default}```\n"
            below.append((item, f"{key}[]", _sentences(f"each entry of `{key}`", note), listed))
            default = "(below)"
        cells = (f"`{spec.name}`", _type(hint), _allowed(hint, dict(spec.metadata)), default, note)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if rows or title:
        yield title or f"`{path}`", _sentences(intro, _docstring(cls)), rows, outro
    for section, key, note, listed in below:
        yield from _parts(section, key, note, listed)


def _device_parts(path: str) -> Iterator[Part]:
    """Each device kind: its `type`, then every backend's keys (the backend module's config)."""
    for kind, spec in registry.KINDS.items():
        key, types = f"{path}.{kind}", sorted(spec.backends)
        choices = ", ".join(f"`{name}`" for name in types)
        note = "the backend; the other keys of the section are that backend's, below"
        row = f"| `type` | choice | {choices} | `{registry.DEFAULT_TYPE}` | {note} |"
        yield f"`{key}`", "", [row], ""
        for name in types:
            config = registry.backend(kind, name).config
            title = f"`{key}` with `type: {name}`"
            if dataclasses.fields(config):
                yield from _parts(config, key, "", title=title)
            else:
                yield title, "No other keys.", [], ""


def _section(title: str, intro: str, rows: list[str], outro: str) -> str:
    table = "| key | type | allowed | default | description |\n|---|---|---|---|---|\n"
    return "".join(
        (
            f"\n## {title}\n",
            f"\n{intro}\n" if intro else "",
            "\n" + table + "\n".join(rows) + "\n" if rows else "",
            f"\n{outro}" if outro else "",
        )
    )


def _section_type(hint: Any) -> type[Any] | None:
    """The dataclass a field holds (a section), also when it may be absent (`X | None`)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _item_type(hint: Any) -> type[Any] | None:
    """The dataclass of a list of sections (`providers: [{...}, ...]`)."""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return item if isinstance(item, type) and dataclasses.is_dataclass(item) else None
    return None


def _type(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "choice"
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return "list of sections" if dataclasses.is_dataclass(item) else f"list of {_type(item)}"
    return _NAMES[hint]


def _allowed(hint: Any, meta: dict[str, Any]) -> str:
    rules: list[str] = []
    if typing.get_origin(hint) is Literal:
        rules.append(", ".join(f"`{choice}`" for choice in typing.get_args(hint)))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        rules.append(f"{lo:g} to {hi:g}")
    elif lo is not None or hi is not None:
        rules.append(f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}")
    unit = "entries" if typing.get_origin(hint) is tuple else "characters"
    if meta.get("min_len") == 1:
        rules.append("not empty")
    elif meta.get("min_len"):
        rules.append(f"at least {meta['min_len']} {unit}")
    if meta.get("max_len"):
        rules.append(f"at most {meta['max_len']} {unit}")
    if meta.get("rule"):
        rules.append(meta["rule"])
    return "; ".join(rules)


def _default(spec: dataclasses.Field[Any]) -> str:
    if spec.default is not dataclasses.MISSING:
        value = spec.default
    elif spec.default_factory is not dataclasses.MISSING:
        value = spec.default_factory()
    else:
        return "**required**"
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        plain = [dataclasses.asdict(item) for item in value]
        return yaml.safe_dump(plain, allow_unicode=True, sort_keys=False, width=100)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def _docstring(cls: type[Any]) -> str:
    doc = cls.__doc__ or ""
    # dataclasses make a docstring of the signature for a class that has none
    return "" if doc.startswith(f"{cls.__name__}(") else inspect.cleandoc(doc)


def _sentences(*texts: str) -> str:
    """Texts as sentences: capitalised, each ending with a full stop."""
    return " ".join(
        t[:1].upper() + t[1:] + ("" if t.endswith((".", ")")) else ".") for t in texts if t
    )


def _comments(cls: type[Any]) -> dict[str, str]:
    """Each field's comment: the lines right above it, then the one on its own lines; a field a
    base class declares has the comment it has there."""
    notes: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            notes.update(_own_comments(base))
    return notes


def _own_comments(cls: type[Any]) -> dict[str, str]:
    source = textwrap.dedent(inspect.getsource(cls))
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    notes: dict[str, str] = {}
    for node in typing.cast(ast.ClassDef, ast.parse(source).body[0]).body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in found and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, found[line])
            line -= 1
        end = node.end_lineno or node.lineno
        own = [found[n] for n in range(node.lineno, end + 1) if n in found]
        notes[node.target.id] = "; ".join(" ".join(block) for block in (above, own) if block)
    return notes
