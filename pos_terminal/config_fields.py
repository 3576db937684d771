"""Field metadata for configuration dataclasses: ranges, lengths and checks (standard library only,
so that drivers and pure modules can declare their settings without the YAML reader).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def bounds(
    *,
    min: float | None = None,
    max: float | None = None,
    min_len: int | None = None,
    max_len: int | None = None,
    check: Callable[[Any], object] | None = None,
    rule: str = "",
) -> dict[str, Any]:
    """Field metadata: numeric range and lengths of strings and lists (inclusive), and `check`,
    which raises ValueError with the reason for a value it refuses; `rule` says in words what
    `check` takes (for the reference).
    """
    return dict(min=min, max=max, min_len=min_len, max_len=max_len, check=check, rule=rule)
