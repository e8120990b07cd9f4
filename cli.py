"""relink's command line: parse, call one use case, render, map errors to exit codes.

Imports of the engine (and through it SQLModel, httpx, transitions) are lazy, so that
``relink --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

__version__ = "0.1.0"

EXIT_UNEXPECTED = 70


def _integer(low: int, high: int, beyond: str) -> Any:
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
I64: dict[str, Any] = {"parser": _integer(-(2**63), 2**63 - 1, "the signed 64-bit range")}
# Ids a step records in the audit log stay within JSON's exact integers (RFC 8785/I-JSON), which
# the log's canonical form requires.
JSON_ID: dict[str, Any] = {
    "parser": _integer(-(2**53 - 1), 2**53 - 1, "2^53, the largest id the audit log holds exactly")
}


class RelinkGroup(TyperGroup):
    """Runs commands with relink's error handling: one clear line, the right exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        argv = kwargs["args"] if "args" in kwargs else args[0] if args else None
        _refuse_undecodable(sys.argv[1:] if argv is None else argv)
        try:
            code = super().main(*args, **kwargs)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            _stderr("Aborted.")
            code = 130
        except BrokenPipeError:  # e.g. `relink audit export ... | head`: the reader left
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 0
        except typer.TyperException as exc:  # click's usage errors, as vendored by Typer
            if type(exc).__name__ == "NoArgsIsHelpError":  # `relink audit`: help, then 1 line
                print(exc.format_message())
                _stderr("Error: missing command (the commands are listed above)")
                sys.exit(2)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            _stderr(f"Error: {_line(message)}")
            code = getattr(exc, "exit_code", 2)
        sys.exit(code if isinstance(code, int) else 0)


def _refuse_undecodable(argv: Any) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates, which no database, HTTP body or
    audit entry can hold: relink's arguments are UTF-8 text (file names included)."""
    for position, arg in enumerate(argv, 1):
        try:
            str(arg).encode("utf-8")
        except UnicodeEncodeError:
            _stderr(f"Error: argument {position} is not UTF-8 text (a file name that is not"
                    " must be renamed first)")
            sys.exit(2)


