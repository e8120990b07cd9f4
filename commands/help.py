"""How relink's commands present themselves and which flags they take anywhere.

- Usage lines and option lists name values by what they are (``ID``, ``FILE``,
  ``table|json|jsonl|csv``), never by Typer's type labels (``{ID}``, ``ID <int>``, ``<str>``).
- Every command's help ends with an **Examples** section: the ``Example:`` paragraph of its
  docstring, else its epilog, else its line in :data:`EXAMPLES` (commands whose docstring gives
  none).
- The root's flags (:data:`GLOBAL_FLAGS`: ``--json``, ``--utc``, ``--no-color``, ``--debug``) are
  accepted after the command too (``relink show 6 --json``): each command and group gets them as
  options of its own that set the root options in Typer's context (:class:`commands.app.Root`).

Only the standard library and Typer are imported here, so ``relink --help`` stays fast.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# (flag, field of commands.app.Root, help): accepted before the command and after it
GLOBAL_FLAGS = (
    ("--json", "json", "Print exactly one JSON document on stdout (errors too)."),
    ("--utc", "utc", "Show times in UTC (on a terminal they are local times)."),
    ("--no-color", "no_color", "No colour (env NO_COLOR)."),
    ("--debug", "debug", "Show tracebacks of unexpected errors."),
)
# the root's options that take a value: before the command only
ROOT_VALUE_OPTIONS = ("--db", "--config")

# The examples of the groups, and of the commands whose docstring has no ``Example:``
# paragraph (those written elsewhere), by command path.
EXAMPLES = {
    "": 'relink start 9001 --project 101 --reason "wrong invoice number"\n'
        "relink advance 1 delete-in-erp\nrelink show 1",
    "init": "relink init",
    "start": 'relink start 9001 --project 101 --reason "Exported with the wrong invoice number"\n'
             'relink start --workflow commitment 6001 --project 101 --reason "wrong vendor"',
    "resume": "relink resume 1",
    "show": "relink show 1",
    "list": "relink list --state Exported --project 101 --stale 4h",
    "login": "relink login\nrelink login --client-credentials\nrelink login --erp",
    "whoami": "relink whoami --project 101",
    "demo": "relink demo --erp xero",
    "audit": "relink audit log --invoice 9001 --verbose",
    "audit report": "relink audit report --invoice 9001 --out report.html",
    "batch": "relink batch show 1",
    "workflows": "relink workflows show subcontractor-invoice",
    "sandbox": "relink sandbox serve --erp qbo --auto-unlink",
    "sandbox serve": "relink sandbox serve --port 8765 --erp xero --latency-ms 50",
    "config": "relink config allow",
    "config allow": "relink config allow",
    "config deny": "relink config deny ./relink.toml",
}

# how an option's value is named when its declaration names none, by option then by type
_ID_OPTIONS = ("--project", "--workflow", "--invoice")


def _metavar(param: _click.Parameter) -> str | None:
    """The name of ``param``'s value in help: its own metavar, else one made from its type."""
    if param.metavar is not None:
        return param.metavar
    if isinstance(param, TyperArgument):
        return (param.name or "value").upper()
    if not isinstance(param, TyperOption) or param.is_flag or param.count:
        return None
    described = param.type_descriptor
    if described.is_choice:
        return "|".join(str(choice) for choice in described.choices or ())
    kind = described.annotation
    if kind is int:
        return "ID" if param.opts[0] in _ID_OPTIONS else "N"
    if kind is float:
        return "NUMBER"
    if isinstance(kind, type) and issubclass(kind, Path):
        return "FILE"
    return "TEXT"


def _set_flag(field: str) -> Callable[[_click.Context, _click.Parameter, bool], None]:
    def given(ctx: _click.Context, param: _click.Parameter, value: bool) -> None:
        if value:
            from commands.app import Root

            found = ctx.find_object(Root) or Root()
            ctx.obj = dataclasses.replace(found, **{field: True})  # type: ignore[arg-type]

    return given


