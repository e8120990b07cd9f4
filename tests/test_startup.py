"""Start-up stays light (targets P1, P1b; the figures: bench/startup.py): which modules each path
imports, never how long it takes. `--version` and every `--help` import none of the heavy layers;
`show`, `list` and `audit log` import the database layer but no remote client; the quick commands
end without the interpreter's teardown, their output and exit handlers intact."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from commands.finish import is_quick
from tests.conftest import Relink
from tests.terminal_support import RELINK

# what the help paths never import (P1: no sqlmodel, httpx or transitions; nor what Typer would
# convert parameters with, nor rich)
HEAVY = ("sqlmodel", "sqlalchemy", "httpx", "transitions", "rich", "pydantic", "stamina",
         "typer._adapters")
# what reading the database never needs: the remote clients, the simulator
REMOTE = ("httpx", "httpcore", "stamina", "uvicorn", "sandbox", "typer._adapters")


def command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as the words that name it."""
    import typer.main

    import cli

    found: list[list[str]] = [[]]

    def walk(command: Any, path: list[str]) -> None:
        for name, child in getattr(command, "commands", {}).items():
            found.append([*path, name])
            walk(child, [*path, name])

    walk(typer.main.get_command(cli.app), [])
    return found


def imported(args: list[str], env: dict[str, str] | None = None,
             watch: tuple[str, ...] = HEAVY) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """Run ``relink ARGS`` through the console-script entry point in a fresh interpreter; the
    modules of ``watch`` it imported (reported by an exit handler, after its output)."""
    code = (
        "import atexit, json, sys\n"
        f"watch = {watch!r}\n"
        "def report():\n"
        "    found = sorted(m for m in sys.modules if m in watch or m.split('.')[0] in watch)\n"
        "    print('IMPORTED ' + json.dumps(found), flush=True)\n"
        "atexit.register(report)\n"
        f"sys.argv = ['relink', *{args!r}]\n"
        "import cli\n"
        "cli.main()\n"
    )
    environment = None if env is None else {**_base_env(), **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, timeout=120)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("IMPORTED "), result
    return json.loads(last.removeprefix("IMPORTED ")), result


def _base_env() -> dict[str, str]:
    import os

    return {**os.environ, "RELINK_CONFIG": "", "NO_COLOR": "1"}


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "relink")
def test_every_help_imports_nothing_heavy(path: list[str]) -> None:
    """`relink ... --help` of every command and group imports none of the heavy layers."""
    found, result = imported([*path, "--help"])
    assert result.returncode == 0, result
    assert "Usage: relink" in result.stdout
    assert found == []


def test_version_imports_nothing_heavy() -> None:
    """`relink --version` imports none of the heavy layers."""
    found, result = imported(["--version"])
    assert result.stdout.startswith("relink ")
    assert found == []


def test_version_prints_name_and_version() -> None:
    """relink --version prints `relink <version>`."""
    from importlib.metadata import version

    result = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout == f"relink {version('relink')}\n"


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """P1b is measured on SQLite."""
    return sqlite_url


@pytest.mark.parametrize("args", [["show", "1"], ["list"], ["audit", "log"],
                                  ["--json", "list"]])
def test_reading_paths_import_no_remote_client(relink: Relink, args: list[str]) -> None:
    """`show`, `list` and `audit log` read the database only: no HTTP client, no retry library,
    no simulator, no pydantic adapter for their parameters."""
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "typo")
    assert code == 0, doc
    found, result = imported(args, {"RELINK_DATABASE_URL": relink.db_url}, watch=REMOTE)
    assert result.returncode == 0, result
    assert found == []
    assert "9001" in result.stdout


def test_list_does_not_load_the_audit_tools(relink: Relink) -> None:
    """`relink list` needs neither signatures nor the audit log's filters."""
    found, result = imported(["list"], {"RELINK_DATABASE_URL": relink.db_url},
                             watch=("cryptography", "commands.datafile", "engine.reviews"))
    assert result.returncode == 0 and found == []


@pytest.mark.parametrize(("argv", "quick"), [
    (["show", "1"], True), (["--db", "sqlite:///x.db", "--json", "list"], True),
    (["audit", "log", "--format", "csv"], True), (["workflows", "graph", "commitment"], True),
    (["advance", "1", "unlink", "--help"], True), (["config", "show"], True),
    (["audit", "verify"], False), (["advance", "1", "unlink"], False), (["start"], False),
    (["--db", "show", "list"], True), (["--db", "list", "resume", "1"], False),
    (["--unknown", "show", "1"], False), ([], False),
])
def test_which_commands_end_quickly(argv: list[str], quick: bool) -> None:
    """Only read-only commands and help skip the teardown."""
    assert is_quick(argv) is quick


def test_a_quick_exit_keeps_output_and_exit_code(relink: Relink) -> None:
    """Piped, the quick commands' output arrives whole and their exit codes stay right."""
    for invoice in ("9001", "9003"):
        assert relink("start", invoice, "--project", "101", "--reason", "x").exit_code == 0
    env = {**_base_env(), "RELINK_DATABASE_URL": relink.db_url}
    listed = subprocess.run([RELINK, "--json", "list"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0
    assert [item["invoice_id"] for item in json.loads(listed.stdout)["items"]] == [9003, 9001]
    missing = subprocess.run([RELINK, "show", "99"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert (missing.returncode, missing.stderr.strip()) == (2, "Error: no correction with id 99")


@pytest.mark.parametrize(("args", "code", "said"), [
    (["list", "--limit", "5"], 0, ""),
    (["list", "--limit", "0"], 2, "Input should be greater than or equal to 1"),
    (["list", "--limit", "+5"], 0, ""),
    (["list", "--project", "x"], 2, "'x' is not an integer"),
    (["workflows", "graph", "commitment", "--format", "svg"], 2, "'svg'"),
    (["workflows", "graph", "commitment", "--format", "dot"], 0, ""),
])
def test_parameters_converted_without_pydantic_read_as_before(
    relink: Relink, args: list[str], code: int, said: str
) -> None:
    """Plain values are settled without Typer's adapters, the rest by them: values and
    refusals are Typer's either way."""
    outcome = relink(*args)
    assert outcome.exit_code == code, outcome
    assert said in outcome.stderr
