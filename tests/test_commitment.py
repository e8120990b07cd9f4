"""The second workflow, `commitment` (Procore's "Unlink Commitments Synced with ERP"), through the
CLI against the sandbox over HTTP: both ways out of Unlinked, Procore's red and green messages,
the ERPs that sync commitments and the one that does not, refusals audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Relink, Sandbox

COMMITMENT = ("--workflow", "commitment")


def started(relink: Relink, commitment: int) -> int:
    code, doc = relink.json("start", *COMMITMENT, str(commitment), "--project", "101",
                            "--reason", "wrong vendor exported")
    assert code == 0, doc
    return int(doc["id"])


def history(relink: Relink, wid: int) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in relink.json("show", str(wid))[1]["history"]]


def commitment(sandbox: Sandbox, commitment_id: int) -> dict[str, Any] | None:
    found = [c for c in sandbox.control("GET", "state/commitments?project_id=101")
             if c["id"] == commitment_id and not c.get("deleted")]
    return found[0] if found else None


@pytest.mark.parametrize("erp", ["intacct", "xero"], indirect=True)
def test_correct_and_send_back_to_the_erp(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, erp: str
) -> None:
    product = {"intacct": "Sage Intacct", "xero": "Xero"}[erp]
    wid = started(relink, 6001)
    code, doc = relink.json("show", str(wid))
    assert (doc["workflow"], doc["subject_type"], doc["commitment_id"], doc["state"]) == (
        "commitment", "commitment", 6001, "Synced")
    assert doc["next"] == ["delete-in-erp", "confirm-erp-deletion", "cancel"]

    # out of order: Procore's red message while the ERP still holds the transaction
    code, doc = relink.json("advance", str(wid), "unlink")
    assert code == 1 and doc["message"] == (
        f"The commitment is still in {product}. Please delete it before retrying.")
    assert relink.json("advance", str(wid), "delete-in-erp")[1]["state"] == "DeletedInERP"
    code, doc = relink.json("advance", str(wid), "unlink")
    assert (code, doc["message"], doc["state"]) == (0, "Successfully Unlinked", "Unlinked")
    assert doc["next"] == ["correct", "delete-in-procore"]  # the branch
    assert commitment(sandbox, 6001)["origin_id"] is None

    data = tmp_path / "corrected.json"
    data.write_text(json.dumps({"title": "Structural steel, corrected"}))
    code, doc = relink.json("advance", str(wid), "correct", "--data", str(data))
    assert (code, doc["state"]) == (0, "Corrected"), doc
    assert "confirm-resync" in doc["message"]
    assert commitment(sandbox, 6001)["title"] == "Structural steel, corrected"
    # not accepted in the ERP yet: confirm-resync is refused, audited, nothing changes
    code, doc = relink.json("advance", str(wid), "confirm-resync")
    assert (code, doc["state"]) == (1, "Corrected") and "not in" in doc["message"], doc
    sandbox.control("POST", "erp/commitments/6001/accept")
    code, doc = relink.json("advance", str(wid), "confirm-resync")
    assert (code, doc["state"], doc["next"]) == (0, "Resynced", []), doc
    assert doc["resynced_as"] == commitment(sandbox, 6001)["origin_id"] is not None
    assert history(relink, wid) == [
        ("start", "succeeded"), ("unlink", "refused"),
        ("delete-in-erp", "in_flight"), ("delete-in-erp", "succeeded"),
        ("unlink", "in_flight"), ("unlink", "succeeded"),
        ("correct", "in_flight"), ("correct", "succeeded"),
        ("confirm-resync", "refused"), ("confirm-resync", "succeeded")]
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    assert {(e["subject_type"], e["subject_id"], e["invoice_id"]) for e in entries} == {
        ("commitment", "6001", None)}
    assert relink("audit", "verify").exit_code == 0


@pytest.mark.parametrize("erp", ["intacct"], indirect=True)
def test_set_to_draft_and_delete(relink: Relink, sandbox: Sandbox) -> None:
    wid = started(relink, 6001)
    for step in ("delete-in-erp", "unlink"):
        assert relink.json("advance", str(wid), step)[0] == 0
    code, doc = relink.json("advance", str(wid), "delete-in-procore", token="sandbox-cara")
    assert code == 1 and "needs Commitments Admin (has Standard)" in doc["message"], doc
    code, doc = relink.json("advance", str(wid), "delete-in-procore")
    assert (code, doc["state"]) == (0, "Deleted"), doc
    assert "Draft" in doc["message"] and commitment(sandbox, 6001) is None
    assert ("delete-in-procore", "refused") in history(relink, wid)
    assert relink("audit", "verify").exit_code == 0


@pytest.mark.parametrize("erp", ["intacct", "xero"], indirect=True)
def test_what_the_erp_and_procore_refuse(relink: Relink, sandbox: Sandbox) -> None:
    billed = started(relink, 6002)
    code, doc = relink.json("advance", str(billed), "delete-in-erp")
    assert code == 1 and doc["state"] == "Synced", doc
    assert doc["message"].startswith(("Refused by Sage Intacct", "Refused by Xero")), doc
    code, doc = relink.json("start", *COMMITMENT, "6003", "--project", "101", "--reason", "x")
    assert code == 1 and "not synced with the ERP" in doc["message"], doc
    gone = started(relink, 6004)
    code, doc = relink.json("advance", str(gone), "confirm-erp-deletion")
    assert (code, doc["state"]) == (0, "DeletedInERP"), doc
    code, doc = relink.json("start", *COMMITMENT, "6001", "--project", "101", "--reason", "x",
                            token="sandbox-rita")
    assert code == 1 and "needs Commitments Admin" in doc["message"], doc
    # an invoice and a commitment with the same id are different subjects
    assert relink.json("start", "9001", "--project", "101", "--reason", "x")[0] == 0
    refused = [e for e in relink.json("audit", "log", "--format", "json")[1]["entries"]
               if e["outcome"] == "refused"]
    assert [(e["action"], e["subject_id"]) for e in refused] == [
        ("delete-in-erp", "6002"), ("start", "6003"), ("start", "6001")]
    assert relink("audit", "verify").exit_code == 0
    # list: every workflow's corrections, or one workflow's; states of any workflow
    items = relink.json("list")[1]["items"]
    assert [(i["workflow"], i["subject_id"]) for i in items] == [
        ("subcontractor-invoice", "9001"), ("commitment", "6004"), ("commitment", "6002")]
    items = relink.json("list", "--workflow", "commitment", "--state", "Synced")[1]["items"]
    assert [i["subject_id"] for i in items] == ["6002"]
    code, doc = relink.json("list", "--state", "Resynced")
    assert code == 0 and doc["items"] == []
    table = relink("list")
    assert table.exit_code == 0 and "commitment 6004" in table.stdout


def test_quickbooks_online_does_not_sync_commitments(relink: Relink, sandbox: Sandbox) -> None:
    code, doc = relink.json("start", *COMMITMENT, "6001", "--project", "101", "--reason", "x")
    assert code == 1 and doc["message"] == (
        "Refused: Procore's QuickBooks Online connector does not sync commitments;"
        " there is nothing to unlink."), doc
    assert sandbox.mutating_calls() == []


def test_both_workflows_are_listed_and_the_branch_is_drawn(relink: Relink) -> None:
    code, doc = relink.json("workflows", "list")
    assert [(w["name"], w["subject_type"], w["default"]) for w in doc["workflows"]] == [
        ("subcontractor-invoice", "requisition", True), ("commitment", "commitment", False)]
    graph = relink("workflows", "graph", "commitment")
    assert graph.exit_code == 0
    assert "Unlinked --> Corrected" in graph.stdout and "Unlinked --> Deleted" in graph.stdout
    code, doc = relink.json("whoami", "--workflow", "commitment", "--project", "101")
    assert code == 0 and doc["workflow"] == "commitment"
    assert [s["step"] for s in doc["steps"]][:2] == ["start", "delete-in-erp"]