app = typer.Typer(
    cls=RelinkGroup,
    help="Guarded, audited correction of Procore subcontractor invoices exported to an ERP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
audit_app = typer.Typer(cls=TyperGroup, help="Query, verify, sign and export the audit log.",
                        no_args_is_help=True)
workflows_app = typer.Typer(cls=TyperGroup, help="Workflow definitions and their diagrams.",
                            no_args_is_help=True)
sandbox_app = typer.Typer(cls=TyperGroup, help="The local Procore + ERP simulator.",
                          no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(workflows_app, name="workflows")
config_app = typer.Typer(cls=TyperGroup, help="Allow a ./relink.toml to set what only a "
                         "trusted config file may.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")


@dataclass
class Options:
    db: str | None = None
    config: str | None = None
    json: bool = False
    no_color: bool = False
    debug: bool = False

    def settings(self) -> Any:
        from engine.settings import load_settings

        return load_settings(db=self.db, config=self.config)


OPTIONS = Options()


def _version(value: bool) -> None:
    if value:
        print(f"relink {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    db: str | None = typer.Option(None, "--db", metavar="URL",
                                   help="Database URL (env RELINK_DATABASE_URL)."),
    config: str | None = typer.Option(None, "--config", metavar="FILE",
                                       help="Config file (env RELINK_CONFIG)."),
    json_output: bool = typer.Option(False, "--json", help="Print exactly one JSON document."),
    no_color: bool = typer.Option(False, "--no-color", help="No colour (env NO_COLOR)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Guarded, audited correction of Procore subcontractor invoices exported to an ERP."""
    OPTIONS.db, OPTIONS.config, OPTIONS.json = db, config, json_output
    OPTIONS.no_color, OPTIONS.debug = no_color, debug


# output ------------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, no_color=OPTIONS.no_color or None, highlight=False,
                   soft_wrap=True, emoji=False)


def _stderr(line: str) -> None:
    """A line for a person on stderr, control characters shown visibly (engine.terminal)."""
    from engine.terminal import printable

    print(printable(line, newlines=True), file=sys.stderr)


def _say(line: str) -> None:
    """A line for a person on stdout, control characters shown visibly (engine.terminal)."""
    from engine.terminal import printable

    print(printable(line, newlines=True))


def _emit_json(document: Any) -> None:
    import json

    from engine.terminal import terminal_safe_json

    text = json.dumps(document, ensure_ascii=False, default=str)
    sys.stdout.write(terminal_safe_json(text) + "\n")


STYLES = {"success": "green", "error": "red", "refusal": "yellow", "failed": "red"}


def _render_outcome(doc: dict[str, Any]) -> None:
    """A step command's result: the message in its colour, then what may come next."""
    if OPTIONS.json:
        _emit_json({k: v for k, v in doc.items() if k != "style"})
        return
    from rich.text import Text

    from engine.terminal import printable, rich_safe

    console = _console()
    style = doc.get("style") or ("failed" if doc.get("outcome") == "failed" else "refusal")
    if doc.get("outcome") == "succeeded" and style == "refusal":
        style = "success"
    console.print(Text(printable(doc["message"], newlines=True), style=STYLES.get(style, "")))
    if "id" in doc:
        flight = doc.get("in_flight")
        line = f"Correction {doc['id']}: {doc['state']}"
        if flight:
            line += f" ({flight['step']} in flight)"
        console.print(rich_safe(line))
        if "Next:" not in doc["message"] and doc.get("next") is not None and not flight:
            console.print(rich_safe(f"Next: {', '.join(doc['next']) or 'none (finished)'}."))


def _fail(exc: Exception) -> NoReturn:
    """Map an engine error to its exit code; anything unexpected is one line and exit 70."""
    from engine.errors import EngineError

    if isinstance(exc, EngineError):
        if exc.workflow:
            _render_outcome(exc.workflow | {"style": exc.style if exc.outcome == "refused"
                                            else "failed"})
        elif OPTIONS.json:
            _emit_json({"error": exc.message, "exit_code": exc.exit_code})
            _stderr(f"Error: {_line(exc.message)}")
        else:
            _stderr(f"Error: {_line(exc.message)}")
        raise typer.Exit(exc.exit_code)
    if OPTIONS.debug:
        import traceback

        traceback.print_exception(exc)
    _stderr(f"Unexpected error: {type(exc).__name__}: {_safe(str(exc))} (use --debug for details)")
    raise typer.Exit(EXIT_UNEXPECTED)


def _usage(message: str) -> Exception:
    from engine.errors import UsageError

    return UsageError(message)


def _safe(text: str) -> str:
    """The first line of an unexpected error's text, shortened, control characters visible."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _line(first[:300])


def _line(text: object) -> str:
    """Untrusted text for a one-line message: every control character (newlines too) visible."""
    from engine.terminal import printable

    return printable(text)


class _Guard:
    """``with _guard():`` around a use case: errors become exit codes, never tracebacks."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        passing = (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt,
                   BrokenPipeError)
        if exc is None or isinstance(exc, passing):
            return False
        if isinstance(exc, Exception):
            _fail(exc)
        return False


_guard = _Guard


def _service() -> Any:
    from engine.app import correction_service

    return correction_service(OPTIONS.settings())


# corrections -------------------------------------------------------------------------------


@app.command()
def init() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    with _guard():
        from engine.app import open_database
        from engine.db import redact

        with closing(open_database(OPTIONS.settings(), check=False)) as db:
            before, after = db.upgrade()
        doc = {"database": redact(db.url), "from": before, "to": after}
        if OPTIONS.json:
            _emit_json(doc)
        elif before == after:
            _say(f"Schema already at {after} ({_line(doc['database'])}).")
        else:
            _say(f"Schema {'created' if before is None else 'upgraded'} at {after}"
                 f" ({_line(doc['database'])}).")


@app.command()
def start(
    invoice_id: int = typer.Argument(..., help="The Procore invoice (requisition) id.",
                                     **JSON_ID),
    project: int = typer.Option(..., "--project", help="The Procore project id.", **JSON_ID),
    reason: str = typer.Option(..., "--reason", help="Why this invoice is being corrected."),
) -> None:
    """Start a correction of an exported invoice; prints its id."""
    with _guard():
        if not reason.strip():
            raise _usage("--reason must not be empty")
        with closing(_service()) as service:
            _render_outcome(service.start(invoice_id, project, reason))


@app.command()
def advance(
    workflow_id: int = typer.Argument(..., metavar="ID", help="The correction id.", **JSON_ID),
    step: str = typer.Argument(..., help="delete-in-erp, confirm-erp-deletion, unlink, "
                               "delete-in-procore, reenter or cancel."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
    data: Path | None = typer.Option(None, "--data", help="JSON or TOML file of corrected "
                                     "requisition fields (reenter)."),
) -> None:
    """Run one step of a correction."""
    with _guard():
        from engine.datafile import read_data_file

        fields = read_data_file(data) if data is not None else None
        with closing(_service()) as service:
            _render_outcome(service.advance(workflow_id, step, reason=reason, data=fields))


@app.command()
def resume(
    workflow_id: int = typer.Argument(..., metavar="ID", help="The correction id.", **JSON_ID),
) -> None:
    """Settle a step left in flight by a crash: the remote systems decide."""
    with _guard(), closing(_service()) as service:
        _render_outcome(service.resume(workflow_id))


@app.command()
def show(
    workflow_id: int = typer.Argument(..., metavar="ID", help="The correction id.", **I64),
) -> None:
    """State, invoice, ERP bill, step in flight, allowed next steps and history."""
    with _guard():
        with closing(_reader()) as service:
            doc = service.show(workflow_id)
        if OPTIONS.json:
            _emit_json(doc)
            return
        from engine.render import show_workflow

        show_workflow(_console(), doc)


def _reader() -> Any:
    """The correction service for read-only use cases: no credentials, no remote system."""
    from engine.app import read_only_service

    return read_only_service(OPTIONS.settings())


@app.command("list")
def list_(
    state: str | None = typer.Option(None, "--state", help="Only corrections in this state."),
    project: int | None = typer.Option(None, "--project", help="Only this project.", **I64),
    stale: str | None = typer.Option(None, "--stale", help="Open and unchanged for at least "
                                     "this long, e.g. 30m, 4h, 2d."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="At most this many."),
) -> None:
    """Corrections, newest first."""
    with _guard():
        from engine.datafile import parse_duration

        with closing(_reader()) as service:
            items = service.list(state=state, project_id=project,
                                 stale=parse_duration(stale) if stale else None, limit=limit)
        if OPTIONS.json:
            _emit_json({"items": items})
            return
        from engine.render import workflow_table

        workflow_table(_console(), items)


@app.command()
def login(
    client_credentials: bool = typer.Option(False, "--client-credentials",
                                            help="Use the client-credentials grant (no browser)."),
    code: str | None = typer.Option(None, "--code", metavar="CODE", help="The authorization "
                                    "code (asked for when not given)."),
) -> None:
    """Store Procore credentials (OAuth authorization code or client credentials), mode 0600."""
    with _guard():
        from engine.login import login as run_login

        def ask_code(url: str) -> str:
            _stderr(f"Open this address, sign in to Procore and allow relink:\n\n  {url}\n")
            return _prompt("Authorization code")

        doc = run_login(
            OPTIONS.settings(), client_credentials=client_credentials, code=code,
            ask_code=ask_code, ask_secret=lambda: _prompt("Procore client secret", hidden=True),
        )
        if OPTIONS.json:
            _emit_json(doc)
            return
        who = f"{doc['name']} <{doc['login']}>" if doc["login"] else "Procore"
        _say(f"Logged in to {_line(who)}; credentials stored in {_line(doc['credentials_file'])}"
             " (mode 0600).")
        if doc.get("warning"):
            _stderr(f"Warning: could not read the user behind the token: {_line(doc['warning'])}")


def _prompt(text: str, *, hidden: bool = False) -> str:
    """Ask on standard input: on a terminal with typer's prompt (hidden input hidden), else one
    line read as is. Standard input closed, or at its end, is a usage error; Ctrl-C an abort."""
    noun = text if text.startswith("Procore") else text.lower()
    closed = _usage(f"standard input closed before the {noun} was typed")
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise closed
    if not stdin.isatty():  # piped or redirected: no echo to hide, nothing for getpass to do
        print(f"{text}: ", end="", file=sys.stderr, flush=True)
        line = stdin.readline()
        if not line:
            print(file=sys.stderr)  # end the prompt's line
            raise closed
        return line.rstrip("\r\n")
    try:
        return str(typer.prompt(text, hide_input=hidden, err=True))
    except typer.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            print(file=sys.stderr)
            raise closed from None
        raise


@app.command()
def whoami(
    project: int | None = typer.Option(None, "--project", help="Also read this project's "
                                       "levels.", **I64),
) -> None:
    """The Procore user behind the token and the permissions relink will check."""
    with _guard():
        from engine.app import connect_remotes
        from engine.identity import whoami as read_identity

        settings = OPTIONS.settings()
        doc = read_identity(connect_remotes(settings), settings, project)
        if OPTIONS.json:
            _emit_json(doc)
            return
        from engine.render import identity

        identity(_console(), doc)


CONFIG_PATH_HELP = "The relink.toml (default: the one in the working directory)."


@config_app.command("allow")
def config_allow(
    path: Path = typer.Argument(Path("relink.toml"), help=CONFIG_PATH_HELP),
) -> None:
    """Trust this relink.toml as it is now (any edit voids it); review it first."""
    with _guard():
        from engine.trust import allow

        doc = allow(path)
        if OPTIONS.json:
            _emit_json(doc)
            return
        sets = ", ".join(doc["sets"]) or "nothing that needs it"
        _say(_line(f"Allowed {doc['file']} (sha256 {doc['sha256'][:16]}); it may now set {sets}."
                   " Any edit voids this: run `relink config allow` again after reviewing it."))


@config_app.command("deny")
def config_deny(
    path: Path = typer.Argument(Path("relink.toml"), help=CONFIG_PATH_HELP),
) -> None:
    """Withdraw the allowance of this relink.toml."""
    with _guard():
        from engine.trust import deny

        doc = deny(path)
        if OPTIONS.json:
            _emit_json(doc)
            return
        done = "is no longer allowed" if doc["removed"] else "was not allowed"
        _say(_line(f"{doc['file']} {done}."))


@app.command()
def demo(
    erp: str = typer.Option("qbo", "--erp", help="qbo, xero or intacct."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a temporary "
                                  "SQLite file)."),
) -> None:
    """Run one complete correction and two refusals against the built-in sandbox."""
    with _guard():
        from engine.demo import run_demo

        code = run_demo(erp=erp, db_url=db or OPTIONS.db, console=_console(),
                        as_json=OPTIONS.json, emit=_emit_json)
        raise typer.Exit(code)


@sandbox_app.command("serve")
def sandbox_serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port", min=0, max=65535),
    erp: str = typer.Option("qbo", "--erp", help="qbo, xero or intacct."),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, max=600_000,
                                   help="Delay of every API call."),
    fault_rate: float = typer.Option(0.0, "--fault-rate", min=0.0, max=1.0,
                                     help="Share of API calls that fail."),
    rate_limit: str | None = typer.Option(None, "--rate-limit", help="N/H: N calls per H hours."),
) -> None:
    """Run the simulator until interrupted."""
    with _guard():
        from engine.errors import UsageError

        if erp not in ("qbo", "xero", "intacct"):
            raise UsageError(f"unknown ERP {erp!r}: use qbo, xero or intacct")
        from integrations.sandbox.server import serve_forever

        serve_forever(host=host, port=port, erp=erp, latency_ms=latency_ms,
                      fault_rate=fault_rate, rate_limit=_rate_limit(rate_limit), echo=print)


