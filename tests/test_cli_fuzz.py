"""R5 for the command line: every command and subcommand of the Typer app, driven with generated
arguments and options (huge and negative numbers, odd unicode, control characters, empty
strings, weird dates, paths) under generated settings (RELINK_* variables, relink.toml files
with random keys and values), exits 0-5 with at most one line on stderr and never a traceback.

The generated space touches nothing outside the test's temporary directory: every path is a
name inside it (never absolute elsewhere, never ``..``), the current directory, HOME, the XDG
directories and the temporary directory point into it, every URL that could be sent to is the
sandbox or a closed port on 127.0.0.1, PostgreSQL is only ever asked for a database that does
not exist, and the timeouts are short. `sandbox serve`, which serves until interrupted, runs
with a stand-in for its server loop; `login` never waits on a browser (it reads a code from
standard input, which is closed).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import tempfile
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import cli
from engine.db import Database
from engine.settings import KEYS
from sandbox.seed import ERP_COMPANIES
from tests.conftest import POSTGRES_URL, Sandbox

ALLOWED_EXITS = {0, 1, 2, 3, 4, 5}
# `sandbox serve` serves until interrupted: it runs with a stand-in for the server loop that
# checks what it would have been given (FakeServe), so its options are fuzzed too.
SERVE = ("sandbox", "serve")
HUGE = 2**63
# Short, bounded network behaviour for every example; a generated value may override these
# only with another short one or with one that settings refuse.
SHORT = {
    "RELINK_HTTP_CONNECT_TIMEOUT": "0.2",
    "RELINK_HTTP_READ_TIMEOUT": "2",
    "RELINK_HTTP_MAX_ATTEMPTS": "1",
    "RELINK_HTTP_MAX_WAIT": "0.5",
    "RELINK_HTTP_BACKOFF_INITIAL": "0",
    "RELINK_HTTP_BACKOFF_MAX": "0.01",
    "RELINK_LEASE_SECONDS": "5",
}
LOGIN_PROMPTS = ("Open this address, sign in to Procore", "  http://", "Authorization code:",
                 "Procore client secret:")
PREVIEW_TITLE = "What the data file changes"
PREVIEW_NOTHING = "The data file changes nothing (--as-is)."


# the command tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    opts: tuple[str, ...]  # () for an argument
    kind: Any  # the Python annotation's base type: int, str, float, bool, Path
    required: bool
    flag: bool


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]
    group: bool = False


def _base(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Literal:  # a choice of strings (--format, --erp)
        return str
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _base(args[0]) if args else annotation


def _params(command: Any) -> tuple[Param, ...]:
    hints = typing.get_type_hints(command.callback) if command.callback else {}
    return tuple(
        Param(
            name=p.name,
            opts=tuple(p.opts) if p.param_type_name == "option" else (),
            kind=_base(hints.get(p.name, str)),
            required=bool(p.required),
            flag=bool(getattr(p, "is_flag", False)),
        )
        for p in command.params
    )


def command_tree() -> tuple[tuple[Param, ...], list[Command]]:
    """The global options, and every command and group of the app (groups alone too)."""
    root = typer.main.get_command(cli.app)
    found: list[Command] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            if path:
                found.append(Command(path, (), group=True))
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found.append(Command(path, _params(command)))

    walk(root, ())
    return _params(root), found


GLOBALS, COMMANDS = command_tree()


# values ----------------------------------------------------------------------------------------

# Any character an argv or environment value can hold: no NUL; of the lone surrogates only
# U+DC80-U+DCFF, which is how Python hands over bytes that are not UTF-8 (surrogateescape).
CHARS = st.one_of(st.characters(codec="utf-8", exclude_characters="\x00"),
                  st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF))
ODD = st.text(CHARS, max_size=40)
RAW = ("utf-8", "surrogateescape")  # text with those surrogates back to the bytes they stand for
SPECIAL = st.sampled_from([
    "", " ", "-", "--", "[/bold]", "[link=http://127.0.0.1:9/]x[/link]", "\x1b]0;title\x07",
    "\x1b[2J", "\u202egnp.exe", "\r\n", "\u0085", "🙂", "null", "None", "0", "-1", "1e400",
    "NaN", "Infinity", "%s%n", "{}", "[]", "a" * 300, "é" * 50, "\t", "\\", "'\"",
])
TEXT = st.one_of(ODD, SPECIAL)
NO_DIGITS = st.text(st.sampled_from("abcxyz ._-é\x1b\n"), max_size=8)  # never a number
INTS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 101, 102, 9001, 9002, 9004, 9005, 9101, 4021, 2**31,
                     HUGE - 1, HUGE, -HUGE, -HUGE - 1, 10**30, -(10**30)]),
    st.integers(-(2**70), 2**70),
).map(str)
INT_TEXT = st.one_of(INTS, INTS, st.sampled_from(["1.5", "0x10", "1_000", "١٢", " 7", "7 ", "+3",
                                                  "1e3", ""]), TEXT)
DATES = st.one_of(st.sampled_from([
    "2026-11-27", "0001-01-01T00:00:00+01:00", "9999-12-31", "9999-12-31T23:59:59-05:00",
    "0001-01-01", "0000-00-00", "2026-02-30", "2026-11-27T25:00", "yesterday", "",
    "2026-11-27T18:04:05Z", "2026-11-27T18:04:05.123456789Z", "+002026-01-01", "2026-W48-5",
    "20261127", "2026-11-27 18:04", "0999-06-01", "2026-11-27T18:04:05+24:00",
]), TEXT)
DURATIONS = st.one_of(st.sampled_from([
    "30m", "4h", "2d", "1w", "0s", "99999999999w", "1" * 30 + "s", "٣d", " 5m ", "5M", "-5m",
    "36500d", "36501d", "1" * 5000 + "s",
]), TEXT)
STEPS = st.one_of(st.sampled_from(["delete-in-erp", "confirm-erp-deletion", "unlink",
                                   "delete-in-procore", "reenter", "cancel", "start", "resume"]),
                  TEXT)
KNOWN_CHOICES: dict[str, Any] = {
    "--format": st.one_of(st.sampled_from(["table", "json", "jsonl", "csv", "ocsf", "mermaid",
                                           "dot"]), TEXT),
    "--erp": st.one_of(st.sampled_from(["qbo", "xero", "intacct"]), TEXT),
    "--state": st.one_of(st.sampled_from(["Exported", "DeletedInERP", "Unlinked",
                                          "DeletedInProcore", "Reentered", "Cancelled"]), TEXT),
    "--outcome": st.one_of(st.sampled_from(["in_flight", "succeeded", "refused", "failed"]),
                           TEXT),
    "--action": st.one_of(STEPS, TEXT),
    "--actor": st.one_of(st.sampled_from(["ana@summit.example", "rita@summit.example"]), TEXT),
    "--since": DATES,
    "--until": DATES,
    "--stale": DURATIONS,
    "--code": st.one_of(st.sampled_from(["sandbox-code-ana", "sandbox-code-rita", "wrong"]), TEXT),
    "--port": st.one_of(st.sampled_from(["0", "8765", "65535", "65536", "-1"]), INT_TEXT),
    "--latency-ms": st.one_of(st.sampled_from(["0", "5", "600000", "600001"]), INT_TEXT),
    "--fault-rate": st.one_of(st.sampled_from(["0", "0.5", "1", "1.1", "nan", "inf", "-0"]), TEXT),
    "--rate-limit": st.one_of(st.sampled_from(["3600/1", "1/nan", "1/inf", "0/1", "1/0", "1/1e-300",
                                               "9" * 5000 + "/1", "1/1e6", "x"]), TEXT),
    "--host": st.one_of(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0"]), TEXT),
    "step": STEPS,
    "name": st.one_of(st.just("subcontractor-invoice"), TEXT),
}


@dataclass
class Space:
    """Where one test's generated world lives."""

    root: Path
    sandbox: Sandbox
    closed_url: str
    db_url: str
    key: Path
    public_key: Path
    checkpoint: Path
    counter: Iterator[int]

    def workdir(self) -> Path:
        work = self.root / f"x{next(self.counter)}"
        work.mkdir()
        return work


