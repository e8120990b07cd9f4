"""The cascade: correcting an invoice that is not the most recent on its commitment, through the
CLI against the sandbox. Commitment 5600 carries 9601-9604, numbered 1-4; only 9604 may be
deleted directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INTEGRATOR_ENV, Relink, Sandbox
from workflows.requisition import WRITABLE

COMMITMENT = 5600


@pytest.fixture(name="integrator")
def fixture_integrator(relink: Relink, sandbox: Sandbox) -> Relink:
    """`relink` unlinking in integrator mode, the sandbox's auto-unlink off."""
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    return Relink(relink.db_url, {**relink.env, **INTEGRATOR_ENV})


def live_invoices(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The commitment's invoices in Procore now, in their order (``number``)."""
    found = [req for req in sandbox.requisitions(101)
             if req["commitment_id"] == COMMITMENT and not req["deleted"]]
    return sorted(found, key=lambda req: req["number"])


def writable(invoice: dict[str, Any]) -> dict[str, Any]:
    """Every writable field of an invoice, its items by the line they bill."""
    fields = {key: invoice.get(key) for key in WRITABLE if key != "items"}
    fields["items"] = sorted(
        (item.get("line_item_id") or item.get("detail_line_item_id"),
         item["work_completed_this_period"], item["materials_presently_stored"],
         item.get("comment"))
        for item in invoice.get("items") or []
    )
    return fields


def entries(relink: Relink, *args: str) -> list[dict[str, Any]]:
    code, doc = relink.json("audit", "log", "--format", "json", "--limit", "10000", *args)
    assert code == 0, doc
    return list(doc["entries"])


def test_dry_run_shows_the_plan_and_changes_nothing(
    relink: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    """`--dry-run` prints the plan (unwind 9604 then 9603, correct 9602, re-enter 9603 then
    9604 as they were) and sends no write anywhere."""
    outcome = relink("start", "9602", "--project", "101", "--reason", "x", "--cascade",
                     "--dry-run")
    assert outcome.exit_code == 0, outcome
    lines = [line.strip() for line in outcome.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [line.split(":")[0] for line in lines] == [
        "1. unwind invoice 9604 (INV-4004)", "2. unwind invoice 9603 (INV-4003)",
        "3. correct invoice 9602 (INV-4002)", "4. re-enter invoice 9603 (INV-4003) as it was",
        "5. re-enter invoice 9604 (INV-4004) as it was"]
    assert "reenter (as is)" in lines[3]
    code, doc = relink.json("start", "9602", "--project", "101", "--reason", "x", "--cascade",
                            "--dry-run")
    assert code == 0
    assert [(op["role"], op["subject_id"]) for op in doc["operations"]] == [
        ("unwind", "9604"), ("unwind", "9603"), ("target", "9602"), ("reenter", "9603"),
        ("reenter", "9604")]
    assert sandbox.mutating_calls() == []
    assert relink("list").stdout.strip() == "No corrections match."
    no_yes = relink("start", "9602", "--project", "101", "--reason", "x", "--cascade",
                    "--data", str(_data(tmp_path)))
    assert no_yes.exit_code == 2 and "--yes" in no_yes.stderr  # not a terminal: no question
    assert sandbox.mutating_calls() == []


def _data(folder: Path) -> Path:
    path = folder / "corrected.json"
    path.write_text(json.dumps({"invoice_number": "INV-4002-C", "comment": "corrected"}))
    return path


def test_a_cascade_on_the_second_of_four_invoices(
    integrator: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Acceptance 3: the cascade on 9602 ends with four invoices on the commitment, in the
    original order: 9601 untouched, the second corrected, the third and fourth equal to their
    snapshots in every writable field; the audit log holds the plan (parent) and its children,
    each child's start naming it."""
    relink = integrator
    before = {req["id"]: req for req in live_invoices(sandbox)}
    assert sorted(before) == [9601, 9602, 9603, 9604]
    code, doc = relink.json("start", "9602", "--project", "101", "--reason", "wrong number",
                            "--cascade", "--data", str(_data(tmp_path)), "--yes")
    assert code == 0, doc
    assert doc["batch"]["kind"] == "plan" and doc["batch"]["status"] == "finished"

    after = live_invoices(sandbox)
    assert [req["number"] for req in after] == [1, 2, 3, 4]
    assert after[0] == {**before[9601], "items": after[0]["items"]} and after[0]["id"] == 9601
    assert after[1]["invoice_number"] == "INV-4002-C" and after[1]["comment"] == "corrected"
    assert writable(after[1]) == writable(before[9602]) | {"invoice_number": "INV-4002-C",
                                                           "comment": "corrected"}
    assert writable(after[2]) == writable(before[9603])
    assert writable(after[3]) == writable(before[9604])
    assert all(req["id"] not in before for req in after[1:])  # re-entered as new invoices

    plan_id = str(doc["batch"]["id"])
    parent = entries(relink, "--action", "plan-start") + entries(relink, "--action", "plan-run")
    assert [(e["action"], e["outcome"], e["subject_id"]) for e in parent] == [
        ("plan-start", "succeeded", plan_id), ("plan-run", "succeeded", plan_id)]
    children = [e for e in entries(relink, "--action", "start") if e["outcome"] == "succeeded"]
    assert [(e["invoice_id"], e["evidence"]["batch"]["id"], e["evidence"]["batch"]["role"])
            for e in children] == [(9604, int(plan_id), "unwind"), (9603, int(plan_id), "unwind"),
                                   (9602, int(plan_id), "target")]
    reentries = [e for e in entries(relink, "--action", "reenter")
                 if e["outcome"] == "succeeded"]
    assert [e["invoice_id"] for e in reentries] == [9602, 9603, 9604]  # oldest first
    code, listed = relink.json("list")
    assert {item["state"] for item in listed["items"]} == {"Reentered"}
    assert relink("audit", "verify").exit_code == 0


def test_a_refused_child_stops_the_plan_which_resumes(
    integrator: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A refusal in a child stops the plan where it stands (audited, exit 1), the parent not
    finished while its children are open; once the cause is gone, `relink batch run PLAN`
    continues it to the end."""
    relink = integrator
    # someone else has a correction open on 9603: the plan's start of 9603 is refused
    assert relink("start", "9604", "--project", "101", "--reason", "other").exit_code == 0
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert relink("advance", "1", step).exit_code == 0
    assert relink("start", "9603", "--project", "101", "--reason", "other").exit_code == 0
    stopped = relink("--json", "start", "9602", "--project", "101", "--reason", "wrong number",
                     "--cascade", "--data", str(_data(tmp_path)), "--yes")
    assert stopped.exit_code == 1, stopped
    doc = stopped.json()
    assert doc["batch"]["status"] == "stopped"
    assert "already has an open correction" in doc["message"]
    ran = entries(relink, "--action", "plan-run")
    assert [(e["outcome"], e["to_state"]) for e in ran] == [("refused", "stopped")]

    # the other operator gives up theirs on 9603: the plan goes on from where it stopped
    assert relink("advance", "2", "cancel").exit_code == 0
    plan = str(doc["batch"]["id"])
    done = relink("--json", "batch", "run", plan)
    assert done.exit_code == 0, done
    assert done.json()["batch"]["status"] == "finished"
    assert relink("advance", "1", "reenter", "--as-is").exit_code == 0  # theirs, on 9604
    assert [req["invoice_number"] for req in live_invoices(sandbox)] == [
        "INV-4001", "INV-4002-C", "INV-4003", "INV-4004"]
    ran = entries(relink, "--action", "plan-run")
    assert [(e["outcome"], e["to_state"]) for e in ran] == [("refused", "stopped"),
                                                           ("succeeded", "finished")]
    assert relink("audit", "verify").exit_code == 0
