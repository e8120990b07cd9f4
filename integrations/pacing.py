"""Client-side pacing in each product's own rate-limit dialect, so a well-behaved run never sees a
429, and a wait longer than ``max_wait`` fails at once, saying when to come back.

One pacer per client (:func:`pacer_for` picks it by the client's system):

* Procore (:class:`ProcorePacer`): ``X-Rate-Limit-Limit/Remaining/Reset`` on every answer, for
  the closer to exhaustion of its hourly and spike windows.
* Xero (:class:`RollingPacer`): ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining`` and
  ``X-AppMinLimit-Remaining``, the calls left in rolling windows of a minute, a day and an
  app-wide minute that no header names the length or end of (Xero documents them:
  :class:`Limits`); at most 5 calls in progress.
* QuickBooks Online (:class:`RollingPacer`): no rate headers; Intuit documents 500 requests a
  minute and 10 in progress per company, so the pacer counts its own calls against those.
* Sage Intacct (:class:`Pacer`): no rate headers; only ``Retry-After`` is honoured.

Every pacer holds all callers back after a 429 or 503 (:meth:`Pacer.block_for`) and, before a
call, raises :class:`PaceTooLong` instead of sleeping when the call may not go within
``max_wait``. All waits use the injected clock and sleep.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from integrations.waiting import WaitHook, waiting

RESET_GRANULARITY = 1.0  # X-Rate-Limit-Reset is in whole seconds: a window may end 1 s before
LONGEST_WINDOW = 2 * 86_400.0  # a reset or Retry-After further away than this is nonsense


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


@dataclass(frozen=True, slots=True)
class Limits:
    """What the vendors document and their answers do not say (the defaults), per product."""

    xero_minute_seconds: float = 60.0  # X-MinLimit-Remaining and X-AppMinLimit-Remaining
    xero_day_seconds: float = 86_400.0  # X-DayLimit-Remaining
    xero_concurrent: int = 5  # calls in progress per tenant
    qbo_calls: int = 500  # requests per realm in qbo_window_seconds
    qbo_window_seconds: float = 60.0
    qbo_concurrent: int = 10  # requests in progress per realm
    qbo_throttled_seconds: float = 60.0  # Intuit: "wait 60 seconds before retrying" after a 429


class PaceTooLong(Exception):
    """The next call may not go before ``until`` (Unix seconds), later than ``max_wait``
    allows; ``why`` names the limit in the product's words."""

    def __init__(self, until: float, why: str) -> None:
        super().__init__(why)
        self.until = until
        self.why = why


class Pacer:
    """Decides, before each send, how long to wait; learns from the answers. This base knows no
    rate headers: it honours server-directed waits and caps the calls in progress."""

    product = "the remote system"
    on_wait: WaitHook | None = None  # told of each wait (what for, seconds): integrations.waiting

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait: float,
        reset_margin: float,
        concurrent: int | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._reset_margin = reset_margin
        self._concurrent = concurrent
        # how many processes share this remote's budget (a batch run by several workers): each
        # takes its share of what is left, of the documented sizes and of the calls at once
        self.share: Callable[[], int] = _alone
        self._changed = threading.Condition()
        self._in_flight = 0
        self._blocked_until = 0.0

    def before_send(self) -> None:
        """Wait until this call may go out, and count it as in flight; raise PaceTooLong
        (counting nothing) when it may not go within ``max_wait``."""
        with self._changed:
            while True:
                now = self._clock()
                free = self._concurrent is None or self._in_flight < max(
                    1, self._concurrent // self._workers()
                )
                plan = self._earliest(max(now, self._blocked_until)) if free else None
                if plan is not None:
                    break
                self._changed.wait(timeout=1.0)  # a call on its way back frees a place
            at, why = plan
            if why and at - now > self._max_wait:
                raise PaceTooLong(at, why)
            at = min(at, now + self._max_wait)  # a pace (not a limit) may be cut short
            self._in_flight += 1
            self._sending(at)
        if at > now:
            with waiting(self.on_wait, why, at - now):  # why "": a pace, or a server's word
                self._sleep(at - now)

    def after_answer(self, headers: Mapping[str, str] | None, *, counted: bool = True) -> None:
        """The call came back (``headers`` None: no answer); ``counted``: it used the budget."""
        with self._changed:
            self._in_flight = max(0, self._in_flight - 1)
            self._changed.notify_all()
            self._learn(headers, counted)

    def block_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (capped), e.g. after a 429 or a 503."""
        with self._changed:
            until = self._clock() + min(max(0.0, seconds), self._max_wait)
            self._blocked_until = max(self._blocked_until, until)

    def _workers(self) -> int:
        return max(1, self.share())

    def _share_of(self, calls: float) -> int:
        """This process's share of ``calls`` left to all the processes sharing the budget."""
        return int(calls) // self._workers()

    def throttled(self, headers: Mapping[str, str], now: float) -> tuple[float | None, str]:
        """After a 429: seconds to wait (None: not said) and the limit, in the product's words."""
        return _sane(retry_after(headers, now)), f"{self.product}'s rate limit is used up"

    # what the dialects change -----------------------------------------------------------------

    def _earliest(self, at: float) -> tuple[float, str] | None:
        """When the next call may go, not before ``at``, and the limit that holds it back ("" when
        none must: a wait it may shorten); None: wait for an answer first."""
        return at, ""

    def _sending(self, at: float) -> None:
        """A call goes out at ``at`` (under the lock)."""

    def _learn(self, headers: Mapping[str, str] | None, counted: bool) -> None:
        """What an answer says (under the lock)."""