def _rate_limit(text: str | None) -> tuple[int, float] | None:
    if text is None:
        return None
    try:
        count, hours = text.split("/")
        parsed = (int(count), float(hours) * 3600)
    except ValueError:
        raise _usage(f"--rate-limit wants N/H, e.g. 3600/1, not {text!r}") from None
    if not (1 <= parsed[0] <= 10**9 and 0 < parsed[1] <= 10**5 * 3600):  # NaN, inf fail too
        raise _usage("--rate-limit wants N from 1 to 10^9 and H hours from above 0 to 10^5")
    return parsed


# workflows ---------------------------------------------------------------------------------


@workflows_app.command("list")
def workflows_list() -> None:
    """The registered workflow definitions."""
    with _guard():
        from engine.catalog import describe_all

        docs = describe_all()
        if OPTIONS.json:
            _emit_json({"workflows": docs})
            return
        for doc in docs:
            _say(_line(f"{doc['name']} (version {doc['version']}): {doc['description']}"))


@workflows_app.command("show")
def workflows_show(name: str = typer.Argument(..., help="Workflow name.")) -> None:
    """States, steps and the permission policy of a workflow."""
    with _guard():
        from engine.catalog import describe

        doc = describe(name)
        if OPTIONS.json:
            _emit_json(doc)
            return
        from engine.render import definition

        definition(_console(), doc)