def _copies_of(flags: list[_click.Parameter]) -> list[_click.Parameter]:
    """The root's global flags (``flags``) as options of a command: hidden from its option
    list (its help names them once), setting the root options when given."""
    fields = {flag: field for flag, field, _ in GLOBAL_FLAGS}
    copies = []
    for flag in flags:
        twin = copy.copy(flag)
        twin.callback = _set_flag(fields[flag.opts[0]])
        twin.expose_value = False
        twin.hidden = True  # type: ignore[attr-defined]
        copies.append(twin)
    return copies


def _examples(command: _click.Command, ctx: _click.Context) -> tuple[str, str]:
    """``command``'s help without its ``Example:`` paragraphs, and its example lines."""
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    kept, found = [], []
    for paragraph in text.split("\n\n"):
        head, _, rest = paragraph.partition(":")
        if head.strip() in ("Example", "Examples"):
            found += [line.strip() for line in rest.strip().splitlines() if line.strip()]
        else:
            kept.append(paragraph)
    if not found and command.epilog:
        found = inspect.cleandoc(command.epilog).splitlines()
    if not found:
        path = ctx.command_path.split(" ", 1)[1] if " " in ctx.command_path else ""
        found = EXAMPLES.get(path, "").splitlines()
    return "\n\n".join(kept), "\n".join(found)


def example_of(command: _click.Command, path: str) -> str:
    """The example lines ``relink PATH --help`` ends with (for tests and docs)."""
    ctx = _click.Context(command, info_name=f"relink {path}".strip())
    return _examples(command, ctx)[1]


class Presented:
    """What relink's commands and groups share: the global flags accepted after the command
    name, and help without type labels, ending with examples."""

    params: list[_click.Parameter]

    def present(self, flags: list[_click.Parameter]) -> None:
        """Name every value in help (:func:`_metavar`) and take the root's global ``flags``,
        here and in every command below."""
        for param in self.params:
            if isinstance(param, TyperArgument | TyperOption):
                param.metavar = _metavar(param)
        taken = {opt for param in self.params for opt in param.opts}
        self.params += _copies_of([flag for flag in flags if flag.opts[0] not in taken])
        for command in getattr(self, "commands", {}).values():
            if isinstance(command, Presented):
                command.present(flags)

    def global_flags(self) -> list[_click.Parameter]:
        """This command's own options among :data:`GLOBAL_FLAGS` (the root's)."""
        names = {flag for flag, _, _ in GLOBAL_FLAGS}
        return [param for param in self.params if param.opts and param.opts[0] in names]

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        command: Any = self
        pieces = [command.options_metavar] if command.options_metavar else []
        for param in command.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = _metavar(param) or "ARG"
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        if getattr(command, "subcommand_metavar", None):
            pieces.append(command.subcommand_metavar)
        return pieces

    def format_help_text(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        text, _ = _examples(self, ctx)  # type: ignore[arg-type]
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)

    def format_options(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        command: Any = self
        arguments, options = [], []
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                text = record[1].replace("[required]", "").replace("[]", "").strip()
                arguments.append((_metavar(param) or "ARG", text))
            else:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)
        if ctx.parent is not None:
            with formatter.section("Global options"):
                flags = [flag for flag, _, _ in GLOBAL_FLAGS]
                formatter.write_text(
                    f"{', '.join(flags[:-1])} and {flags[-1]} here or before the command;"
                    f" {' and '.join(ROOT_VALUE_OPTIONS)} before it (relink --help)."
                )
        format_commands = getattr(self, "format_commands", None)
        if format_commands is not None:
            format_commands(ctx, formatter)

    def format_epilog(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        _, examples = _examples(self, ctx)  # type: ignore[arg-type]
        if examples:
            with formatter.section("Examples"):
                formatter.write_text("\b\n" + examples)


class RelinkCommand(Presented, TyperCommand):
    """A relink command (see :class:`Presented`)."""


class RelinkSubGroup(Presented, TyperGroup):
    """A group of relink commands (``audit``, ``workflows``...): its help when called bare."""


class RelinkTyper(typer.Typer):
    """A Typer app whose commands are :class:`RelinkCommand` unless told otherwise."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["cls"] = kwargs.get("cls") or RelinkCommand
        return super().command(*args, **kwargs)
