"""Rate limits, as Procore applies them: a long window and a 10-second spike window.

``--rate-limit N/H`` allows N calls per H hours. The spike window allows the same average rate
over 10 seconds, ``max(1, ceil(N * 10 / (H * 3600)))`` calls, so a client that paces itself to the
allowed rate never trips it and one that bursts does. Windows are fixed: each starts with the first
call after the previous one ended. Procore and each ERP count separately.

Every admitted call gets ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining`` and
``X-Rate-Limit-Reset`` (Unix seconds) for the window closer to exhaustion (the smaller share
remaining); a call over a limit is refused with 429, those headers for the exhausted window and
``Retry-After`` (seconds), and does not count.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

SPIKE_WINDOW_SECONDS = 10.0
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")


def parse_rate_limit(spec: str | tuple[int, float]) -> tuple[int, float]:
    """``"N/H"`` (N calls per H hours) → ``(N, window_seconds)``; tuples pass through."""
    if isinstance(spec, tuple):
        limit, seconds = spec
    else:
        match = _SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(f"rate limit must look like N/H (calls per hours), not {spec!r}")
        limit, seconds = int(match[1]), float(match[2]) * 3600
    if limit < 1 or seconds <= 0:
        raise ValueError("a rate limit needs at least one call in a positive window")
    return int(limit), float(seconds)


@dataclass(slots=True)
class Window:
    limit: int
    seconds: float
    start: float = -math.inf
    count: int = 0

    def roll(self, now: float) -> None:
        if now >= self.start + self.seconds:
            self.start, self.count = now, 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Reset": str(math.ceil(self.start + self.seconds)),
        }


class RateLimiter:
    """Per-system windows; used from the server's event loop only."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.spike_limit = max(1, math.ceil(limit * SPIKE_WINDOW_SECONDS / window_seconds))
        self._clock = clock
        self._windows: dict[str, tuple[Window, Window]] = {}

    def _for(self, system: str) -> tuple[Window, Window]:
        if system not in self._windows:
            spike = Window(self.spike_limit, SPIKE_WINDOW_SECONDS)
            self._windows[system] = (spike, Window(self.limit, self.window_seconds))
        return self._windows[system]

    def admit(self, system: str) -> tuple[bool, dict[str, str]]:
        """Count one call; whether it is allowed, and the headers to send with the answer."""
        now = self._clock()
        windows = self._for(system)
        for window in windows:
            window.roll(now)
        exhausted = [window for window in windows if window.remaining == 0]
        if exhausted:
            window = max(exhausted, key=lambda window: window.start + window.seconds)
            wait = max(1, math.ceil(window.start + window.seconds - now))
            return False, {**window.headers(), "Retry-After": str(wait)}
        for window in windows:
            window.count += 1
        closest = min(windows, key=lambda window: window.remaining / window.limit)
        return True, closest.headers()
