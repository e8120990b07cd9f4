"""`--json` (issue 11, item 12): exactly one JSON document on stdout for every command and
every error, --json accepted after the command too; the root's options that take a value are
answered with their place."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import build_log, opened
from tests.conftest import Relink
from tests.terminal_support import RELINK, script_env


@pytest.fixture(name="logged")
def fixture_logged(relink: Relink) -> list[dict[str, Any]]:
    """An audit log of two corrections (10 entries)."""
    with opened(relink.db_url) as db:
        return build_log(db, corrections=2)


def one_document(stdout: str) -> Any:
    """The one JSON document ``stdout`` holds (json.loads refuses a second one)."""
    assert stdout.endswith("\n") and stdout.strip(), stdout
    return json.loads(stdout)


@pytest.mark.parametrize(
    ("args", "code", "key"),
    [
        (["--json", "--version"], 0, "version"),
        (["--json", "--help"], 0, "help"),
        (["--json", "audit", "log", "--help"], 0, "help"),
        (["--json", "bogus"], 2, "error"),
        (["--json"], 2, "error"),
        (["--json", "audit"], 2, "error"),
        (["--json", "audit", "log", "--format", "csv"], 0, "entries"),
        (["--json", "audit", "log", "--format", "jsonl"], 0, "entries"),
        (["--json", "audit", "log", "--action", "teleport"], 2, "error"),
        (["--json", "audit", "log", "--outcome", "bogus"], 2, "error"),
        (["--json", "audit", "log", "--since", "yesterday"], 2, "error"),
        (["--json", "audit", "show", "3"], 0, "seq"),
        (["--json", "audit", "show", "999"], 2, "error"),
        (["--json", "init"], 0, "database"),
        (["--json", "show", "999"], 2, "error"),
        (["--json", "show", "abc"], 2, "error"),
        (["--json", "list"], 0, "items"),
        (["--json", "workflows", "graph", "commitment"], 0, "source"),
        (["--json", "workflows", "show", "nothing-such"], 2, "error"),
        (["audit", "log", "--json"], 0, "entries"),
        (["audit", "--json", "log"], 0, "entries"),
        (["workflows", "list", "--json"], 0, "workflows"),
    ],
)
def test_one_json_document_for_every_command_and_error(
    relink: Relink, logged: list[dict[str, Any]], args: list[str], code: int, key: str
) -> None:
    """With --json (before or after the command) stdout holds exactly one JSON document: the
    result, or {"error", "exit_code"} with the exit code, its line also on stderr."""
    outcome = relink(*args)
    assert outcome.exit_code == code, outcome
    doc = one_document(outcome.stdout)
    assert key in doc, doc
    if key == "error":
        assert doc["exit_code"] == code
        assert outcome.stderr.splitlines() == [f"Error: {doc['error']}"]
    if key == "entries":
        assert [entry["seq"] for entry in doc["entries"]] == [e["seq"] for e in logged]


@pytest.mark.parametrize(("fmt", "key"), [("jsonl", "entries"), ("csv", "entries"),
                                          ("ocsf", "events")])
def test_export_with_json_is_one_document(
    relink: Relink, logged: list[dict[str, Any]], fmt: str, key: str, tmp_path: Path
) -> None:
    """`--json audit export` prints the export as one document (CSV rows as objects); with
    --out the file holds the export and stdout says what was written."""
    outcome = relink("--json", "audit", "export", "--format", fmt, "--project", "101")
    assert outcome.exit_code == 0, outcome
    doc = one_document(outcome.stdout)
    wanted = [e for e in logged if e["project_id"] == 101]
    assert (doc["format"], doc["count"], len(doc[key])) == (fmt, len(wanted), len(wanted))
    if fmt == "csv":
        assert [int(row["seq"]) for row in doc[key]] == [e["seq"] for e in wanted]
    out = tmp_path / f"audit.{fmt}"
    written = relink("audit", "export", "--format", fmt, "--out", str(out), "--json")
    assert one_document(written.stdout) == {"out": str(out), "format": fmt,
                                            "count": len(logged)}
    assert out.stat().st_size > 0


def test_json_after_the_command_is_the_same_document(relink: Relink) -> None:
    """`show ID --json` prints what `--json show ID` prints."""
    _, doc = relink.json("start", "9001", "--project", "101", "--reason", "wrong number")
    before = relink("--json", "show", str(doc["id"]))
    after = relink("show", str(doc["id"]), "--json")
    assert after.exit_code == before.exit_code == 0
    assert one_document(after.stdout) == one_document(before.stdout)


def test_a_root_option_after_the_command_names_its_place(relink: Relink) -> None:
    """`show 1 --db URL` is exit 2 saying --db goes before the command."""
    outcome = relink("show", "1", "--db", "sqlite:///x.db")
    assert outcome.exit_code == 2
    assert outcome.stderr == ("Error: --db is a global option: put it before the command"
                              " (relink --db ... COMMAND)\n")


def test_the_installed_script_answers_json_version_and_unknown_commands(
    relink: Relink,
) -> None:
    """The real script: --json --version and --json bogus each print one document."""
    env = {**os.environ, **script_env(relink)}
    version = subprocess.run([RELINK, "--json", "--version"], env=env, capture_output=True,
                             text=True)
    assert version.returncode == 0 and "version" in one_document(version.stdout)
    bogus = subprocess.run([RELINK, "--json", "bogus"], env=env, capture_output=True, text=True)
    assert bogus.returncode == 2
    assert one_document(bogus.stdout) == {"error": "No such command 'bogus'.", "exit_code": 2}