def names() -> st.SearchStrategy[str]:
    """A file name: odd characters welcome, but never a separator, NUL, '.' or '..'."""
    alphabet = CHARS.filter(lambda c: c != "/")
    return st.text(alphabet, min_size=1, max_size=20).filter(lambda n: n not in (".", ".."))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def data_files(draw: Any) -> bytes:
    """The content of a data, config, key or checkpoint file, valid or not."""
    amounts = st.one_of(st.sampled_from(["1250.00", "NaN", "1e400", "Infinity", "-0", "1.234"]),
                        TEXT)
    requisition = st.fixed_dictionaries({}, optional={
        "invoice_number": TEXT, "comment": TEXT, "billing_date": DATES,
        "period_id": st.one_of(st.integers(-(2**70), 2**70), TEXT),
        "status": st.sampled_from(["draft", "approved", "bogus"]),
        "final": st.booleans(),
        # items name the line item they bill (invoice 9001's lines, another commitment's,
        # or an odd value); Procore's items have no description
        "items": st.lists(st.fixed_dictionaries({}, optional={
            "line_item_id": st.one_of(st.sampled_from([55011, 55015, 55021]),
                                      st.integers(-(2**70), 2**70), TEXT),
            "comment": TEXT, "work_completed_this_period": amounts,
            "materials_presently_stored": amounts, "colour": TEXT}), max_size=3),
        "project_id": st.integers(),
    })
    kind = draw(st.sampled_from(["json", "json", "toml", "bytes", "deep", "empty", "text"]))
    if kind == "json":
        ascii_only = draw(st.booleans())  # escapes: a lone surrogate as \udcff in the text
        return json.dumps(draw(requisition), ensure_ascii=ascii_only).encode(*RAW)
    if kind == "toml":
        return toml_document(draw(requisition)).encode(*RAW)
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=200)))
    if kind == "deep":
        return deep(draw(st.sampled_from([50, 2_000, 30_000]))).encode()
    if kind == "empty":
        return b""
    return str(draw(TEXT)).encode(*RAW)