@workflows_app.command("graph")
def workflows_graph(
    name: str = typer.Argument(..., help="Workflow name."),
    fmt: str = typer.Option("mermaid", "--format", help="mermaid or dot."),
) -> None:
    """The workflow's diagram as mermaid or graphviz dot source."""
    with _guard():
        from engine.catalog import diagram

        text = diagram(name, fmt)
        if OPTIONS.json:
            _emit_json({"name": name, "format": fmt, "source": text})
        else:
            _say(text)


# audit -------------------------------------------------------------------------------------

FILTER_HELP = "ISO 8601 date or date-time, UTC"
OUT_HELP = ("Write here (atomically; only a new or regular file is replaced) instead of stdout;"
            " - is stdout.")


@audit_app.command("log")
def audit_log(
    workflow: int | None = typer.Option(None, "--workflow", help="Correction id.", **I64),
    invoice: int | None = typer.Option(None, "--invoice", help="Procore invoice id.", **I64),
    project: int | None = typer.Option(None, "--project", help="Procore project id.", **I64),
    actor: str | None = typer.Option(None, "--actor", help="Procore login."),
    action: str | None = typer.Option(None, "--action", help="start, a step name, resume."),
    outcome: str | None = typer.Option(None, "--outcome", help="in_flight, succeeded, "
                                       "refused or failed."),
    since: str | None = typer.Option(None, "--since", help=f"From ({FILTER_HELP})."),
    until: str | None = typer.Option(None, "--until", help=f"Before ({FILTER_HELP}); a date "
                                     "alone includes that whole day."),
    fmt: str = typer.Option("table", "--format", help="table, json, jsonl or csv."),
    limit: int | None = typer.Option(None, "--limit", min=1, max=2**63 - 1,
                                     help="At most this many entries "
                                     "(table: newest 50 unless set)."),
) -> None:
    """The audit history, oldest first (the table shows the newest entries)."""
    with _guard():
        from engine.datafile import audit_filters

        filters = audit_filters(workflow=workflow, invoice=invoice, project=project, actor=actor,
                                action=action, outcome=outcome, since=since, until=until)
        if fmt not in ("table", "json", "jsonl", "csv"):
            raise _usage(f"--format must be table, json, jsonl or csv, not {fmt!r}")
        with closing(_audit_service()) as service:
            if fmt == "table" and not OPTIONS.json:
                from engine.render import audit_table

                rows = list(service.entries(filters, limit=limit or 50, newest_first=True))
                audit_table(_console(), list(reversed(rows)))
                return
            from engine.reviews import spooled  # stdout gets all entries or, on error, none

            entries = service.entries(filters, limit=limit)
            if fmt in ("json", "table"):
                spooled(lambda stream: _stream_json_entries(entries, stream), sys.stdout)
            else:
                from audit.export import write_csv, write_jsonl
                from engine.terminal import for_terminal

                writer = write_jsonl if fmt == "jsonl" else write_csv
                spooled(lambda stream: writer(entries, stream), for_terminal(sys.stdout, fmt))


