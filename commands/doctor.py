"""``relink doctor``: the checks of :mod:`engine.doctor`, one line each with a fix for what is
amiss; exit 0 when none failed, else the highest exit code among the failed checks."""

from typing import Annotated, Any

import typer

from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    Root,
    console,
    emit_json,
    exit_code,
    guard,
    root,
)

_SHOWN = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red"),
          "skip": ("skip", "dim")}


def doctor(
    ctx: typer.Context,
    project: Annotated[int | None, typer.Option(
        "--project", help="Also check your levels in this project.", parser=I64)] = None,
    workflow: Annotated[str, typer.Option(
        "--workflow", help="Whose steps the permissions are checked for.",
    )] = DEFAULT_WORKFLOW,
) -> None:
    """Check the set-up: settings, database and schema, Procore (connection, identity,
    permissions), the ERP connection, the unlink mode and the clock; each check with a fix.

    Exit 0 when no check failed, else the highest exit code among the failed ones.

    Example: relink doctor --project 101
    """
    options = root(ctx)
    with guard(ctx):
        from commands.waiting import remote_waits
        from engine.doctor import diagnose

        checks = diagnose(lambda: options.settings, workflow=workflow, project_id=project,
                          on_wait=remote_waits(options))
    codes = [exit_code(check.error) for check in checks
             if check.status == "fail" and check.error is not None]
    code = max(codes, default=0)
    if options.json:
        emit_json({"checks": [_document(check) for check in checks], "exit_code": code})
    else:
        _show(options, checks, code)
    raise typer.Exit(code)


def _document(check: Any) -> dict[str, Any]:
    doc: dict[str, Any] = check.document()
    doc["exit_code"] = exit_code(check.error) if check.error is not None else None
    return doc


def _show(options: Root, checks: list[Any], code: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from engine.terminal import printable

    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in checks:
        word, style = _SHOWN[check.status]
        table.add_row(Text(word, style=style), check.name, Text(printable(check.detail)))
        if check.fix and check.status in ("fail", "warn"):
            table.add_row("", "", Text(printable(f"fix: {check.fix}"), style="cyan"))
    out = console(options)
    out.print(table)
    failed = [check.name for check in checks if check.status == "fail"]
    if failed:
        out.print(Text(printable(f"{len(failed)} check(s) failed: {', '.join(failed)}"
                                 f" (exit {code})."), style="bold red"))
    else:
        out.print(Text("Every check passed.", style="green"))
