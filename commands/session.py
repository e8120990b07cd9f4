"""Who relink acts as: ``login`` stores Procore credentials (``--erp``: the ERP's), ``logout``
removes them, ``whoami`` shows the user behind them and the permissions relink will check."""

import sys
from typing import Annotated

import typer

from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    Root,
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
        "--code", metavar="CODE", help="The authorization code (asked for when not given);"
        " with --erp also the whole address the sign-in redirected to.",
    )] = None,
    erp: Annotated[bool, typer.Option(
        "--erp", help="Sign in to the ERP (RELINK_ERP) instead of Procore.",
    )] = False,
) -> None:
    """Store Procore credentials (OAuth authorization code or client credentials), mode 0600;
    with --erp, the ERP's (QuickBooks Online, Xero, Sage Intacct)."""
    with guard(ctx) as options:
        if erp:
            _login_erp(options, client_credentials=client_credentials, code=code)
            return
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


def _login_erp(options: Root, *, client_credentials: bool, code: str | None) -> None:
    from engine.login import erp_label, login_erp

    product = erp_label(options.settings)

    def ask_code(url: str) -> str:
        stderr(f"Open this address, sign in to {product} and allow relink:\n\n  {url}\n\n"
               "Then paste the address your browser was sent to (or just the code in it).")
        return prompt("Authorization code or address")

    doc = login_erp(
        options.settings, client_credentials=client_credentials, code=code, ask_code=ask_code,
        ask_secret=lambda: prompt(f"{product} client secret", hidden=True, noun="client secret"),
    )
    if options.json:
        emit_json(doc)
        return
    company = f" (company {doc['company']})" if doc["company"] else ""
    say(f"Signed in to {line(doc['product'] + company)}; credentials stored in"
        f" {line(doc['credentials_file'])} (mode 0600).")
    if doc.get("warning"):
        stderr(f"Warning: {line(doc['warning'])}")


def logout(
    ctx: typer.Context,
    erp: Annotated[bool, typer.Option(
        "--erp", help="Remove the ERP session (RELINK_ERP's) instead of Procore's.",
    )] = False,
) -> None:
    """Remove the stored Procore session (the credentials file `relink login` wrote); with
    --erp, the configured ERP's. The tokens stay valid at Procore or the ERP until they expire.

    Example: relink logout
    """
    with guard(ctx) as options:
        from engine.login import erp_label
        from engine.logout import logout as forget

        doc = forget(options.settings, erp=erp)
        if options.json:
            emit_json(doc)
            return
        who = erp_label(options.settings) if erp else "Procore"
        if doc["removed"]:
            say(f"Logged out of {line(who)}: removed {line(doc['credentials_file'])}.")
        else:
            say(f"No stored {line(who)} session ({line(doc['credentials_file'])} does not"
                " exist); nothing to remove.")
        if doc["token_variable_set"]:
            stderr(f"Warning: {doc['token_variable']} is still set in this environment and"
                   f" relink goes on using it: unset {doc['token_variable']}")


def prompt(text: str, *, hidden: bool = False, noun: str | None = None) -> str:
    """Ask on standard input: on a terminal with typer's prompt (hidden input hidden), else one
    line read as is. Standard input closed, or at its end, is a usage error; Ctrl-C an abort."""
    noun = noun or (text if text.startswith("Procore") else text.lower())
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
            if not hidden:  # getpass ends the prompt's line itself
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
        from commands.waiting import remote_waits
        from engine.app import connect_remotes
        from engine.identity import whoami as read_identity

        settings = options.settings
        remotes = connect_remotes(settings, on_wait=remote_waits(options))
        doc = read_identity(remotes, settings, project, workflow=workflow)
        if options.json:
            emit_json(doc)
            return
        from commands.render import identity

        identity(console(options), doc)
