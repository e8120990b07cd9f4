"""Long waits a person may notice (a rate limit's reset, Retry-After, a retry's backoff), told to
whoever drives the clients.

A client that is about to wait calls the policy's ``on_wait(what, seconds)`` hook and waits
inside the context manager it returns: ``what`` says in the remote system's terms what is
waited for (``Procore's rate limit of 3600 calls is used up (X-Rate-Limit-Remaining: 0)``),
``seconds`` how long the wait will be. The CLI shows a spinner for as long as the context
lasts; without a hook nothing is shown. The clients never import a user interface: the hook
comes in with the :class:`~integrations.http.RetryPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

WaitHook = Callable[[str, float], AbstractContextManager[object]]


def waiting(hook: WaitHook | None, what: str, seconds: float) -> AbstractContextManager[object]:
    """The context to wait ``seconds`` in: the hook's, or one that does nothing."""
    return nullcontext() if hook is None else hook(what, seconds)