def _alone() -> int:
    return 1


def _sane(seconds: float | None) -> float | None:
    return seconds if seconds is None or seconds <= LONGEST_WINDOW else None


# -- Procore -----------------------------------------------------------------------------------


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


class ProcorePacer(Pacer):
    """Procore's ``X-Rate-Limit-*``: each answer reports one window (the closer to exhaustion of
    the hourly and 10-second ones): its size (``-Limit``), the calls left (``-Remaining``) and its
    end (``-Reset``, Unix seconds). The pacer remembers every window it was told about (told
    apart by their size) and counts each later call against the ones the answer did not report.

    Before each call, for every window: while plenty is left, go at once; once the budget still
    free (remaining minus the calls already on their way) falls to ``pace_below``, spread the
    free calls evenly over the time until the reset; with nothing free, wait for the reset. When
    a window ends, a fresh one is assumed to hold its size: no more go out before an answer tells
    the new budget. The very first call goes alone, so that its answer tells the budget before
    any burst. A reset further away than two days is ignored as nonsense.
    """

    product = "Procore"

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait: float,
        reset_margin: float,
        pace_below: int,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep, max_wait=max_wait, reset_margin=reset_margin)
        self._pace_below = pace_below
        self._windows: dict[int | None, _Window] = {}
        self._answered = False  # until the first answer, calls go one at a time
        self._sent: deque[float] = deque()  # when the latest calls went out

    def throttled(self, headers: Mapping[str, str], now: float) -> tuple[float | None, str]:
        wait = _sane(retry_after(headers, now))
        reset = header_number(headers, "X-Rate-Limit-Reset")
        if reset is not None and now < reset <= now + LONGEST_WINDOW:
            wait = max(wait or 0.0, reset - now + self._reset_margin)
        return wait, "Procore's rate limit is used up (X-Rate-Limit-Remaining: 0)"

    def _earliest(self, at: float) -> tuple[float, str] | None:
        if not self._answered and self._in_flight > 0:
            return None
        margin = self._reset_margin
        for size, window in list(self._windows.items()):
            if window.reset_at is not None and at >= window.reset_at + margin:
                if size is None:
                    del self._windows[size]
                else:  # over: a fresh window of the same size began, maybe a little earlier
                    early = window.reset_at - RESET_GRANULARITY
                    sent = sum(1 for sent in self._sent if sent > early)
                    window.remaining = self._share_of(size) - sent
                    window.reset_at, window.told, window.opened_at = None, False, None
                    window.next_slot = 0.0
        spreading: list[tuple[_Window, float, int]] = []
        why = ""
        for window in self._windows.values():
            free = window.remaining - self._in_flight
            if window.reset_at is None:
                if free <= 0 < self._in_flight:
                    return None
            elif free <= 0:
                if window.reset_at + margin > at:
                    at, why = window.reset_at + margin, self._exhausted(window)
            elif free <= self._pace_below:
                at = max(at, window.next_slot)
                spreading.append((window, window.reset_at, free))
        for window, reset_at, free in spreading:
            window.next_slot = at + max(0.0, reset_at - at) / free
        return at, why

    @staticmethod
    def _exhausted(window: _Window) -> str:
        size = f" of {window.size} calls" if window.size is not None else ""
        return f"Procore's rate limit{size} is used up (X-Rate-Limit-Remaining: 0)"

    def _sending(self, at: float) -> None:
        self._sent.append(at)
        while self._sent and self._sent[0] < at - 2 * RESET_GRANULARITY - self._reset_margin:
            self._sent.popleft()
        for window in self._windows.values():
            if window.reset_at is None:  # this call opens a fresh window
                window.opened_at = at
                if window.length is not None:
                    window.reset_at, window.told = at + window.length, False

    def _learn(self, headers: Mapping[str, str] | None, counted: bool) -> None:
        self._answered = True
        reported = self._window_of(headers) if headers is not None else None
        if counted:
            for window in self._windows.values():
                if window is not reported:
                    window.remaining = max(0, window.remaining - 1)

    def _window_of(self, headers: Mapping[str, str]) -> _Window | None:
        """Update the window these headers describe; return it."""
        remaining = header_number(headers, "X-Rate-Limit-Remaining")
        reset = header_number(headers, "X-Rate-Limit-Reset")
        now = self._clock()
        if remaining is None or reset is None or reset + self._reset_margin <= now:
            return None  # nothing said, or about a window already over
        if reset > now + LONGEST_WINDOW:
            return None  # nonsense
        limit = header_number(headers, "X-Rate-Limit-Limit")
        size = int(limit) if limit is not None and limit >= remaining else None
        known = self._windows.get(size)
        if known is None:
            window = self._windows[size] = _Window(size, self._share_of(remaining), reset)
        elif not known.told or known.reset_at is None or reset > known.reset_at:
            length = known.length
            if not known.told and known.opened_at is not None and reset > known.opened_at:
                length = reset - known.opened_at  # we opened this window: now we know its length
            window = self._windows[size] = _Window(size, self._share_of(remaining), reset,
                                                   length=length)
        else:
            window = known
            if reset == known.reset_at:
                known.remaining = min(known.remaining, self._share_of(remaining))
        return window  # (an older answer about an earlier window changes nothing)