@st.composite
def paths(draw: Any, space: Space, work: Path, *, out: bool = False) -> str:
    """A path inside the example's directory: a new name, a file written here, the directory
    itself, or the key pair and checkpoint made for this test; ``-`` for an --out."""
    choice = draw(st.sampled_from(["new", "file", "file", "dir", "key", "pub", "checkpoint"]
                                  + (["-"] if out else [])))
    if choice == "-":
        return "-"
    if choice == "dir":
        return str(work)
    if choice in ("key", "pub", "checkpoint"):
        return str({"key": space.key, "pub": space.public_key,
                    "checkpoint": space.checkpoint}[choice])
    path = work / draw(names())
    if choice == "file" and not path.exists():  # never a FIFO: nothing would feed it
        path.write_bytes(draw(data_files()))
    return str(path)


@st.composite
def urls(draw: Any, space: Space, *, erp: bool = False) -> str:
    """An endpoint URL: the sandbox, a closed loopback port, or one settings refuse."""
    sandbox = space.sandbox.url + ("/erp" if erp else "")
    return str(draw(st.one_of(
        st.sampled_from([sandbox, sandbox + "/", space.closed_url, "http://127.0.0.1:1",
                         "http://[::1]:1", "http://[::1", "http://[::1]:99999",
                         "http://127.0.0.1:port", "ftp://127.0.0.1", "127.0.0.1:8765", "http://",
                         "", "http://user:pw@127.0.0.1:1", "http://127.0.0.1:1/?q",
                         "http://1.2.3.999", "http://\u2603.invalid", "http://exa mple"]),
        st.builds(lambda tail: f"{sandbox}/{tail}", TEXT),
        NO_DIGITS,
    )))


