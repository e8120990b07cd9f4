"""What every command shares: the root options in Typer's context, the error guard that maps
engine errors to exit codes, output (JSON, rich console, plain lines), the integer parsers and
the parsers of names with suggestions (:func:`known_step`, :func:`known_state`). The root group
that runs them all is :class:`commands.root.RelinkGroup`.

Only the standard library and Typer are imported here at module level; the engine (and through
it SQLModel, httpx, transitions) and rich are imported inside the functions that need them, so
``relink --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from commands.help import RelinkSubGroup, RelinkTyper

if TYPE_CHECKING:
    from rich.console import Console

    from engine.settings import Settings
    from workflows.unlinking import Waiter

EXIT_UNEXPECTED = 70

# What `start` corrects when --workflow is not given, and whose steps a bare [policy.<step>] names
# (relink ran only this workflow before it ran any)
DEFAULT_WORKFLOW = "subcontractor-invoice"


# the root options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    """The global options, as ``ctx.obj`` of every command; settings are read on first use."""

    db: str | None = None
    config: str | None = None
    json: bool = False
    no_color: bool = False
    debug: bool = False
    utc: bool = False

    @cached_property
    def settings(self) -> Settings:
        """The settings of this invocation, loaded once, when a command first needs them."""
        from engine.settings import load_settings

        return load_settings(db=self.db, config=self.config, default_workflow=DEFAULT_WORKFLOW)


def root(ctx: typer.Context) -> Root:
    """The root options of the running command (the defaults when no root callback ran)."""
    return ctx.ensure_object(Root)


def group(help_text: str) -> typer.Typer:
    """A command group: its help when called bare, relink's error handling from the root."""
    return RelinkTyper(cls=RelinkSubGroup, help=help_text, no_args_is_help=True,
                       rich_markup_mode=None)


# parsing -----------------------------------------------------------------------------------


def integer(low: int, high: int, beyond: str) -> Callable[[str], int]:
    """A parser for an integer argument or option: outside ``low..high`` is a usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise typer.BadParameter(f"{text} is beyond {beyond}")
        return value

    return parse


# Every integer argument and option is bounded to what the database holds (signed 64 bits), so
# an out-of-range id is a usage error (exit 2), not an overflow deep in a driver (exit 70).
I64 = integer(-(2**63), 2**63 - 1, "the signed 64-bit range")
# Ids a step records in the audit log stay within JSON's exact integers (RFC 8785/I-JSON), which
# the log's canonical form requires.
JSON_ID = integer(-(2**53 - 1), 2**53 - 1, "2^53, the largest id the audit log holds exactly")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'unlink'?"`` for the choice closest to ``word`` (any case), or ``""``
    when none is close."""
    import difflib

    folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean {folded[close[0]]!r}?" if close else ""


def known_step(text: str) -> str:
    """A parser for a step argument (``relink advance ID STEP``): a step of an installed
    workflow (in any case), else a usage error suggesting the closest (``unlnk``: did you mean
    'unlink'?). Whether the correction's own workflow has the step, the engine says."""
    from engine.reviews import vocabulary

    return one_of(text, vocabulary().steps, "a step of any workflow", "steps")


def known_state(text: str) -> str:
    """A parser for a state option (``relink list --state exported``): the state of an
    installed workflow spelled in any case, as the workflow spells it (``Exported``), else a
    usage error suggesting the closest."""
    from engine.reviews import vocabulary

    return one_of(text, vocabulary().states, "a state of any workflow", "states")


def one_of(text: str, names: Sequence[str], what: str, plural: str) -> str:
    """The name among ``names`` that ``text`` spells in any case, as ``names`` spell it, else a
    usage error: ``'unlnk' is not <what>; did you mean 'unlink'? (<plural>: ...)``."""
    found = next((name for name in names if name.casefold() == text.casefold()), None)
    if found is None:
        raise typer.BadParameter(f"{text!r} is not {what}{did_you_mean(text, names)}"
                                 f" ({plural}: {', '.join(names)})")
    return found


def usage(message: str) -> Exception:
    """A usage error (exit 2) for a check no parser makes."""
    from engine.errors import UsageError

    return UsageError(message)


# output ------------------------------------------------------------------------------------


def console(options: Root, *, stderr: bool = False) -> Console:
    from commands.layout import OperatorConsole

    return OperatorConsole(stderr=stderr, no_color=options.no_color or None, highlight=False,
                           soft_wrap=True, emoji=False, utc=options.utc)


def waiter(options: Root) -> Waiter:
    """How a step waits for a person (the operator's Unlink click in Procore): on a terminal, a
    spinner with the elapsed time; otherwise one line on stderr. Ctrl-C stops waiting."""
    from workflows.unlinking import poll

    def wait(what: str, done: Callable[[], bool], *, every: float, limit: float) -> bool:
        import time

        from engine.terminal import rich_safe

        err = console(options, stderr=True)
        if options.json or not err.is_terminal:
            stderr(f"Waiting: {what}. Checking every {every:g} s for up to {limit / 60:g} min;"
                   " Ctrl-C stops waiting.")
            return poll(what, done, every=every, limit=limit)
        from commands.waiting import muted

        started = time.monotonic()
        with muted(), err.status("", spinner="dots") as status:  # remote waits show no other

            def check() -> bool:
                elapsed = int(time.monotonic() - started)
                status.update(rich_safe(
                    f"Waiting {elapsed // 60}:{elapsed % 60:02d} for you: {what}."
                    " (Ctrl-C stops waiting)"
                ))
                return done()

            return poll(what, check, every=every, limit=limit)

    return wait


