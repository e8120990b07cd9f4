"""Rate limits, as each product applies them: Procore's windows, and each ERP in its own dialect.

**Procore** (``--rate-limit N/H``: N calls per H hours). Procore documents 3,600 requests an hour
per token (per company for a service account) and "shorter-term burst or spike limits" whose size
it does not publish (``procore/documentation``, ``api_essentials/rate_limiting.md``). The sandbox
plays both as fixed windows: the long one, and a 10-second spike window allowing the same average
rate, ``max(1, ceil(N * 10 / (H * 3600)))`` calls (**model**), so a client that paces itself to
the allowed rate never trips it and one that bursts does. Each window starts with the first call
after the previous one ended. Every answer carries ``X-Rate-Limit-Limit``,
``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` (Unix seconds) for the window closer to
exhaustion; a call over a limit gets 429 with those headers for the exhausted window, Procore's
message and ``Retry-After`` (seconds), and does not count. Without ``--rate-limit`` the windows
are :data:`GENEROUS` times Procore's documented figure (3,600,000 an hour, 10,000 per 10 s), so
tests, demos and benchmarks are never throttled while every answer still carries the headers.

**The ERP** (``--erp-rate-limit``, :func:`erp_limits`), counted apart from Procore, in the
product's own dialect. Its OAuth endpoints are not counted. Windows are rolling: a call counts
until ``seconds`` after it arrived.

* Xero (developer.xero.com, "API rate limits"; Xero's SDKs): per tenant 60 calls a minute, 5,000
  a day and 5 in progress; 10,000 a minute per app across tenants. Every answer carries
  ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining`` and ``X-AppMinLimit-Remaining``; over a
  limit: 429 with ``Retry-After`` (seconds) and ``X-Rate-Limit-Problem`` (``minute``, ``day``,
  ``appminute``; ``concurrent`` without ``Retry-After``), an empty body (**model**).
  ``--erp-rate-limit 60/min,5000/day``: the shorter window is the minute limit, the longer the
  daily one (one figure: the minute limit, the day keeps 5,000); the app-wide minute limit has the
  minute window's length.
* QuickBooks Online (developer.intuit.com, "API call limits and throttles"): 500 requests a minute
  and 10 at once per company (realm); no rate headers; over a limit: 429 with its Fault,
  ``{"Fault": {"Error": [{"Message": "message=ThrottleExceeded; errorCode=003001;
  statusCode=429", "Detail": "The request limit was reached.  Try again later", "code": "3001"}],
  "type": "SERVICE"}, "time"}`` and ``intuit_tid``. ``--erp-rate-limit 500/min``.
* Sage Intacct: limits calls in progress by performance tier and bills (does not block) volume
  beyond it; no rate headers. The sandbox plays one rolling window (**model**), refused with 429
  and its error shape, ``ia::error`` code ``GW-0010`` (**model**). ``--erp-rate-limit 100/min``.

Without ``--erp-rate-limit`` each figure is :data:`GENEROUS` times the documented one and nothing
caps the calls in progress. An injected ``429`` fault on an ERP call comes in the product's
dialect, with ``Retry-After: 1`` (the fault is momentary; QuickBooks Online and Sage Intacct do
not send the header themselves).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.wire import Response, json_response

SPIKE_WINDOW_SECONDS = 10.0
GENEROUS = 1000  # the default figures: this many times each product's documented ones
PROCORE_HOURLY = 3600  # documented: requests an hour per token
DAY = 86_400.0
MINUTE = 60.0
PROCORE_MESSAGE = (
    "You have surpassed the max number of requests for an hour."
    " Please wait until your limit resets."
)
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")
_PERIOD = re.compile(r"\s*(\d{1,9})\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*")
_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "m": MINUTE, "min": MINUTE, "minute": MINUTE,
    "h": 3600.0, "hour": 3600.0, "d": DAY, "day": DAY,
}


def parse_rate_limit(spec: str | tuple[int, float]) -> tuple[int, float]:
    """``"N/H"`` (N calls per H hours) → ``(N, window_seconds)``; tuples pass through."""
    if isinstance(spec, tuple):
        limit, seconds = spec
    else:
        match = _SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(f"rate limit must look like N/H (calls per hours), not {spec!r}")
        limit, seconds = int(match[1]), float(match[2]) * 3600
    if limit < 1 or not 0 < seconds < math.inf:
        raise ValueError("a rate limit needs at least one call in a positive window")
    return int(limit), float(seconds)


def parse_periods(spec: str) -> list[tuple[int, float]]:
    """``"60/min,5000/day"`` → ``[(60, 60.0), (5000, 86400.0)]``: calls per period, where a period
    is a unit (``s``, ``min``, ``h``, ``day``) with an optional count (``20/2s``); ValueError
    when malformed."""
    periods: list[tuple[int, float]] = []
    for part in spec.lower().split(","):
        match = _PERIOD.fullmatch(part)
        if match is None or match[3] not in _UNITS:
            raise ValueError(
                f"a limit must look like N/PERIOD (e.g. 60/min, 5000/day, 20/2s), not {part!r}"
            )
        calls, seconds = int(match[1]), float(match[2] or 1) * _UNITS[match[3]]
        if calls < 1 or not 0 < seconds <= 30 * DAY:
            raise ValueError(f"{part.strip()!r}: at least one call in a period of up to 30 days")
        periods.append((calls, seconds))
    return sorted(periods, key=lambda period: period[1])


# -- Procore: fixed windows --------------------------------------------------------------------


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
    """Procore's windows, per system; used from the server's event loop only."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.spike_limit = max(1, math.ceil(limit * SPIKE_WINDOW_SECONDS / window_seconds))
        self._clock = clock
        self._windows: dict[str, tuple[Window, Window]] = {}

    @classmethod
    def generous(cls, clock: Callable[[], float] = time.time) -> RateLimiter:
        """The default without ``--rate-limit``: GENEROUS times Procore's documented hour."""
        return cls(GENEROUS * PROCORE_HOURLY, 3600.0, clock)

    def reset(self) -> None:
        self._windows.clear()

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

    def refusal(self, headers: dict[str, str]) -> Response:
        """Procore's 429 with the headers :meth:`admit` gave."""
        return json_response(429, {"message": PROCORE_MESSAGE}, headers)

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        spike, long = self._for("procore")
        return {
            "product": "procore",
            "windows": [_fixed(name, window, now) for name, window in (("spike", spike),
                                                                       ("hour", long))],
        }