@st.composite
def databases(draw: Any, space: Space, work: Path) -> str:
    """A database URL: this test's SQLite file, others inside the example's directory, ones
    relink refuses, and PostgreSQL only on a closed port or a database that does not exist."""
    choices = [
        space.db_url, space.db_url, f"sqlite:///{work / 'new.db'}", "sqlite://",
        "sqlite:///:memory:", f"sqlite:///{work}", f"sqlite:///{work / 'sub' / 'deeper.db'}",
        f"sqlite:///file:{space.root / 'relink.db'}?mode=ro&uri=true", "sqlite:///rel.db",
        "postgresql://postgres@127.0.0.1:1/relink", "mysql://x/y", "", "not a url",
    ]
    if POSTGRES_URL:
        missing = make_url(POSTGRES_URL).set(database="relink_fuzz_no_such_database")
        choices.append(missing.render_as_string(hide_password=False))
    value = draw(st.one_of(st.sampled_from(choices), NO_DIGITS))
    if value == f"sqlite:///{work / 'new.db'}" and draw(st.booleans()):
        (work / "new.db").write_bytes(draw(data_files()))  # maybe not a database at all
    return str(value)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def toml_document(tables: dict[str, Any]) -> str:
    """Top-level scalars first, then one [table] per dict (TOML's order rule)."""
    lines = [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
             for k, v in tables.items() if not isinstance(v, dict)]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(name, ensure_ascii=False)}]")
            lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                      for k, v in table.items()]
    return "\n".join(lines) + "\n"


@st.composite
def config_files(draw: Any, space: Space, work: Path) -> bytes:
    """A relink.toml: known sections and keys with generated values, unknown ones, secrets,
    policies; or bytes that are not TOML or not UTF-8 at all."""
    scalar = st.one_of(st.integers(-(2**70), 2**70), st.floats(), TEXT, st.booleans())
    value = st.one_of(scalar, st.lists(scalar, max_size=3),
                      st.dictionaries(TEXT, scalar, max_size=2))
    levels = st.lists(st.one_of(st.sampled_from(["None", "Read Only", "Standard", "Admin"]), TEXT),
                      max_size=3)
    known: dict[str, dict[str, Any]] = {
        "database": {"url": databases(space, work)},
        "procore": {
            "api_url": urls(space),
            "login_url": urls(space),
            "company_id": st.one_of(st.integers(-(2**70), 2**70), st.just(4021), TEXT),
            "client_id": st.one_of(st.just("sandbox-client"), TEXT),
            "token": TEXT,
        },
        "erp": {
            "product": st.one_of(st.sampled_from(["qbo", "xero", "intacct"]), TEXT),
            "api_url": urls(space, erp=True),
            "company": st.one_of(st.sampled_from(sorted(ERP_COMPANIES.values())), TEXT),
        },
        "http": {key: value for (section, key) in KEYS if section == "http"},
        "steps": {"lease_seconds": st.one_of(st.sampled_from([0.5, 5.0, 0.0, 1e300]), value)},
        "policy": {step: st.fixed_dictionaries({}, optional={
            "commitments": levels, "erp_integrations": levels,
            "can_push_to_accounting": st.one_of(st.booleans(), TEXT)})
            for step in ("start", "unlink", "cancel", "bogus-step")},
    }
    kind = draw(st.sampled_from(["toml", "toml", "toml", "bytes", "latin1", "deep"]))
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=200)))
    if kind == "latin1":
        return '[erp]\ncompany = "Müller"\n'.encode("latin-1")
    if kind == "deep":
        return f"[http]\nread_timeout = {deep(draw(st.sampled_from([100, 30_000])))}\n".encode()
    tables: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*known, "bogus"]), max_size=4, unique=True)):
        keys = known.get(section, {})
        chosen = draw(st.lists(st.sampled_from(sorted(keys) or ["bogus"]), max_size=4,
                               unique=True))
        tables[section] = {key: draw(keys[key]) if key in keys else draw(value)
                           for key in chosen}
        if draw(st.booleans()) and section != "policy":
            tables[section][draw(TEXT)] = draw(value)  # an unknown key
    return toml_document(tables).encode(*RAW)


