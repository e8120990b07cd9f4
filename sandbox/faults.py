"""Injected faults: which share of API calls fails, and how.

``POST /_sandbox/faults`` with ``{"rate": 0.3, "kinds": [...], "seed": 7}`` (optionally
``"timeout_seconds"``) replaces the plan; ``rate`` 0 turns faults off. A seeded random generator
(seed 0 when none is given) decides, call by call and before the call is handled, so a faulted call
changes nothing. The kinds:

=========== ==================================================================================
``500``     500 with an error body
``503``     503 with ``Retry-After: 1``
``429``     429 with the rate-limit headers and ``Retry-After: 1``
``timeout`` no answer for ``timeout_seconds`` (default 3 s, longer than clients wait), then 504
``reset``   the connection is dropped in the middle of the answer (a transport error)
``garbage`` 200 with a body that is not JSON
=========== ==================================================================================

The sandbox's call log records faulted calls with their status, 0 for ``timeout`` and ``reset``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.wire import JSON_TYPE, Response, json_response

FAULT_KINDS = ("500", "503", "429", "timeout", "reset", "garbage")
DEFAULT_TIMEOUT_SECONDS = 3.0
GARBAGE_BODY = b'{"data": [{"id": 9001, "status": "appro'  # cut short: not JSON


@dataclass(frozen=True, slots=True)
class FaultSettings:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], current: FaultSettings) -> FaultSettings:
        """Settings from a ``POST /_sandbox/faults`` body; raises ValueError when malformed."""
        rate = payload.get("rate", 0.0)
        kinds = payload.get("kinds", list(FAULT_KINDS))
        seed = payload.get("seed", 0)
        timeout = payload.get("timeout_seconds", current.timeout_seconds)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("rate must be a number from 0 to 1")
        if not isinstance(kinds, list) or not kinds or any(k not in FAULT_KINDS for k in kinds):
            raise ValueError(f"kinds must be a non-empty list drawn from {list(FAULT_KINDS)}")
        if isinstance(seed, bool) or not isinstance(seed, int | None):
            raise ValueError("seed must be an integer")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError("timeout_seconds must be a non-negative number")
        return cls(float(rate), tuple(kinds), seed or 0, float(timeout))

    def as_payload(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": list(self.kinds),
            "seed": self.seed,
            "timeout_seconds": self.timeout_seconds,
        }


class FaultPlan:
    """Draws the fault (or none) for each API call; not thread-safe (the world locks it)."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)

    def draw(self) -> str | None:
        if self.settings.rate <= 0 or self._random.random() >= self.settings.rate:
            return None
        return self._random.choice(self.settings.kinds)


def fault_response(kind: str, rate_headers: Mapping[str, str]) -> Response:
    """The answer for the kinds that answer at all (``500``, ``503``, ``429``, ``garbage``)."""
    if kind == "503":
        return json_response(
            503, {"message": "Service temporarily unavailable (injected)"}, {"Retry-After": "1"}
        )
    if kind == "429":
        # A momentary limit: the window resets in a second, whatever the configured limit is.
        headers = {
            "X-Rate-Limit-Limit": rate_headers.get("X-Rate-Limit-Limit", "3600"),
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(math.ceil(time.time()) + 1),
            "Retry-After": "1",
        }
        return json_response(429, {"message": "Too many requests (injected)"}, headers)
    if kind == "garbage":
        return Response(200, {"Content-Type": JSON_TYPE}, GARBAGE_BODY)
    return json_response(500, {"message": "Internal server error (injected)"})
