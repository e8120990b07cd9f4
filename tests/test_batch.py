"""Operators at scale, through the CLI against the sandbox over HTTP: finding invoices, starting
by number, and batches of corrections (created from a file or a query, run, advanced, shown)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INTEGRATOR_ENV, Relink, Sandbox

# the acceptance batch: 35 invoices that may be corrected, and five that may not
GOOD = [f"INV-{3000 + n}" for n in range(36) if n != 5]  # INV-3005 names two invoices
BAD = {
    "INV-3005": "matches 2 invoices",  # 9205 and 9400, both in project 102
    "INV-1002": "is paid",  # 9002: its bill is paid, the ERP refuses to delete it
    "INV-1004": "not synced",  # 9004: nothing to correct
    "INV-1005": "payments have been recorded",  # 9005: Procore refuses the delete
    "INV-9999": "no invoice numbered",  # no such invoice
}
PROJECT_OF = {"INV-1002": 101, "INV-1004": 101, "INV-1005": 101}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["number", "project", "reason", "data"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(name="integrator")
def fixture_integrator(relink: Relink, sandbox: Sandbox) -> Relink:
    """`relink` unlinking in integrator mode (no click awaited), the sandbox's auto-unlink off."""
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    return Relink(relink.db_url, {**relink.env, **INTEGRATOR_ENV})


def entries(relink: Relink, *args: str) -> list[dict[str, Any]]:
    code, doc = relink.json("audit", "log", "--format", "json", "--limit", "10000", *args)
    assert code == 0, doc
    return list(doc["entries"])


def test_invoices_lists_every_page_with_link_and_open_correction(
    relink: Relink, sandbox: Sandbox
) -> None:
    """`relink invoices` reads every page of Procore's list (Link and Total headers) and marks
    each invoice with its ERP link and the correction open on it."""
    assert relink("start", "9200", "--project", "102", "--reason", "open one").exit_code == 0
    code, doc = relink.json("invoices", "--project", "102")
    assert code == 0, doc
    ids = [int(item["id"]) for item in doc["items"]]
    assert ids == [9101, *range(9200, 9400), 9400] and doc["count"] == 202
    pages = [c["path"] for c in sandbox.calls()
             if c["path"].startswith("/rest/v1.1/requisitions?") and "filters" not in c["path"]]
    assert [path.rsplit("page=", 1)[1] for path in pages] == ["1", "2", "3"]  # 100 a page
    by_id = {item["id"]: item for item in doc["items"]}
    assert by_id["9200"]["correction"] == 1 and by_id["9201"]["correction"] is None
    assert (by_id["9200"]["origin_id"], by_id["9200"]["invoice_number"]) == ("1200", "INV-3000")

    code, doc = relink.json("invoices", "--project", "102", "--number", "INV-3005")
    assert sorted(item["id"] for item in doc["items"]) == ["9205", "9400"]
    code, doc = relink.json("invoices", "--project", "101", "--commitment", "5600", "--synced")
    assert [item["invoice_number"] for item in doc["items"]] == [f"INV-400{n}" for n in (1, 2,
                                                                                         3, 4)]
    code, doc = relink.json("invoices", "--project", "101", "--not-synced")
    assert [item["id"] for item in doc["items"]] == ["9004"]
    shown = relink("invoices", "--project", "101", "--status", "draft")
    assert shown.exit_code == 0 and "INV-1004" in shown.stdout and "not synced" in shown.stdout
    assert relink("invoices", "--project", "101", "--since", "2026-13-01").exit_code == 2


def test_start_by_number_resolves_one_and_refuses_several(relink: Relink) -> None:
    """`start --number` starts the one invoice so numbered; a number matching two invoices is
    refused (exit 1) naming both, and the refusal is audited."""
    code, doc = relink.json("start", "--number", "INV-1001", "--project", "101", "--reason", "x")
    assert (code, doc["invoice_id"], doc["state"]) == (0, 9001, "Exported")
    refused = relink("start", "--number", "INV-3005", "--project", "102", "--reason", "x")
    assert refused.exit_code == 1
    assert "matches 2 invoices" in refused.stderr + refused.stdout
    assert "9205" in refused.stderr + refused.stdout and "9400" in refused.stderr + refused.stdout
    audited = entries(relink, "--action", "start", "--outcome", "refused")
    assert [e["evidence"]["matches"] for e in audited] == [["9205", "9400"]]
    assert audited[0]["subject_id"] is None and audited[0]["evidence"]["number"] == "INV-3005"
    assert relink("start", "9001", "--number", "INV-1001", "--project", "101",
                  "--reason", "x").exit_code == 2


