"""Who relink acts as: ``login`` stores Procore credentials, ``whoami`` shows the user behind them
and the permissions relink will check."""

import sys
from typing import Annotated

import typer

from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    console,
    emit_json,
    guard,
    line,
    say,
    stderr,
    usage,
)


def login(
    ctx: typer.Context,
    client_credentials: Annotated[bool, typer.Option(
        "--client-credentials", help="Use the client-credentials grant (no browser).",
    )] = False,
    code: Annotated[str | None, typer.Option(
        "--code", metavar="CODE", help="The authorization code (asked for when not given).",
    )] = None,
) -> None:
    """Store Procore credentials (OAuth authorization code or client credentials), mode 0600."""
    with guard(ctx) as options:
        from engine.login import login as run_login

        def ask_code(url: str) -> str:
            stderr(f"Open this address, sign in to Procore and allow relink:\n\n  {url}\n")
            return prompt("Authorization code")

        doc = run_login(
            options.settings, client_credentials=client_credentials, code=code,
            ask_code=ask_code, ask_secret=lambda: prompt("Procore client secret", hidden=True),
        )
        if options.json:
            emit_json(doc)
            return
        who = f"{doc['name']} <{doc['login']}>" if doc["login"] else "Procore"
        say(f"Logged in to {line(who)}; credentials stored in {line(doc['credentials_file'])}"
            " (mode 0600).")
        if doc.get("warning"):
            stderr(f"Warning: could not read the user behind the token: {line(doc['warning'])}")


def prompt(text: str, *, hidden: bool = False) -> str:
    """Ask on standard input: on a terminal with typer's prompt (hidden input hidden), else one
    line read as is. Standard input closed, or at its end, is a usage error; Ctrl-C an abort."""
    noun = text if text.startswith("Procore") else text.lower()
    closed = usage(f"standard input closed before the {noun} was typed")
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise closed
    if not stdin.isatty():  # piped or redirected: no echo to hide, nothing for getpass to do
        print(f"{text}: ", end="", file=sys.stderr, flush=True)
        answer = stdin.readline()
        if not answer:
            print(file=sys.stderr)  # end the prompt's line
            raise closed
        return answer.rstrip("\r\n")
    try:
        return str(typer.prompt(text, hide_input=hidden, err=True))
    except typer.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            print(file=sys.stderr)
            raise closed from None
        raise


def whoami(
    ctx: typer.Context,
    project: Annotated[int | None, typer.Option(
        "--project", help="Also read this project's levels.", parser=I64)] = None,
    workflow: Annotated[str, typer.Option(
        "--workflow", help="Whose steps to check (`relink workflows list`).",
    )] = DEFAULT_WORKFLOW,
) -> None:
    """The Procore user behind the token and the permissions relink will check."""
    with guard(ctx) as options:
        from engine.app import connect_remotes
        from engine.identity import whoami as read_identity

        settings = options.settings
        doc = read_identity(connect_remotes(settings), settings, project, workflow=workflow)
        if options.json:
            emit_json(doc)
            return
        from commands.render import identity

        identity(console(options), doc)
