"""The root group: runs every command with relink's error handling, so that each ends in one
clear line and the right exit code, and with ``--json`` (before or after the command) in
exactly one JSON document on stdout, usage errors and ``--help`` included.

Only the standard library and Typer are imported at module level (``relink --help`` stays
fast).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from commands.app import emit_json, line, stderr
from commands.coercion import lighten
from commands.help import ROOT_VALUE_OPTIONS, Presented


class RelinkGroup(Presented, TyperGroup):
    """Runs commands with relink's error handling: one clear line, the right exit code; with
    ``--json`` (before or after the command) one JSON document on stdout, errors included."""

    json_requested = False  # set by main: whether the command line asks for --json

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.present(self.global_flags())

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        argv = kwargs["args"] if "args" in kwargs else args[0] if args else None
        argv = list(sys.argv[1:] if argv is None else argv)
        lighten(self, {str(word) for word in argv})  # no pydantic where none is needed
        as_json = self.json_requested = wants_json(argv)
        refuse_undecodable(argv, as_json=as_json)
        try:
            if as_json and "--help" in _options_part(argv):
                code = self._help_as_json(*args, **kwargs)
            else:
                code = super().main(*args, **kwargs)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            code = 130
            report_error(as_json, "Aborted.", code, prefix="")
        except BrokenPipeError:  # e.g. `relink audit export ... | head`: the reader left
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 0
        except typer.TyperException as exc:  # click's usage errors, as vendored by Typer
            if type(exc).__name__ == "NoArgsIsHelpError":  # `relink`, `relink audit`: help
                if not as_json:
                    print(exc.format_message())
                    sys.exit(0)
                exc = typer.BadParameter("missing command (relink --help lists them)")
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            option = getattr(exc, "option_name", None)
            if option in ROOT_VALUE_OPTIONS:  # `relink show 6 --db URL`
                message = (f"{option} is a global option: put it before the command"
                           f" (relink {option} ... COMMAND)")
            code = getattr(exc, "exit_code", 2)
            report_error(as_json, message, code)
        sys.exit(code if isinstance(code, int) else 0)

    def _help_as_json(self, *args: Any, **kwargs: Any) -> Any:
        """``relink --json ... --help``: the help text as ``{"help": ...}``."""
        import contextlib
        import io

        captured = io.StringIO()
        code: Any = 0
        with contextlib.redirect_stdout(captured):
            try:
                code = super().main(*args, **kwargs)
            except typer.Exit as exc:
                code = exc.exit_code
        emit_json({"help": captured.getvalue()})
        return code


def _options_part(argv: Sequence[object]) -> list[str]:
    """The arguments before ``--`` (after it every word is a value)."""
    words = [str(arg) for arg in argv]
    return words[:words.index("--")] if "--" in words else words


def wants_json(argv: Sequence[object]) -> bool:
    """Whether a command line asks for ``--json`` (before or after the command)."""
    return "--json" in _options_part(argv)


def report_error(as_json: bool, message: str, code: int, *, prefix: str = "Error: ") -> None:
    """An error before any command ran: one line on stderr and, with --json, the document."""
    if as_json:
        emit_json({"error": message, "exit_code": code})
    stderr(f"{prefix}{line(message)}")


def refuse_undecodable(argv: Sequence[object], *, as_json: bool = False) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates, which no database, HTTP body or
    audit entry can hold: relink's arguments are UTF-8 text (file names included)."""
    for position, arg in enumerate(argv, 1):
        try:
            str(arg).encode("utf-8")
        except UnicodeEncodeError:
            report_error(as_json, f"argument {position} is not UTF-8 text (a file name that is"
                         " not must be renamed first)", 2)
            sys.exit(2)
