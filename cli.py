"""relink's command line: the root app, its global options and its commands.

The commands live in :mod:`commands` (one module per group); each parses, calls one use case,
renders and maps errors to exit codes (:mod:`commands.app`). Imports of the engine (and through
it SQLModel, httpx, transitions) are lazy, so that ``relink --version`` and ``--help`` stay fast.
"""

import sys
from typing import Annotated

import typer

from commands import batch, corrections, session
from commands.app import Root, emit_json
from commands.audit import audit_app
from commands.config import config_app
from commands.doctor import doctor
from commands.help import RelinkTyper
from commands.root import RelinkGroup
from commands.sandbox import demo, sandbox_app
from commands.workflows import workflows_app

__version__ = "0.1.0"

HELP = "Guarded, audited corrections of Procore invoices and commitments exported to an ERP."

app = RelinkTyper(cls=RelinkGroup, help=HELP, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=True)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        if getattr(ctx.command, "json_requested", False):
            emit_json({"version": __version__})
        else:
            print(f"relink {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="URL", help="Database URL (env RELINK_DATABASE_URL).")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", metavar="FILE", help="Config file (env RELINK_CONFIG).")] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print exactly one JSON document on stdout, errors included (here or"
        " after the command).")] = False,
    utc: Annotated[bool, typer.Option(
        "--utc", help="Show times in UTC; on a terminal they are local times (piped: UTC).",
    )] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (env NO_COLOR).")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks of unexpected errors.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Guarded, audited corrections of Procore invoices and commitments exported to an ERP."""
    # the options only: settings are read when a command first asks for them (Root.settings)
    ctx.obj = Root(db=db, config=config, json=json_output, no_color=no_color, debug=debug,
                   utc=utc)


app.command()(corrections.init)
app.command()(corrections.start)
app.command()(corrections.advance)
app.command()(corrections.resume)
app.command()(corrections.abandon)
app.command()(corrections.approve)
app.command()(corrections.approvals)
app.command()(corrections.show)
app.command("list")(corrections.list_)
app.command()(session.login)
app.command()(session.whoami)
app.command()(session.logout)
app.command()(doctor)
app.command()(demo)
app.command()(batch.invoices)
app.add_typer(batch.batch_app, name="batch")
app.add_typer(audit_app, name="audit")
app.add_typer(workflows_app, name="workflows")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:  # the fast path: no command tree needed
        print(f"relink {__version__}")
        return
    from commands.finish import is_quick, leave

    quick = is_quick(sys.argv[1:])  # read-only: ends without the interpreter's teardown
    try:
        app(prog_name="relink")
    except SystemExit as done:
        if quick and (done.code is None or isinstance(done.code, int)):
            leave(done.code or 0)
        raise
    if quick:
        leave(0)


if __name__ == "__main__":
    main()
