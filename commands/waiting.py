"""What a command shows while the remote clients wait: a rate limit's reset, a ``Retry-After``, a
retry's backoff (integrations.waiting). On a terminal, a spinner on stderr counting the seconds
down and saying what is waited for::

    ⠋ Waiting 12 s: Procore's rate limit of 3600 calls is used up (X-Rate-Limit-Remaining: 0)

Piped, nothing: a wait only makes the command take longer. Waits shorter than
:data:`SHOWN_FROM` seconds pass unshown (a spinner that flickers says nothing).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from commands.app import Root, console

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.status import Status

    from integrations.waiting import WaitHook

SHOWN_FROM = 0.5  # seconds
_muted = 0  # spinners of another kind shown now (the wait for a person: commands.app.waiter)
_muted_lock = threading.Lock()


@contextmanager
def muted() -> Iterator[None]:
    """While another spinner is on the terminal, remote waits show none (two live displays on
    one terminal would overwrite each other)."""
    global _muted
    with _muted_lock:
        _muted += 1
    try:
        yield
    finally:
        with _muted_lock:
            _muted -= 1


def remote_waits(options: Root) -> WaitHook | None:
    """The hook the clients tell their waits to: a spinner when stderr is a terminal, else
    None (nothing shown)."""
    err = console(options, stderr=True)
    return Spinner(err) if err.is_terminal else None


class Spinner:
    """One spinner for every wait under way (clients may wait in several threads at once):
    shown while any lasts, naming the one that ends last."""

    def __init__(self, err: Console) -> None:
        self._console = err
        self._lock = threading.Lock()  # the waits (taken while the spinner renders)
        self._display = threading.Lock()  # starting and stopping it; never while rendering
        self._waits: dict[object, tuple[str, float]] = {}  # what, when it ends (monotonic)
        self._status: Status | None = None

    def __call__(self, what: str, seconds: float) -> AbstractContextManager[object]:
        if seconds < SHOWN_FROM or _muted:
            return nullcontext()
        return self._shown(what, seconds)

    @contextmanager
    def _shown(self, what: str, seconds: float) -> Iterator[None]:
        key = object()
        with self._display:
            with self._lock:
                self._waits[key] = (what, time.monotonic() + seconds)
            if self._status is None:
                countdown = _Countdown(self)
                self._status = self._console.status(countdown, spinner="dots")
                self._status.start()
                self._status.update(countdown, spinner="dots")  # drawn now, not at a refresh
        try:
            yield
        finally:
            with self._display:
                with self._lock:
                    del self._waits[key]
                    idle = not self._waits
                if idle and self._status is not None:
                    self._status.stop()
                    self._status = None

    def line(self) -> str:
        """What the spinner says now."""
        with self._lock:
            waits = list(self._waits.values())
        if not waits:
            return ""
        what, until = max(waits, key=lambda wait: wait[1])
        left = max(0, math.ceil(until - time.monotonic()))
        more = f" (and {len(waits) - 1} more)" if len(waits) > 1 else ""
        return f"Waiting {left} s: {what}{more}"


class _Countdown:
    """The spinner's text, computed afresh at each refresh."""

    def __init__(self, spinner: Spinner) -> None:
        self._spinner = spinner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        from engine.terminal import printable

        yield Text(printable(self._spinner.line()), no_wrap=True, overflow="ellipsis")