@st.composite
def environment(draw: Any, space: Space, work: Path) -> dict[str, str]:
    """RELINK_* variables (and NO_COLOR): a generated subset, each with a generated value."""
    seconds = st.sampled_from(["0.2", "0.05", "1e-300", "0", "-1", "inf", "-inf", "nan",
                               "Infinity", "1e400", "1e300", str(HUGE), "", "abc", "0x10",
                               "601", "3601"])
    small = st.one_of(seconds, NO_DIGITS)
    tokens = st.one_of(st.sampled_from(["sandbox-ana", "sandbox-ben", "sandbox-cara",
                                        "sandbox-rita", "wrong", "", "sändbox", "sandbox-ana\n",
                                        " sandbox-ana", "a" * 5000, "\x1b[2J"]), TEXT)
    options: dict[str, Any] = {
        "RELINK_PROCORE_URL": urls(space),
        "RELINK_PROCORE_LOGIN_URL": urls(space),
        "RELINK_ERP_URL": urls(space, erp=True),
        "RELINK_DATABASE_URL": databases(space, work),
        "RELINK_COMPANY_ID": INT_TEXT,
        "RELINK_ERP": st.one_of(st.sampled_from(["qbo", "xero", "intacct"]), TEXT),
        "RELINK_ERP_COMPANY": st.one_of(st.sampled_from(sorted(ERP_COMPANIES.values())), TEXT),
        "RELINK_PROCORE_CLIENT_ID": st.one_of(st.just("sandbox-client"), TEXT),
        "RELINK_PROCORE_CLIENT_SECRET": st.one_of(st.just("sandbox-secret"), TEXT),
        "RELINK_PROCORE_TOKEN": tokens,
        "RELINK_ERP_TOKEN": st.one_of(st.just("sandbox-erp"), tokens),
        "RELINK_HTTP_CONNECT_TIMEOUT": small,
        "RELINK_HTTP_READ_TIMEOUT": small,
        "RELINK_HTTP_MAX_WAIT": small,
        "RELINK_HTTP_BACKOFF_INITIAL": st.sampled_from(["0", "0.01", "-1", "nan", "inf", "601"]),
        "RELINK_HTTP_BACKOFF_MAX": st.sampled_from(["0", "0.01", "-1", "nan", "inf", "601"]),
        "RELINK_HTTP_MAX_ATTEMPTS": st.sampled_from(["1", "2", "0", "21", "-1", str(HUGE),
                                                     "1.5", "", "x"]),
        "RELINK_HTTP_PACE_BELOW": st.one_of(INT_TEXT, small),
        "RELINK_LEASE_SECONDS": st.one_of(st.sampled_from(["0.5", "5", "0.1", "86401"]), small),
        "NO_COLOR": st.sampled_from(["1", ""]),
    }
    env = draw(st.fixed_dictionaries({}, optional=options))
    assert set(env) <= {variable for variable, _ in KEYS.values()} | set(options)
    return {key: str(value) for key, value in env.items()}


