"""What a caller may ask of every send: a hook run just before a request leaves the machine,
and an account of whether a write may have reached the remote system.

The engine uses it to keep the lease of a step in flight (``before_send`` renews or refuses) and
to know whether it may release a failed step (``maybe_landed``). It is request-scoped through a
context variable, so clients need no extra parameter; no httpx here, so the engine may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol


class SendGuard(Protocol):
    def before_send(self, *, write: bool, seconds: float) -> None:
        """Called right before a request is sent; ``seconds`` is the longest the exchange may
        take (the client's timeouts). Raising stops the request from being sent. From here until
        :meth:`settled`, a write counts as possibly sent."""

    def settled(self, *, changed: bool | None) -> None:
        """What became of the write announced last: ``False``, it provably changed nothing (never
        left the machine, or answered 4xx, 429 or 503); ``True``, it was answered otherwise (a
        success, or a 5xx that does not say it was not processed); ``None``, it left the machine
        and was never answered (timed out, connection dropped)."""


_GUARD: ContextVar[SendGuard | None] = ContextVar("relink_send_guard", default=None)


def current() -> SendGuard | None:
    return _GUARD.get()


@contextlib.contextmanager
def guarded(guard: SendGuard) -> Iterator[SendGuard]:
    """Run the block with ``guard`` watching every send."""
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)
