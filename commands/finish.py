"""How the quick commands end: without the interpreter's teardown (targets P1, P1b).

``relink show 1`` does a few milliseconds of work after its start-up; then CPython's own
teardown, which clears every module of SQLAlchemy, pydantic, rich and the rest one by one and
collects what they held, would keep the shell waiting some 80 ms more. The commands that only
read and print (``show``, ``list``, ``audit log``, ``workflows``, ``config show``, every
``--help``) skip it: once the command has returned, its output is flushed, the exit handlers run
(:mod:`atexit`: logging, temporary files) and the process ends with :func:`os._exit`. They hold
nothing the teardown would finish: their database connection was closed by the command, and they
wrote nothing. Every other command ends the ordinary way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Sequence

from commands.help import GLOBAL_FLAGS, ROOT_VALUE_OPTIONS

# command paths that only read and print
QUICK = {("show",), ("list",), ("audit", "log"), ("workflows", "list"), ("workflows", "show"),
         ("workflows", "graph"), ("config", "show")}
_FLAGS = {flag for flag, _, _ in GLOBAL_FLAGS} | {"--version"}


def is_quick(argv: Sequence[str]) -> bool:
    """Whether the command line runs a command of :data:`QUICK`, or asks for help."""
    words = list(argv)
    if "--" in words:
        words = words[:words.index("--")]
    if "--help" in words:
        return True
    path: list[str] = []
    position = 0
    while position < len(words) and len(path) < 2:
        word = words[position]
        if word in ROOT_VALUE_OPTIONS and not path:
            position += 2  # --db URL, --config FILE
            continue
        if word.startswith("-"):
            if not path and word not in _FLAGS and "=" not in word:
                return False  # an option this module does not know: the ordinary way
            position += 1
            continue
        path.append(word)
        position += 1
    return any(tuple(path[:length]) in QUICK for length in (1, 2))


def leave(code: int) -> None:
    """End the process now with ``code``: output flushed, exit handlers run, no teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that left, a closed stream
            stream.flush()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is not None:
        run_exit_handlers()
    os._exit(code)