@st.composite
def argv(draw: Any, space: Space, work: Path, command: Command) -> list[str]:
    """The command's arguments and options, required ones always, the others sometimes."""
    args: list[str] = []
    for param in command.params:
        if not param.required and not draw(st.booleans()):
            continue
        if param.flag:
            args.append(param.opts[0])
            continue
        key = param.opts[0] if param.opts else param.name
        if key == "--db":
            value = draw(databases(space, work))
        elif key in KNOWN_CHOICES:
            value = draw(KNOWN_CHOICES[key])
        elif param.kind is Path or key in ("path", "--config"):
            value = draw(paths(space, work, out=key == "--out"))
        elif param.kind is int:
            value = draw(INT_TEXT)
        elif param.kind is float:
            value = draw(st.one_of(st.floats().map(str), TEXT))
        else:
            value = draw(TEXT)
        args += [*param.opts[:1], value] if param.opts else [value]
    if command.path == ("demo",) and "--db" not in args:  # its default is the system temp dir
        args += ["--db", f"sqlite:///{work / 'demo.db'}"]
    if draw(st.booleans()):  # options after `--`, an unknown option, a stray argument
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(
            ["--", "--bogus", "extra", "--help", "-h"])))
    return [*command.path, *args]


@st.composite
def deep_argv(draw: Any, space: Space, work: Path) -> tuple[Command, list[str], dict[str, str]]:
    """A command line that gets past parsing into the use cases: real ids, real steps, a data
    file for reenter, a seeded user's token; only some values generated."""
    wid = draw(st.sampled_from(["1", "2", "3", "4"]))
    filters = draw(st.lists(st.sampled_from(["--workflow", "--invoice", "--project", "--actor",
                                             "--action", "--outcome", "--since", "--until"]),
                            max_size=3, unique=True))
    filter_args = [arg for name in filters for arg in (
        name, draw(KNOWN_CHOICES.get(name, st.sampled_from(["1", "9001", "101"]))))]
    kind = draw(st.sampled_from(["reenter", "step", "start", "show", "resume", "log", "export",
                                 "whoami", "list"]))
    if kind == "reenter":
        data = work / draw(st.sampled_from(["data.json", "data.toml", "data"]))
        data.write_bytes(draw(data_files()))
        args = ["advance", wid, "reenter", "--data", str(data)]
    elif kind == "step":
        args = ["advance", wid, draw(STEPS)] + (["--reason", draw(TEXT)] if draw(st.booleans())
                                                 else [])
    elif kind == "start":
        args = ["start", draw(st.sampled_from(["9001", "9002", "9004", "9005", "9101", "1"])),
                "--project", draw(st.sampled_from(["101", "102", "1"])), "--reason", draw(TEXT)]
    elif kind == "log":
        args = ["audit", "log", "--format", draw(KNOWN_CHOICES["--format"]), *filter_args]
    elif kind == "export":
        args = ["audit", "export", "--format", draw(KNOWN_CHOICES["--format"]), *filter_args]
    elif kind == "list":
        args = ["list", *draw(st.sampled_from([[], ["--stale", "0s"], ["--state", "Exported"]]))]
    elif kind == "whoami":
        args = ["whoami", *draw(st.sampled_from([[], ["--project", "101"], ["--project", "9"]]))]
    else:
        args = [kind, wid]
    command = next(c for c in COMMANDS if tuple(args[:len(c.path)]) == c.path and
                   all(not isinstance(part, str) or part for part in c.path))
    token = draw(st.sampled_from(["sandbox-ana", "sandbox-ben", "sandbox-cara", "sandbox-rita"]))
    json_flag = ["--json"] if draw(st.booleans()) else []
    return command, [*json_flag, *args], {"RELINK_PROCORE_TOKEN": token}


@st.composite
def global_options(draw: Any, space: Space, work: Path) -> list[str]:
    chosen: list[str] = []
    for param in GLOBALS:
        if param.name == "version" or not draw(st.booleans()):
            continue
        if param.flag:
            chosen.append(param.opts[0])
        elif param.opts[0] == "--db":
            chosen += ["--db", draw(databases(space, work))]
        else:
            chosen += [param.opts[0], draw(paths(space, work))]
    return chosen


# running ---------------------------------------------------------------------------------------


