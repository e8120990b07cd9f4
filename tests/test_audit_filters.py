"""A reviewer's questions answered (issue 11, item 11): `audit log --verbose` and `audit show
SEQ` show permissions, reason, remote calls and the field-by-field difference; `--actor` takes
a login's local part in any case; `--invoice` finds a correction by the invoice it re-entered;
`--action` and `--state` are checked like `--outcome`. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from commands.app import known_state, known_step
from tests.audit_support import ACTORS, build_log, opened
from tests.conftest import Relink
from tests.terminal_support import corrections


@pytest.fixture(name="made")
def fixture_made(relink: Relink, tmp_path: Path) -> dict[str, Any]:
    """Corrections re-entered, cancelled and open, made through the sandbox."""
    return corrections(relink, tmp_path)


def flat(text: str) -> str:
    """Text without its whitespace: long values may wrap anywhere in a narrow terminal."""
    return "".join(text.split())


def entries(relink: Relink, *args: str) -> list[dict[str, Any]]:
    code, doc = relink.json("audit", "log", "--format", "json", *args)
    assert code == 0, doc
    return list(doc["entries"])


def seqs(relink: Relink, *args: str) -> list[int]:
    return [entry["seq"] for entry in entries(relink, *args)]


def test_verbose_shows_permissions_reason_calls_and_changes(
    relink: Relink, made: dict[str, Any]
) -> None:
    """--verbose adds, under each entry, the actor in full, the permissions read and required,
    the reason, every remote call (method, path, status, request id) and what changed."""
    wid = str(made["reentered"])
    outcome = relink("audit", "log", "--workflow", wid, "--verbose", COLUMNS="80")
    assert outcome.exit_code == 0, outcome
    text = flat(outcome.stdout)
    trail = entries(relink, "--workflow", wid)
    deleted = next(e for e in trail if e["action"] == "delete-in-erp"
                   and e["outcome"] == "succeeded")
    reentered = next(e for e in trail if e["action"] == "reenter"
                     and e["outcome"] == "succeeded")
    assert flat("actor Ana Alvarez <ana@summit.example> (Procore user 7001)") in text
    assert flat(f"reason {deleted['reason']}") in text
    read = deleted["evidence"]["permissions"]
    assert flat(f"commitments {read['commitments']}") in text
    required = text.split(flat("required:"), 1)[1]
    for needed in ("Can Push to Accounting", "Commitments Admin", "ERP Integrations Standard"):
        assert flat(needed) in required, needed
    for entry in (deleted, reentered):
        for call in entry["evidence"]["calls"]:
            shown = f"{call['method']} {call['path']} → {call['status']}"
            assert flat(shown) in text, shown
            assert flat(f"request {call['request_id']}") in text
    assert flat("invoice_number: INV-1001 → INV-1001-C") in text
    assert flat(f"id: 9001 → {made['new_invoice']}") in text
    assert flat("state DeletedInProcore → Reentered") in text


def test_audit_show_one_entry_in_full(relink: Relink, made: dict[str, Any]) -> None:
    """`audit show SEQ` shows one entry with its difference and hashes; --json adds
    ``changes`` to the entry; an unknown seq is exit 2."""
    trail = entries(relink, "--workflow", str(made["reentered"]), "--action", "reenter")
    entry = next(e for e in trail if e["outcome"] == "succeeded")
    outcome = relink("audit", "show", str(entry["seq"]), COLUMNS="80")
    assert outcome.exit_code == 0, outcome
    text = flat(outcome.stdout)
    for line in (f"seq {entry['seq']}", "action reenter", f"message {entry['message']}",
                 "invoice_number: INV-1001 → INV-1001-C", "data file invoice_number: INV-1001-C",
                 f"hash {entry['hash']}", f"previous hash {entry['prev_hash']}"):
        assert flat(line) in text, line
    code, doc = relink.json("audit", "show", str(entry["seq"]))
    assert code == 0
    assert {key: doc[key] for key in entry} == entry
    assert {"field": "invoice_number", "before": "INV-1001", "after": "INV-1001-C",
            "kind": "changed"} in doc["changes"]
    assert {change["field"] for change in doc["changes"]} >= {"id", "invoice_number"}
    started = relink("audit", "show", "1", COLUMNS="80")  # a lone snapshot: field by field
    assert started.exit_code == 0 and flat("invoice_number: INV-1001") in flat(started.stdout)
    missing = relink("audit", "show", "999")
    assert missing.exit_code == 2 and missing.stderr == "Error: no audit entry with seq 999\n"


def test_actor_matches_the_local_part_in_any_case(relink: Relink) -> None:
    """--actor dana, DANA.WHITFIELD or the full login in another case find the same entries;
    a part of a name finds none; exports filter alike."""
    with opened(relink.db_url) as db:
        written = build_log(db, corrections=4)
    login = ACTORS[0][1]
    dana = [e["seq"] for e in written if e["actor_login"] == login]
    assert 0 < len(dana) < len(written)
    local = login.split("@")[0]
    for actor in (local, local.upper(), login.title(), login):
        assert seqs(relink, "--actor", actor) == dana, actor
    for actor in (local[:4], login.split("@")[1], f"{local}@elsewhere.example"):
        assert seqs(relink, "--actor", actor) == [], actor
    exported = relink("audit", "export", "--format", "jsonl", "--actor", local.upper())
    assert [json.loads(line)["seq"] for line in exported.stdout.splitlines()] == dana


def test_invoice_finds_a_correction_by_its_reentered_invoice(
    relink: Relink, made: dict[str, Any]
) -> None:
    """--invoice NEW (the invoice a correction re-entered) finds that correction's entries, as
    --invoice of the original does; exports filter alike."""
    wid = made["reentered"]
    trail = seqs(relink, "--workflow", str(wid))
    assert seqs(relink, "--invoice", "9001") == trail
    assert seqs(relink, "--invoice", str(made["new_invoice"])) == trail
    exported = relink("audit", "export", "--format", "jsonl", "--invoice", str(made["new_invoice"]))
    assert [json.loads(line)["seq"] for line in exported.stdout.splitlines()] == trail
    assert seqs(relink, "--invoice", "9002") == seqs(relink, "--workflow",
                                                     str(made["cancelled"]))


@pytest.mark.parametrize("command", [["audit", "log"], ["audit", "export", "--format", "csv"]])
def test_an_unknown_action_is_a_usage_error(relink: Relink, command: list[str]) -> None:
    """--action is checked like --outcome: exit 2, one line suggesting the closest action and
    listing them; nothing on stdout."""
    outcome = relink(*command, "--action", "unlnk")
    assert outcome.exit_code == 2 and outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Invalid value for '--action': 'unlnk' is not an action")
    assert "did you mean 'unlink'?" in lines[0] and "start, " in lines[0]
    assert relink(*command, "--action", "teleport").exit_code == 2


def test_an_action_in_another_case_is_that_action(relink: Relink) -> None:
    """--action UNLINK finds the unlink entries."""
    with opened(relink.db_url) as db:
        build_log(db, corrections=2)
    unlinks = seqs(relink, "--action", "unlink")
    assert unlinks and seqs(relink, "--action", "UNLINK") == unlinks


def test_states_and_steps_are_named_in_any_case_with_suggestions() -> None:
    """known_state and known_step (parsers for `list --state` and `advance STEP`) take any
    case and suggest the closest name."""
    assert known_state("exported") == "Exported"
    assert known_state("DELETEDINERP") == "DeletedInERP"
    assert known_step("UNLINK") == "unlink"
    with pytest.raises(typer.BadParameter, match=r"did you mean 'Exported'\?"):
        known_state("exportd")
    with pytest.raises(typer.BadParameter, match=r"'unlnk' is not a step.*did you mean 'unlink'"):
        known_step("unlnk")
    with pytest.raises(typer.BadParameter, match=r"\(steps: delete-in-erp, "):
        known_step("teleport")


def test_list_takes_a_state_in_any_case(relink: Relink, made: dict[str, Any]) -> None:
    """`list --state exported` lists the corrections in Exported."""
    code, doc = relink.json("list", "--state", "exported")
    assert code == 0, doc
    assert [item["id"] for item in doc["items"]] == [made["open"]]


def test_advance_suggests_the_step_meant(relink: Relink, made: dict[str, Any]) -> None:
    """`advance ID unlnk` is exit 2 suggesting unlink; nothing is recorded."""
    before = seqs(relink)
    outcome = relink("advance", str(made["open"]), "unlnk")
    assert outcome.exit_code == 2
    assert "did you mean 'unlink'?" in outcome.stderr
    assert seqs(relink) == before