def stderr(text: str) -> None:
    """A line for a person on stderr, control characters shown visibly (engine.terminal)."""
    from engine.terminal import printable

    print(printable(text, newlines=True), file=sys.stderr)


def say(text: str) -> None:
    """A line for a person on stdout, control characters shown visibly (engine.terminal)."""
    from engine.terminal import printable

    print(printable(text, newlines=True))


def emit_json(document: object) -> None:
    import json

    from engine.terminal import terminal_safe_json

    text = json.dumps(document, ensure_ascii=False, default=str)
    sys.stdout.write(terminal_safe_json(text) + "\n")


def line(text: object) -> str:
    """Untrusted text for a one-line message: every control character (newlines too) visible."""
    from engine.terminal import printable

    return printable(text)


def first_line(text: str) -> str:
    """The first line of an unexpected error's text, shortened, control characters visible."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return line(first[:300])


# how an outcome looks: succeeded green, refused yellow, the remote system's own error (Procore's
# red message) and failures red
COLOURS = {"succeeded": "green", "refused": "yellow", "alert": "red", "failed": "red"}


def render_outcome(options: Root, outcome: Any) -> None:
    """A step command's result (an engine Outcome): its message, then what may come next."""
    render_document(options, outcome.document(), outcome.kind)


def render_document(options: Root, doc: dict[str, Any], tone: str) -> None:
    """The JSON document of a step command, or for people the message in the colour of its
    ``tone`` (a key of COLOURS), then the instance's state and next steps."""
    if options.json:
        emit_json(doc)
        return
    from rich.text import Text

    from engine.terminal import printable, rich_safe

    out = console(options)
    out.print(Text(printable(doc["message"], newlines=True), style=COLOURS.get(tone, "")))
    if "id" in doc:
        flight = doc.get("in_flight")
        text = f"Correction {doc['id']}: {doc['state']}"
        if flight:
            text += f" ({flight['step']} in flight)"
        out.print(rich_safe(text))
        if "Next:" not in doc["message"] and doc.get("next") is not None and not flight:
            out.print(rich_safe(f"Next: {', '.join(doc['next']) or 'none (finished)'}."))


# errors ------------------------------------------------------------------------------------


def exit_code(exc: Exception) -> int:
    """spec/cli.md's exit code of an engine error (the engine's errors carry none)."""
    from engine.errors import (
        Conflict,
        IntegrityError,
        Interrupted,
        Refused,
        StorageError,
        Unavailable,
        UsageError,
    )

    codes: tuple[tuple[type[Exception], int], ...] = (
        (UsageError, 2), (Refused, 1), (Unavailable, 3), (Conflict, 4),  # LeaseLost: a Conflict
        (IntegrityError, 5), (StorageError, 5), (Interrupted, 130),
    )
    return next((code for kind, code in codes if isinstance(exc, kind)), EXIT_UNEXPECTED)


def fail(options: Root, exc: Exception) -> NoReturn:
    """Map an engine error to its exit code; anything unexpected is one line and exit 70."""
    from engine.errors import EngineError

    if isinstance(exc, EngineError):
        code = exit_code(exc)
        if exc.workflow:
            tone = "failed" if exc.outcome == "failed" else "alert" if exc.alert else "refused"
            render_document(options, exc.workflow, tone)
        elif options.json:
            emit_json({"error": exc.message, "exit_code": code})
            stderr(f"Error: {line(exc.message)}")
        else:
            stderr(f"Error: {line(exc.message)}")
        raise typer.Exit(code)
    if options.debug:
        import traceback

        traceback.print_exception(exc)
    text = f"{type(exc).__name__}: {first_line(str(exc))}"
    if options.json:
        emit_json({"error": f"unexpected error: {text}", "exit_code": EXIT_UNEXPECTED})
    stderr(f"Unexpected error: {text} (use --debug for details)")
    raise typer.Exit(EXIT_UNEXPECTED)


# what Typer, Click and the reader of a pipe raise to end a command: theirs to handle
_PASSING = (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt, BrokenPipeError)


class Guard:
    """Around a use case: errors become exit codes, never tracebacks (:func:`guard`)."""

    def __init__(self, options: Root) -> None:
        self.options = options

    def __enter__(self) -> Root:
        return self.options

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, _PASSING):
            fail(self.options, exc)


def guard(ctx: typer.Context) -> Guard:
    """``with guard(ctx) as options:`` around a use case: errors become exit codes, never
    tracebacks; ``options`` are the root options (:class:`Root`)."""
    return Guard(root(ctx))