@pytest.mark.parametrize("erp", ["intacct"])  # no client-side pacing of a documented rate
def test_a_batch_of_forty_by_number_reaches_reentered_where_it_may(
    integrator: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Acceptance 1: forty invoices given by number in a CSV; every one that may reaches
    Reentered (a data column corrects some, --as-is re-enters the others unchanged), the five
    that may not stop with their refusal audited; the summary and --json agree with `relink
    list`."""
    relink = integrator
    rows = [{"number": number, "project": PROJECT_OF.get(number, 102), "reason": "wrong period",
             "data": json.dumps({"invoice_number": f"{number}-C"}) if n % 2 else ""}
            for n, number in enumerate([*GOOD[:20], *BAD, *GOOD[20:]])]
    assert len(rows) == 40
    path = write_csv(tmp_path / "batch.csv", rows)
    code, created = relink.json("batch", "start", "--from", str(path), "--as-is")
    assert code == 0, created
    batch = str(created["batch"]["id"])
    assert created["counts"] == {"pending": 38, "stopped": 2}  # INV-3005 and INV-9999

    done = relink("batch", "run", batch, "--json")
    assert done.exit_code == 1  # some corrections were refused
    summary = done.json()
    items = {item["label"]: item for item in summary["items"]}
    assert {label for label, item in items.items() if item["status"] == "done"} == set(GOOD)
    assert all(items[label]["state"] == "Reentered" for label in GOOD)
    for number, words in BAD.items():
        assert items[number]["status"] == "stopped" and words in items[number]["message"]

    # each refusal is in the audit log, as the message the summary shows
    refused = entries(relink, "--outcome", "refused")
    said = [entry["message"] for entry in refused]
    for number in BAD:
        assert items[number]["message"] in said, number
    # corrected where the row said so, unchanged where it did not
    after = {req["invoice_number"] for req in sandbox.requisitions(102) if not req["deleted"]}
    for n, number in enumerate([*GOOD[:20], *BAD, *GOOD[20:]]):
        if number in GOOD:
            assert (f"{number}-C" if n % 2 else number) in after

    # the summary and --json agree with `relink list`
    code, listed = relink.json("list", "--limit", "100")
    states = {item["id"]: item["state"] for item in listed["items"]}
    assert {item["correction"]: item["state"] for item in summary["items"]
            if item["correction"]} == states
    assert Counter(states.values()) == {"Reentered": 35, "Exported": 1, "Unlinked": 1}
    code, shown = relink.json("batch", "show", batch)
    assert [(i["correction"], i["state"], i["status"]) for i in shown["items"]] == [
        (i["correction"], i["state"], i["status"]) for i in summary["items"]]
    table = relink("batch", "show", batch)
    assert "Batch" in table.stdout and "Reentered" in table.stdout
    # the batch itself is audited: created, then run
    assert [e["action"] for e in entries(relink, "--action", "batch-start")] == ["batch-start"]
    ran = entries(relink, "--action", "batch-run")
    assert len(ran) == 1 and ran[0]["evidence"]["counts"] == {"done": 35, "stopped": 5}


def test_batch_from_a_query_advanced_a_step_at_a_time(
    relink: Relink, sandbox: Sandbox
) -> None:
    """A batch from a query (the two invoices numbered INV-3005 in project 102): `batch advance`
    runs one step on each correction that allows it, printing one plain line per event; `batch
    run --until` stops each at that state, --jsonl printing each event as it happens."""
    code, created = relink.json("batch", "start", "--project", "102", "--number", "INV-3005",
                                "--synced", "--reason", "period")
    assert code == 0, created
    assert [item["subject_id"] for item in created["items"]] == ["9205", "9400"]
    batch = str(created["batch"]["id"])
    started = relink("batch", "advance", batch, "start")
    assert started.exit_code == 0, started
    assert started.stdout.count(": start succeeded → Exported") == 2
    code, doc = relink.json("batch", "advance", batch, "delete-in-erp")
    assert code == 0 and {item["state"] for item in doc["items"]} == {"DeletedInERP"}
    assert {bill["exists"] for bill in sandbox.bills()
            if bill["qbo_id"] in (1205, 1400)} == {False}
    again = relink("batch", "advance", batch, "delete-in-erp")  # nothing allows it now
    assert again.exit_code == 0 and "succeeded" not in again.stdout
    lines = relink("batch", "run", batch, "--until", "Unlinked", "--jsonl")
    events = [json.loads(line) for line in lines.stdout.splitlines()]
    assert events[-1]["event"] == "summary"
    assert [e["action"] for e in events if e["event"] == "step"] == ["unlink"] * 2
    waiting = [e["message"] for e in events if e["event"] == "waiting"]  # where to click
    assert len(waiting) == 2 and all("click Unlink" in said for said in waiting)
    assert {item["state"] for item in events[-1]["items"]} == {"Unlinked"}
    assert [e["action"] for e in entries(relink, "--action", "delete-in-erp")] == [
        "delete-in-erp"] * 4  # in flight, then succeeded, for each


def test_bad_batch_files_are_one_line_exit_2(relink: Relink, tmp_path: Path) -> None:
    """An unknown column, an id that is not one, a row naming neither id nor number, bad data,
    or no reason: exit 2 with one line naming the row; no batch is created."""
    cases = {
        "number,project,colour\nINV-1001,101,red\n": "unknown column 'colour'",
        "number,project,reason\nINV-1001,one-o-one,x\n": "row 2: project",
        "project,reason\n101,x\n": "row 2: give the subject's id or its number",
        'number,project,reason,data\nINV-1001,101,x,"{""total"": 1}"\n': "invalid data",
        "number,project\nINV-1001,101\n": "row 2: no reason",
        '[{"number": "INV-1001", "project": "101", "reason": "x"}]': "row 1: project",
    }
    for text, words in cases.items():
        path = tmp_path / ("rows.json" if text.startswith("[") else "rows.csv")
        path.write_text(text)
        outcome = relink("batch", "start", "--from", str(path))
        assert outcome.exit_code == 2, (text, outcome)
        assert words in outcome.stderr and len(outcome.stderr.strip().splitlines()) == 1, (
            text, outcome.stderr)
    assert relink("batch", "show", "1").exit_code == 2  # none was created