def without_preview(lines: list[str]) -> list[str]:
    """The lines less advance's field-by-field difference (its title, the table, then its
    warnings), which a step taking --data shows on stderr before it runs."""
    kept: list[str] = []
    in_table = after = False
    for line in lines:
        if line in (PREVIEW_TITLE, PREVIEW_NOTHING):
            in_table, after = line == PREVIEW_TITLE, True
        elif in_table:
            in_table = not line.startswith("└")  # the table's last line
        elif not (after and line.startswith("Warning: ")):
            after = False
            kept.append(line)
    return kept


def stderr_lines(text: str, command: Command) -> list[str]:
    """Non-blank stderr lines; login's own prompts (the address to open, the questions) and
    advance's preview of what --data changes are the conversation, not error lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    if command.path == ("login",):
        lines = [line for line in lines if not line.startswith(LOGIN_PROMPTS)]
    if command.path == ("advance",):
        lines = without_preview(lines)
    return lines


def invoke(space: Space, command: Command, args: list[str], env: dict[str, str],
           work: Path) -> None:
    """Run one generated command line and check the contract of cli.md."""
    home = space.root / "home"
    environment = {
        **space.sandbox.env, **SHORT,
        "RELINK_PROCORE_TOKEN": "sandbox-ana",
        "RELINK_DATABASE_URL": space.db_url,
        "RELINK_CONFIG": "",
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"), "TMPDIR": str(space.root / "tmp"),
        "NO_COLOR": "1", "COLUMNS": "120",
        **env,
    }
    previous = Path.cwd()
    os.chdir(work)  # ./relink.toml and relative paths resolve inside the example's directory
    try:
        result = CliRunner().invoke(cli.app, args, env=environment, catch_exceptions=True,
                                    prog_name="relink")
    finally:
        os.chdir(previous)
    where = f"\nargv: {args!r}\nenv: {env!r}\nstdout: {result.stdout[-2000:]!r}" \
            f"\nstderr: {result.stderr[-2000:]!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"exception escaped the CLI:{where}\n{trace}")
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics: how deep examples go
    assert result.exit_code in ALLOWED_EXITS, f"exit {result.exit_code}{where}"
    assert "Traceback" not in result.stdout + result.stderr, where
    assert len(stderr_lines(result.stderr, command)) <= 1, f"more than one stderr line{where}"


class FakeServe:
    """Stands in for the sandbox's server loop: whatever reaches it must be servable."""

    def __call__(self, *, host: str, port: int, erp: str, latency_ms: int, fault_rate: float,
                 rate_limit: tuple[int, float] | None, echo: Any, auto_unlink: bool,
                 token_lifetime: int | None, erp_rate_limit: str | None) -> None:
        from sandbox.limits import erp_limits

        assert isinstance(host, str) and 0 <= port <= 65535 and erp in ERP_COMPANIES
        assert 0 <= latency_ms <= 600_000
        assert math.isfinite(fault_rate) and 0 <= fault_rate <= 1
        if rate_limit is not None:
            count, seconds = rate_limit
            assert count >= 1 and math.isfinite(seconds) and seconds > 0
        assert isinstance(auto_unlink, bool)
        assert token_lifetime is None or 1 <= token_lifetime <= 86_400
        erp_limits(erp, erp_rate_limit)  # raises on a limit the sandbox could not serve


