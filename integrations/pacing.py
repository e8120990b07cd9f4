"""Client-side pacing from the ``X-Rate-Limit-*`` headers, so a well-behaved run never sees a 429.

Each answer reports one rate-limit window (Procore: the one closer to exhaustion of its hourly and
10-second windows): its size (``X-Rate-Limit-Limit``), the calls left (``-Remaining``) and its end
(``-Reset``, Unix seconds). The pacer remembers every window it was told about (told apart by
their size) and counts each later call against the ones the answer did not report.

Before each call, for every window: while plenty is left, go at once; once the budget still free
(remaining minus the calls already on their way) falls to ``pace_below``, spread the free calls
evenly over the time until the reset; with nothing free, wait for the reset. When a window ends,
a fresh one is assumed to hold its size: no more go out before an answer tells the new budget.
The very first call goes alone, so that its answer tells the budget before any burst. A
``Retry-After`` or a 429 holds every caller back. All waits use the injected clock and sleep and
are capped by ``max_wait``.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


def header_number(headers: Mapping[str, str], name: str) -> float | None:
    """A finite, non-negative number from a header, or None when absent or unreadable."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait according to ``Retry-After`` (delta-seconds or an HTTP date)."""
    seconds = header_number(headers, "Retry-After")
    if seconds is not None:
        return seconds
    raw = headers.get("Retry-After")
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


RESET_GRANULARITY = 1.0  # X-Rate-Limit-Reset is in whole seconds: a window may end 1 s before


@dataclass(slots=True)
class _Window:
    """What is known of one rate-limit window."""

    size: int | None  # X-Rate-Limit-Limit; None when not sent
    remaining: int
    reset_at: float | None  # None: a fresh window whose end is not known yet
    told: bool = True  # reset_at came from the remote (else it is an estimate)
    opened_at: float | None = None  # first call sent in this (fresh) window
    length: float | None = None  # how long such a window lasted, as last measured
    next_slot: float = 0.0


class Pacer:
    """Decides, before each send, how long to wait; learns from the headers of every answer."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        pace_below: int,
        reset_margin: float,
        max_wait: float,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._pace_below = pace_below
        self._reset_margin = reset_margin
        self._max_wait = max_wait
        self._changed = threading.Condition()
        self._windows: dict[int | None, _Window] = {}
        self._in_flight = 0
        self._blocked_until = 0.0
        self._answered = False  # until the first answer, calls go one at a time
        self._sent: deque[float] = deque()  # when the latest calls went out

    def before_send(self) -> None:
        """Wait until this call may go out, and count it as in flight."""
        with self._changed:
            while True:
                now = self._clock()
                at: float | None = None
                if self._answered or self._in_flight == 0:
                    at = self._earliest(max(now, self._blocked_until))
                if at is not None:
                    break
                self._changed.wait(timeout=1.0)  # an answer on its way tells the budget
            self._in_flight += 1
            self._sent.append(at)
            while self._sent and self._sent[0] < at - 2 * RESET_GRANULARITY - self._reset_margin:
                self._sent.popleft()
            for window in self._windows.values():
                if window.reset_at is None:  # this call opens a fresh window
                    window.opened_at = at
                    if window.length is not None:
                        window.reset_at, window.told = at + window.length, False
        wait = min(at - now, self._max_wait)
        if wait > 0:
            self._sleep(wait)

    def _earliest(self, at: float) -> float | None:
        """When the next call may go (None: wait for an answer first)."""
        margin = self._reset_margin
        for size, window in list(self._windows.items()):
            if window.reset_at is not None and at >= window.reset_at + margin:
                if size is None:
                    del self._windows[size]
                else:  # over: a fresh window of the same size began, maybe a little earlier
                    early = window.reset_at - RESET_GRANULARITY
                    window.remaining = size - sum(1 for sent in self._sent if sent > early)
                    window.reset_at, window.told, window.opened_at = None, False, None
                    window.next_slot = 0.0
        spreading: list[tuple[_Window, float, int]] = []
        for window in self._windows.values():
            free = window.remaining - self._in_flight
            if window.reset_at is None:
                if free <= 0 < self._in_flight:
                    return None
            elif free <= 0:
                at = max(at, window.reset_at + margin)
            elif free <= self._pace_below:
                at = max(at, window.next_slot)
                spreading.append((window, window.reset_at, free))
        for window, reset_at, free in spreading:
            window.next_slot = at + max(0.0, reset_at - at) / free
        return at

    def after_answer(self, headers: Mapping[str, str] | None, *, counted: bool = True) -> None:
        """The call came back (``headers`` None: no answer); ``counted``: it used the budget."""
        with self._changed:
            self._in_flight = max(0, self._in_flight - 1)
            self._answered = True
            self._changed.notify_all()
            reported = self._learn(headers) if headers is not None else None
            if counted:
                for window in self._windows.values():
                    if window is not reported:
                        window.remaining = max(0, window.remaining - 1)

    def _learn(self, headers: Mapping[str, str]) -> _Window | None:
        """Update the window these headers describe; return it."""
        remaining = header_number(headers, "X-Rate-Limit-Remaining")
        reset = header_number(headers, "X-Rate-Limit-Reset")
        if remaining is None or reset is None or reset + self._reset_margin <= self._clock():
            return None  # nothing said, or about a window already over
        limit = header_number(headers, "X-Rate-Limit-Limit")
        size = int(limit) if limit is not None and limit >= remaining else None
        known = self._windows.get(size)
        if known is None:
            window = self._windows[size] = _Window(size, int(remaining), reset)
        elif not known.told or known.reset_at is None or reset > known.reset_at:
            length = known.length
            if not known.told and known.opened_at is not None and reset > known.opened_at:
                length = reset - known.opened_at  # we opened this window: now we know its length
            window = self._windows[size] = _Window(size, int(remaining), reset, length=length)
        else:
            window = known
            if reset == known.reset_at:
                known.remaining = min(known.remaining, int(remaining))
        return window  # (an older answer about an earlier window changes nothing)

    def block_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (capped), e.g. after a 429 or a 503."""
        with self._changed:
            until = self._clock() + min(max(0.0, seconds), self._max_wait)
            self._blocked_until = max(self._blocked_until, until)
