"""Bad input gets one clear line and the right exit code, never a traceback, and nothing is
written or sent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import Outcome, Relink, Sandbox


def one_clear_line(outcome: Outcome) -> str:
    assert "Traceback" not in outcome.stdout + outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    return lines[0]


def test_unknown_id(relink: Relink) -> None:
    """An unknown correction id exits 2 with one line."""
    for command in (["show", "999"], ["advance", "999", "unlink"], ["resume", "999"]):
        outcome = relink(*command)
        assert outcome.exit_code == 2
        assert one_clear_line(outcome) == "Error: no correction with id 999"


def test_unknown_step(relink: Relink) -> None:
    """An unknown step name exits 2 and lists the steps."""
    outcome = relink("advance", "1", "teleport")
    assert outcome.exit_code == 2
    said = one_clear_line(outcome)
    assert "'teleport' is not a step of any workflow" in said
    assert "delete-in-erp, confirm-erp-deletion, unlink" in said


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.toml", "invoice_number = ", "not valid TOML"),
        ("unknown.json", '{"colour": "red"}', "unknown field 'colour'"),
        ("types.json", '{"period_id": "seven"}', "period_id must be a positive integer"),
        ("date.toml", 'billing_date = "27/11/2026"', "billing_date must be a date"),
        ("float.json", '{"items": [{"line_item_id": 55011, "work_completed_this_period": 12.5}]}',
         "as strings"),
        ("item.json", '{"items": [{"line_item_id": 55011, "colour": "red"}]}',
         "unknown field 'colour'"),
        # Procore's items have no description: they are named by the line item they bill
        ("described.json", '{"items": [{"line_item_id": 55011, "description": "Steel"}]}',
         "unknown field 'description'"),
        ("unnamed.json", '{"items": [{"work_completed_this_period": "1.00"}]}',
         "must name the line it corrects"),
        ("project.json", '{"project_id": 102}', "project_id cannot be changed"),
        ("list.json", "[1, 2]", "must hold an object"),
    ],
)
def test_invalid_data_file(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    """A malformed or invalid data file exits 2 before anything is sent or written."""
    _, doc = relink.json("start", "9001", "--project", "101", "--reason", "x")
    wid = doc["id"]
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert relink.json("advance", str(wid), step)[0] == 0
    before_calls = len(sandbox.calls())
    before_log = len(relink.json("audit", "log", "--format", "json")[1]["entries"])
    path = tmp_path / name
    path.write_text(content)
    outcome = relink("advance", str(wid), "reenter", "--data", str(path))
    assert outcome.exit_code == 2
    assert expected in one_clear_line(outcome)
    assert len(sandbox.calls()) == before_calls
    assert len(relink.json("audit", "log", "--format", "json")[1]["entries"]) == before_log


def test_missing_data_file(relink: Relink, tmp_path: Path) -> None:
    """A data file that does not exist exits 2."""
    outcome = relink("advance", "1", "reenter", "--data", str(tmp_path / "nope.json"))
    assert outcome.exit_code == 2
    assert "no such file" in one_clear_line(outcome)


def test_unreachable_sandbox(relink: Relink) -> None:
    """Procore unreachable: exit 3, one line, the failure audited, nothing changed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = relink("start", "9001", "--project", "101", "--reason", "x",
                     RELINK_PROCORE_URL=f"http://127.0.0.1:{port}",
                     RELINK_HTTP_MAX_ATTEMPTS="2")
    assert outcome.exit_code == 3
    assert "Traceback" not in outcome.stdout + outcome.stderr
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    assert [(e["action"], e["outcome"]) for e in entries] == [("start", "failed")]
    assert relink.json("list")[1]["items"] == []


def test_rejected_token(relink: Relink) -> None:
    """A token Procore rejects: exit 1 with one line naming it."""
    outcome = relink("start", "9001", "--project", "101", "--reason", "x", token="wrong")
    assert outcome.exit_code == 1
    assert "rejected the credentials" in outcome.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["start", "abc", "--project", "101", "--reason", "x"],
        ["start", "9001", "--reason", "x"],
        ["list", "--stale", "soon"],
        ["list", "--state", "Limbo"],
        ["audit", "log", "--since", "yesterday"],
        ["audit", "log", "--outcome", "maybe"],
        ["--db", "mysql://x/y", "list"],
        ["workflows", "graph", "nope"],
    ],
)
def test_usage_errors(relink: Relink, args: list[str]) -> None:
    """Bad options and values exit 2 with one line, no traceback."""
    outcome = relink(*args)
    assert outcome.exit_code == 2, outcome
    assert one_clear_line(outcome).startswith("Error: ")


def test_bad_config_file(relink: Relink, tmp_path: Path) -> None:
    """An invalid relink.toml exits 2 naming the problem."""
    config = tmp_path / "relink.toml"
    config.write_text('[procore]\ncompany_id = "many"\n')
    outcome = relink("--config", str(config), "list")
    assert outcome.exit_code == 2
    assert "procore.company_id must be an integer" in one_clear_line(outcome)
    config.write_text("[procore\n")
    outcome = relink("--config", str(config), "list")
    assert outcome.exit_code == 2
    assert "not valid TOML" in one_clear_line(outcome)