def _fixed(name: str, window: Window, now: float) -> dict[str, Any]:
    fresh = now >= window.start + window.seconds
    return {
        "name": name, "limit": window.limit, "seconds": window.seconds,
        "remaining": window.limit if fresh else window.remaining,
        "frees_at": None if fresh or window.remaining else window.start + window.seconds,
    }


# -- the ERPs: rolling windows -----------------------------------------------------------------


@dataclass(slots=True)
class Rolling:
    """At most ``limit`` calls in any ``seconds``: a call counts until ``seconds`` after it came."""

    name: str
    limit: int
    seconds: float
    _log: deque[list[float]] = field(default_factory=deque)  # [arrival, calls]
    _count: int = 0

    def prune(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.seconds:
            self._count -= int(self._log.popleft()[1])

    def remaining(self, now: float) -> int:
        self.prune(now)
        return max(0, self.limit - self._count)

    def add(self, now: float, calls: int = 1) -> None:
        if self._log and self._log[-1][0] == now:
            self._log[-1][1] += calls
        else:
            self._log.append([now, float(calls)])
        self._count += calls

    def exhaust(self, now: float) -> None:
        """Use up what is left, as calls made now."""
        left = self.remaining(now)
        if left:
            self.add(now, left)

    def frees_at(self, now: float) -> float:
        """When the next call would be admitted."""
        self.prune(now)
        excess = self._count - self.limit + 1
        if excess <= 0:
            return now
        for arrival, calls in self._log:
            excess -= int(calls)
            if excess <= 0:
                return arrival + self.seconds
        return now

    def clear(self) -> None:
        self._log.clear()
        self._count = 0

    def describe(self, now: float) -> dict[str, Any]:
        remaining = self.remaining(now)
        return {"name": self.name, "limit": self.limit, "seconds": self.seconds,
                "remaining": remaining, "frees_at": None if remaining else self.frees_at(now)}


class ErpLimits:
    """One ERP's windows and cap on calls in progress; subclasses speak the product's dialect.
    Used from the server's event loop only."""

    product = ""

    def __init__(
        self,
        windows: list[Rolling],
        concurrent: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.windows = windows
        self.concurrent = concurrent
        self.in_progress = 0
        self._clock = clock

    def admit(self) -> tuple[Response | None, dict[str, str]]:
        """Count one call: its refusal (None when admitted) and the headers of its answer. An
        admitted call is in progress until :meth:`done`."""
        now = self._clock()
        if self.concurrent is not None and self.in_progress >= self.concurrent:
            return self.refusal(None, 0, now), {}
        exhausted = [window for window in self.windows if window.remaining(now) == 0]
        if exhausted:
            window = max(exhausted, key=lambda window: window.frees_at(now))
            wait = max(1, math.ceil(window.frees_at(now) - now))
            return self.refusal(window, wait, now), {}
        for window in self.windows:
            window.add(now)
        self.in_progress += 1
        return None, self.headers(now)

    def done(self) -> None:
        self.in_progress = max(0, self.in_progress - 1)

    def injected(self) -> Response:
        """A momentary 429 (the ``429`` fault) in this dialect."""
        now = self._clock()
        window = self.windows[0] if self.windows else None
        return self.refusal(window, 1, now).with_headers({"Retry-After": "1"})

    def exhaust(self, name: str) -> None:
        """Use up the window called ``name`` (e.g. Xero's ``day``); KeyError when unknown."""
        by_name = {window.name: window for window in self.windows}
        by_name[name].exhaust(self._clock())

    def reset(self) -> None:
        for window in self.windows:
            window.clear()
        self.in_progress = 0

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        return {"product": self.product, "concurrent": self.concurrent,
                "in_progress": self.in_progress,
                "windows": [window.describe(now) for window in self.windows]}

    # the dialect ------------------------------------------------------------------------------

    def headers(self, now: float) -> dict[str, str]:
        """What every admitted answer carries."""
        return {}

    def refusal(self, window: Rolling | None, wait: int, now: float) -> Response:
        """The 429 for ``window`` (None: too many calls in progress), ``wait`` seconds."""
        raise NotImplementedError


class XeroLimits(ErpLimits):
    product = "xero"
    _HEADERS = (("day", "X-DayLimit-Remaining"), ("minute", "X-MinLimit-Remaining"),
                ("appminute", "X-AppMinLimit-Remaining"))

    def headers(self, now: float) -> dict[str, str]:
        by_name = {window.name: window for window in self.windows}
        return {header: str(by_name[name].remaining(now)) for name, header in self._HEADERS}

    def refusal(self, window: Rolling | None, wait: int, now: float) -> Response:
        headers = {**self.headers(now), "Xero-Correlation-Id": str(uuid.uuid4()),
                   "X-Rate-Limit-Problem": window.name if window is not None else "concurrent"}
        if window is not None:
            headers["Retry-After"] = str(wait)
        return Response(429, headers)


class QboLimits(ErpLimits):
    product = "qbo"

    def refusal(self, window: Rolling | None, wait: int, now: float) -> Response:
        error = {
            "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "Detail": "The request limit was reached.  Try again later",
            "code": "3001",
        }
        body = {"Fault": {"Error": [error], "type": "SERVICE"}, "time": _iso(now)}
        return json_response(429, body, {"intuit_tid": str(uuid.uuid4())})


class IntacctLimits(ErpLimits):
    product = "intacct"

    def refusal(self, window: Rolling | None, wait: int, now: float) -> Response:
        error_id = f"sandbox-{uuid.uuid4().hex[:12]}"
        body = {
            "ia::result": {"ia::error": {
                "code": "GW-0010",
                "message": "Too many requests for this company: the API rate limit was reached."
                           " Retry later.",
                "errorId": error_id,
                "additionalInfo": {"messageId": error_id, "placeholders": {}, "propertySet": {}},
                "supportId": "sandbox",
            }},
            "ia::meta": {"totalCount": 1, "totalSuccess": 0, "totalError": 1},
        }
        return Response(429, {"Content-Type": "application/json; charset=utf-8"},
                         json.dumps(body).encode("utf-8"))


def erp_limits(
    product: str, spec: str | None = None, clock: Callable[[], float] = time.time
) -> ErpLimits:
    """The ERP's limits: ``spec`` as ``--erp-rate-limit`` takes it, or the generous default;
    ValueError for a malformed spec or one the product does not have."""
    periods = parse_periods(spec) if spec is not None else None
    if product == "xero":
        if periods is not None and len(periods) > 2:
            raise ValueError("Xero has a minute and a daily limit: give one or two, e.g."
                             " 60/min,5000/day")
        minute, day = (60, MINUTE), (5000, DAY)
        if periods is None:
            minute, day = (GENEROUS * 60, MINUTE), (GENEROUS * 5000, DAY)
        elif len(periods) == 1:
            minute = periods[0]
        else:
            minute, day = periods[0], periods[1]
        app = (GENEROUS * 10_000 if periods is None else 10_000, minute[1])
        windows = [Rolling("minute", *minute), Rolling("appminute", *app), Rolling("day", *day)]
        return XeroLimits(windows, None if periods is None else 5, clock)
    if product in ("qbo", "intacct"):
        if periods is not None and len(periods) != 1:
            raise ValueError("give one limit, e.g. 500/min")
        documented = (500, MINUTE) if product == "qbo" else (100, MINUTE)
        window = periods[0] if periods is not None else (GENEROUS * documented[0], documented[1])
        if product == "qbo":
            return QboLimits([Rolling("minute", *window)], None if periods is None else 10, clock)
        return IntacctLimits([Rolling("window", *window)], None, clock)
    raise ValueError(f"no rate limits known for ERP {product!r}")


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