# -- rolling windows: Xero, QuickBooks Online --------------------------------------------------


@dataclass(slots=True, eq=False)
class _Call:
    sent: float
    done: float | None = None  # when its answer (or failure) came back


@dataclass(slots=True, eq=False)
class _Rolling:
    """One rolling window: a call counts against it until ``seconds`` after it arrived."""

    name: str  # in messages: "Xero's daily limit"
    seconds: float
    header: str | None = None  # the header reporting the calls left (None: never reported)
    limit: int | None = None  # the documented size, when no header reports what is left
    smooth: bool = False  # pace calls evenly through it (short windows; never a day's quota)
    remaining: int | None = None  # as last reported
    report: _Call | None = None  # the call whose answer reported it
    interval: float = 0.0  # the pace: seconds between calls (0: none)
    due: float = -math.inf  # when the next call is due at that pace


class RollingPacer(Pacer):
    """Rolling windows whose remaining calls a header reports (Xero) or whose size is documented
    and counted by the pacer itself (QuickBooks Online).

    The pacer keeps when each of its calls went out and came back. A server counts a call from
    its arrival, which is after the call went out and before its answer came back; so after an
    answer that left R calls, the calls on their way or sent since are taken off R, and each call
    that answer had counted is given back ``seconds`` (plus the margin) after its answer came.
    A call goes when at least one is free in every window; with none, when enough given-back
    calls free one. When nothing of its own can free one (someone else used the budget), it waits
    for a call still on its way, else until all the answer counted is over, then sends one call
    alone to learn the budget. Before the first answer calls go one at a time.

    So that no burst has to be paid back by waiting most of a window, calls are also paced
    through the short windows (``smooth``): a burst of a tenth of the window's size (at most
    ``pace_below``), then evenly at the rate the rest of it allows (the generic cell rate
    algorithm); in any stretch of a window's length that sends no more than the window holds.
    The size is the documented one, or the calls left plus the calls of this pacer an answer
    counted. The pace may be cut short by ``max_wait``; a limit may not.
    """

    def __init__(
        self,
        *,
        product: str,
        windows: list[_Rolling],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait: float,
        reset_margin: float,
        concurrent: int,
        pace_below: int,
        throttled_seconds: float | None = None,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep, max_wait=max_wait, reset_margin=reset_margin,
                         concurrent=concurrent)
        self._pace_below = pace_below
        self.product = product
        self._windows = windows
        self._throttled_seconds = throttled_seconds
        self._calls: deque[_Call] = deque()
        self._mine = threading.local()  # the call this thread sent and is waiting for
        self._longest = max(window.seconds for window in windows)

    def throttled(self, headers: Mapping[str, str], now: float) -> tuple[float | None, str]:
        wait = _sane(retry_after(headers, now))
        problem = (headers.get("X-Rate-Limit-Problem") or "").strip().lower()
        names = {"minute": "minute limit", "day": "daily limit", "daily": "daily limit",
                 "appminute": "app-wide minute limit", "concurrent": "limit of calls at once"}
        limit = names.get(problem, "rate limit")
        if wait is None and self._throttled_seconds is not None:
            wait = self._throttled_seconds
        return wait, f"{self.product}'s {limit} is used up"

    def _earliest(self, at: float) -> tuple[float, str] | None:
        while self._calls and self._calls[0].done is not None and (
            self._calls[0].done + self._longest + self._reset_margin <= at
        ):
            self._calls.popleft()
        limit_at, why, paced_at = at, "", at
        for window in self._windows:
            plan = self._next_in(window, at)
            if plan is None:
                return None
            when, size = plan
            if when > limit_at:
                limit_at, why = when, f"{self.product}'s {window.name} is used up"
            window.interval = 0.0
            if window.smooth and size > 0:
                burst = max(1, min(self._pace_below, size // 10))
                window.interval = window.seconds / max(1, size - burst)
                paced_at = max(paced_at, window.due - (burst - 1) * window.interval)
        return (paced_at, "") if paced_at > limit_at else (limit_at, why)

    def _next_in(self, window: _Rolling, at: float) -> tuple[float, int] | None:
        """When the window has a call free (None: wait for an answer), and its size."""
        margin, length = self._reset_margin, window.seconds
        report = window.report
        if report is not None and report.done is not None and (
            at >= report.done + length + margin
        ):
            window.remaining = window.report = report = None  # all it counted is over
        if window.remaining is not None and report is not None and report.done is not None:
            pending = sum(1 for call in self._calls if call is not report
                          and (call.done is None or call.done > report.sent))
            free = window.remaining - pending
            if free >= 1 and not window.smooth:
                return at, 0  # (the size matters only to a pace)
            back = sorted(
                call.done + length + margin for call in self._calls
                if call.done is not None and call.sent > report.done - length
                and (call is report or call.done <= report.sent)
            )
            size = window.remaining + len(back)
            if free >= 1:
                return at, size
            if 1 - free <= len(back):
                return max(at, back[-free]), size  # the (1 - free)-th given back
            if any(call.done is None for call in self._calls):
                return None
            return max(at, report.done + length + margin), size
        if window.limit is not None:
            limit = max(1, self._share_of(window.limit))
            busy = sorted(
                (call.done + length + margin if call.done is not None else math.inf)
                for call in self._calls
                if call.done is None or call.done + length + margin > at
            )
            if len(busy) < limit:
                return at, limit
            when = busy[len(busy) - limit]
            return None if when == math.inf else (when, limit)
        return None if any(call.done is None for call in self._calls) else (at, 0)

    def _sending(self, at: float) -> None:
        call = _Call(at)
        self._calls.append(call)
        self._mine.call = call
        for window in self._windows:
            if window.interval:
                window.due = max(window.due, at) + window.interval

    def _learn(self, headers: Mapping[str, str] | None, counted: bool) -> None:
        call: _Call | None = getattr(self._mine, "call", None)
        self._mine.call = None
        if call is None:
            return
        call.done = max(self._clock(), call.sent)
        if headers is None:
            return
        for window in self._windows:
            if window.header is None:
                continue
            remaining = header_number(headers, window.header)
            if remaining is None:
                continue
            if window.report is None or call.sent >= window.report.sent:
                window.remaining, window.report = self._share_of(remaining), call


def pacer_for(
    system: str,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    pace_below: int,
    reset_margin: float,
    max_wait: float,
    limits: Limits,
) -> Pacer:
    """The pacer for a client of ``system`` (``procore`` or an ERP product key)."""
    if system == "procore":
        return ProcorePacer(clock=clock, sleep=sleep, max_wait=max_wait,
                            reset_margin=reset_margin, pace_below=pace_below)
    if system == "xero":
        minute, day = limits.xero_minute_seconds, limits.xero_day_seconds
        windows = [
            _Rolling("minute limit", minute, header="X-MinLimit-Remaining", smooth=True),
            _Rolling("app-wide minute limit", minute, header="X-AppMinLimit-Remaining",
                     smooth=True),
            _Rolling("daily limit", day, header="X-DayLimit-Remaining"),
        ]
        return RollingPacer(product="Xero", windows=windows, clock=clock, sleep=sleep,
                            max_wait=max_wait, reset_margin=reset_margin,
                            concurrent=limits.xero_concurrent, pace_below=pace_below)
    if system == "qbo":
        window = _Rolling(f"limit of {limits.qbo_calls} requests in"
                          f" {limits.qbo_window_seconds:g} s", limits.qbo_window_seconds,
                          limit=limits.qbo_calls, smooth=True)
        return RollingPacer(product="QuickBooks Online", windows=[window],
                            throttled_seconds=limits.qbo_throttled_seconds, clock=clock,
                            sleep=sleep, max_wait=max_wait, reset_margin=reset_margin,
                            concurrent=limits.qbo_concurrent, pace_below=pace_below)
    pacer = Pacer(clock=clock, sleep=sleep, max_wait=max_wait, reset_margin=reset_margin)
    pacer.product = {"intacct": "Sage Intacct"}.get(system, system)
    return pacer