@pytest.fixture(name="space")
def fixture_space(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Space:
    """This test's world: a database with a few corrections (1 ready for reenter, 2 just
    started), a key pair and a checkpoint; `sandbox serve` without its server loop."""
    from sandbox import server as sandbox_server

    monkeypatch.setattr(sandbox_server, "serve_forever", FakeServe())
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'relink.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    keys = tmp_path / "keys"
    keys.mkdir()
    space = Space(tmp_path, sandbox, closed, url, keys / "k", keys / "k.pub",
                  keys / "checkpoint.json", itertools.count())
    env = {**sandbox.env, **SHORT, "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_DATABASE_URL": url, "RELINK_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path)}
    runner = CliRunner()
    for args in (["start", "9001", "--project", "101", "--reason", "fuzz"],
                 ["start", "9101", "--project", "102", "--reason", "fuzz"],
                 ["advance", "1", "delete-in-erp"],
                 ["advance", "1", "unlink"],
                 ["advance", "1", "delete-in-procore"],
                 ["audit", "keygen", "--out", str(space.key)],
                 ["audit", "checkpoint", "--key", str(space.key), "--out", str(space.checkpoint)]):
        result = runner.invoke(cli.app, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return space


def test_every_command_is_driven() -> None:
    """The generated space reaches every command and subcommand, found by walking the app."""
    paths_found = {c.path for c in COMMANDS}
    assert {("start",), ("advance",), ("audit", "export"), ("workflows", "graph"), SERVE,
            ("login",), ("demo",), ("audit",), ("sandbox",)} <= paths_found
    assert all(p.kind in (int, str, float, bool, Path) for c in COMMANDS for p in c.params)


def _argv_example(space: Space, data: Any) -> None:
    work = space.workdir()
    if data.draw(st.booleans(), label="into the use cases"):
        command, args, env = data.draw(deep_argv(space, work), label="argv")
        invoke(space, command, args, env, work)
        return
    command = data.draw(st.sampled_from(COMMANDS), label="command")
    args = [*data.draw(global_options(space, work)), *data.draw(argv(space, work, command))]
    invoke(space, command, args, {}, work)


def _settings_example(space: Space, data: Any) -> None:
    work = space.workdir()
    if data.draw(st.booleans(), label="into the use cases"):
        command, args, env = data.draw(deep_argv(space, work), label="argv")
        env |= data.draw(environment(space, work), label="env")
    else:
        command = data.draw(st.sampled_from(COMMANDS), label="command")
        args = data.draw(argv(space, work, command), label="argv")
        env = data.draw(environment(space, work), label="env")
    where = data.draw(st.sampled_from(["none", "--config", "RELINK_CONFIG", "cwd", "user"]))
    if where != "none":
        content = data.draw(config_files(space, work), label="relink.toml")
        target = {"cwd": work / "relink.toml",
                  "user": space.root / "home" / "config" / "relink" / "relink.toml"}.get(
            where, work / "generated.toml")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if where == "--config":
            args = ["--config", str(target), *args]
        elif where == "RELINK_CONFIG":
            env["RELINK_CONFIG"] = str(target)
    try:
        invoke(space, command, args, env, work)
    finally:
        user = space.root / "home" / "config" / "relink" / "relink.toml"
        user.unlink(missing_ok=True)  # the next example starts without it


FAST = settings(max_examples=500, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
SLOW = settings(max_examples=2_000, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@FAST
@given(data=st.data())
def test_generated_argv(space: Space, data: Any) -> None:
    """Any command line of any command exits 0-5, with at most one stderr line, no traceback."""
    _argv_example(space, data)


@FAST
@given(data=st.data())
def test_generated_settings(space: Space, data: Any) -> None:
    """Any RELINK_* environment and relink.toml, under any command: exit 0-5, one line, no
    traceback."""
    _settings_example(space, data)


LONG = pytest.mark.skipif(not os.environ.get("RELINK_LONG_FUZZ"),
                         reason="the long fuzz runs with RELINK_LONG_FUZZ=1 (a few minutes)")


@pytest.mark.slow
@LONG
@SLOW
@given(data=st.data())
def test_generated_argv_long(space: Space, data: Any) -> None:
    """The argv fuzz, longer."""
    _argv_example(space, data)


@pytest.mark.slow
@LONG
@SLOW
@given(data=st.data())
def test_generated_settings_long(space: Space, data: Any) -> None:
    """The settings fuzz, longer."""
    _settings_example(space, data)
