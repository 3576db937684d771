"""The repeat window every code scanner applies: a code seen again soon is delivered once."""

from __future__ import annotations


class RepeatFilter:
    """Delivers a code once: the same code again within `window_s` of its last sighting is dropped.

    Pure bookkeeping (time is passed in). Each sighting extends the window, so a phone held in
    front of a camera for a minute yields one scan.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}

    def accept(self, code: str, now: float) -> bool:
        """True when `code` should be delivered now."""
        self._last_seen = {c: t for c, t in self._last_seen.items() if now - t <= self.window_s}
        fresh = code not in self._last_seen
        self._last_seen[code] = now
        return fresh