@audit_app.command("verify")
def audit_verify(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Signed checkpoint file."),
    public_key: Path | None = typer.Option(None, "--public-key", help="Its public key file."),
) -> None:
    """Check the hash chain (and a signed checkpoint); exit 5 naming the first bad entry."""
    with _guard():
        if (checkpoint is None) != (public_key is None):
            raise _usage("--checkpoint and --public-key go together")
        service = _audit_service()
        try:
            doc = service.verify(checkpoint=checkpoint, public_key=public_key)
        finally:
            service.close()
        if OPTIONS.json:
            _emit_json(doc)
        else:
            line = f"OK: {doc['entries']} entries, chain intact, head {doc['head_seq']}"
            if doc.get("checkpoint"):
                line += f"; checkpoint at seq {doc['checkpoint']['seq']} verified"
            _console().print(line + ".", style="green")


@audit_app.command("keygen")
def audit_keygen(
    out: Path = typer.Option(..., "--out", help="Private key file; the public key goes to "
                             "KEYFILE.pub."),
) -> None:
    """Create an Ed25519 key pair for signing checkpoints."""
    with _guard():
        from engine.outfile import out_path
        from engine.reviews import generate_keys

        if out_path(out) is None:
            raise _usage("--out -: keygen writes two files (KEYFILE and KEYFILE.pub); give a path")
        private, public = generate_keys(out)
        doc = {"private_key": str(private), "public_key": str(public)}
        if OPTIONS.json:
            _emit_json(doc)
        else:
            _say(f"Wrote {_line(str(private))} (keep it secret, mode 0600) and"
                 f" {_line(str(public))}.")


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Path = typer.Option(..., "--key", help="Ed25519 private key file (audit keygen)."),
    out: Path | None = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Sign the current head of the log."""
    with _guard():
        from engine.outfile import out_path

        out = out_path(out)
        service = _audit_service()
        try:
            doc = service.checkpoint(key, out=out)
        finally:
            service.close()
        if out is not None:
            if OPTIONS.json:
                _emit_json(doc)
            else:
                _say(f"Checkpoint of seq {doc['seq']} written to {_line(str(out))}.")
        else:
            import json

            sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@audit_app.command("export")
def audit_export(
    fmt: str = typer.Option(..., "--format", help="jsonl, csv or ocsf."),
    out: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    workflow: int | None = typer.Option(None, "--workflow", **I64),
    invoice: int | None = typer.Option(None, "--invoice", **I64),
    project: int | None = typer.Option(None, "--project", **I64),
    actor: str | None = typer.Option(None, "--actor"),
    action: str | None = typer.Option(None, "--action"),
    outcome: str | None = typer.Option(None, "--outcome"),
    since: str | None = typer.Option(None, "--since", help=FILTER_HELP),
    until: str | None = typer.Option(None, "--until", help=FILTER_HELP),
) -> None:
    """Stream entries for reviewers and SIEMs (memory stays flat)."""
    with _guard():
        from engine.datafile import audit_filters
        from engine.outfile import out_path

        out = out_path(out)
        filters = audit_filters(workflow=workflow, invoice=invoice, project=project, actor=actor,
                                action=action, outcome=outcome, since=since, until=until)
        if fmt not in ("jsonl", "csv", "ocsf"):
            raise _usage(f"--format must be jsonl, csv or ocsf, not {fmt!r}")
        service = _audit_service()
        try:
            count = service.export(filters, fmt, out)
        finally:
            service.close()
        if out is not None:
            _stderr(f"Exported {count} entries to {_line(str(out))}.")


def _stream_json_entries(entries: Any, stream: Any) -> int:
    """``{"entries": [...]}`` written entry by entry, so memory stays flat."""
    import json

    from engine.terminal import terminal_safe_json

    stream.write('{"entries": [')
    count = 0
    for count, entry in enumerate(entries, 1):
        text = terminal_safe_json(json.dumps(entry, ensure_ascii=False))
        stream.write((", " if count > 1 else "") + text)
    stream.write("]}\n")
    return count


def _audit_service() -> Any:
    from engine.app import open_database
    from engine.reviews import AuditService

    return AuditService(open_database(OPTIONS.settings()))


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:  # the fast path: no command tree needed
        print(f"relink {__version__}")
        return
    app(prog_name="relink")


if __name__ == "__main__":
    main()
