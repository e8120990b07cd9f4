"""The subcontractor-invoice correction end to end: the CLI against the sandbox over real HTTP,
on every storage backend and for every ERP product."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Relink, Sandbox

PRODUCTS = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}


@pytest.fixture(name="erp", params=["qbo", "xero", "intacct"])
def fixture_erp(request: pytest.FixtureRequest) -> str:
    """Every ERP product the sandbox plays."""
    return str(request.param)


def still_in_erp(erp: str) -> str:
    return f"The requisition is still in {PRODUCTS[erp]}. Please delete it before retrying."


def start(relink: Relink, invoice: int = 9001, project: int = 101, **kw: Any) -> int:
    code, doc = relink.json("start", str(invoice), "--project", str(project),
                            "--reason", "Wrong amount exported", **kw)
    assert code == 0, doc
    return int(doc["id"])


def advance(relink: Relink, wid: int, step: str, *extra: str, **kw: Any) -> tuple[int, Any]:
    return relink.json("advance", str(wid), step, *extra, **kw)


def history(relink: Relink, wid: int) -> list[dict[str, Any]]:
    code, doc = relink.json("audit", "log", "--workflow", str(wid), "--format", "json")
    assert code == 0
    return list(doc["entries"])


def test_full_correction(relink: Relink, sandbox: Sandbox, tmp_path: Path) -> None:
    """Ana corrects invoice 9001 from start to Reentered; both systems and the audit agree."""
    wid = start(relink)
    bill = sandbox.bill_id(183)
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        code, doc = advance(relink, wid, step, "--reason", "fix amount")
        assert (code, doc["outcome"]) == (0, "succeeded"), doc
    assert doc["state"] == "DeletedInProcore"
    data = tmp_path / "corrected.json"
    data.write_text(json.dumps({"invoice_number": "INV-1001-C"}))
    code, doc = advance(relink, wid, "reenter", "--data", str(data))
    assert (code, doc["state"], doc["next"]) == (0, "Reentered", []), doc

    bills = {b["id"]: b for b in sandbox.bills()}
    assert bills[bill]["exists"] is False
    invoices = {r["id"]: r for r in sandbox.requisitions(101)}
    assert invoices[9001]["deleted"] is True
    new = invoices[doc["new_invoice_id"]]
    original = invoices[9001]
    assert new["invoice_number"] == "INV-1001-C"
    for field in ("period_id", "billing_date", "requisition_start", "requisition_end",
                  "status", "commitment_id", "project_id", "comment", "final"):
        assert new[field] == original[field], field
    assert new["origin_id"] is None

    entries = history(relink, wid)
    reentered = [e for e in entries if e["action"] == "reenter" and e["outcome"] == "succeeded"]
    assert reentered[0]["evidence"]["before"]["invoice_number"] == "INV-1001"
    assert reentered[0]["evidence"]["after"]["invoice_number"] == "INV-1001-C"
    assert [e["outcome"] for e in entries if e["action"] == "unlink"] == ["in_flight", "succeeded"]


def test_unlink_prints_success_in_green(relink: Relink) -> None:
    """A successful unlink prints Successfully Unlinked (human output)."""
    wid = start(relink)
    assert advance(relink, wid, "delete-in-erp")[0] == 0
    outcome = relink("advance", str(wid), "unlink")
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines()[0] == "Successfully Unlinked"


def test_unlink_while_exported_is_refused_in_procores_words(
    relink: Relink, sandbox: Sandbox, erp: str
) -> None:
    """unlink in Exported, with the bill still in the ERP, gets Procore's red message; audited."""
    wid = start(relink)
    outcome = relink("advance", str(wid), "unlink")
    assert outcome.exit_code == 1
    assert outcome.stdout.splitlines()[0] == still_in_erp(erp)
    code, doc = relink.json("show", str(wid))
    assert code == 0
    assert doc["state"] == "Exported"
    last = doc["history"][-1]
    assert (last["action"], last["outcome"], last["message"]) == (
        "unlink", "refused", still_in_erp(erp))


def test_unlink_after_bill_restored_is_refused(relink: Relink, sandbox: Sandbox, erp: str) -> None:
    """In DeletedInERP, a bill that came back makes unlink refuse with the red message."""
    wid = start(relink)
    assert advance(relink, wid, "delete-in-erp")[0] == 0
    sandbox.control("POST", f"erp/bills/{sandbox.bill_id(183)}/restore")
    code, doc = advance(relink, wid, "unlink")
    assert (code, doc["outcome"], doc["message"]) == (1, "refused", still_in_erp(erp))
    assert doc["state"] == "DeletedInERP"
    assert not [c for c in sandbox.calls() if "external_data" in c["path"]]


@pytest.mark.parametrize(
    ("steps", "wrong", "state", "allowed"),
    [
        ([], "delete-in-procore", "Exported", "delete-in-erp, confirm-erp-deletion, cancel"),
        ([], "reenter", "Exported", "delete-in-erp, confirm-erp-deletion, cancel"),
        (["delete-in-erp"], "cancel", "DeletedInERP", "unlink"),
        (["delete-in-erp"], "delete-in-erp", "DeletedInERP", "unlink"),
        (["delete-in-erp", "unlink"], "unlink", "Unlinked", "delete-in-procore"),
    ],
)
def test_out_of_order_step_names_state_and_next(
    relink: Relink, tmp_path: Path, steps: list[str], wrong: str, state: str, allowed: str
) -> None:
    """Any other order is refused (exit 1) naming the current state and the allowed steps."""
    wid = start(relink)
    for step in steps:
        assert advance(relink, wid, step)[0] == 0
    extra: tuple[str, ...] = ()
    if wrong == "reenter":
        data = tmp_path / "fix.toml"
        data.write_text('invoice_number = "X-1"\n')
        extra = ("--data", str(data))
    outcome = relink("advance", str(wid), wrong, *extra)
    assert outcome.exit_code == 1
    assert outcome.stdout.splitlines()[0] == (
        f"Refused: {wrong} is not allowed in state {state}. Next: {allowed}.")
    assert relink.json("show", str(wid))[1]["state"] == state


def test_ben_may_not_unlink(relink: Relink, sandbox: Sandbox) -> None:
    """Ben lacks Can Push to Accounting: unlink refused, levels he holds recorded in the audit."""
    wid = start(relink)
    assert advance(relink, wid, "delete-in-erp")[0] == 0
    code, doc = advance(relink, wid, "unlink", token="sandbox-ben")
    assert (code, doc["outcome"], doc["state"]) == (1, "refused", "DeletedInERP")
    assert "Can Push to Accounting" in doc["message"]
    last = history(relink, wid)[-1]
    assert last["actor_login"] == "ben@summit.example"
    assert last["evidence"]["permissions"] == {
        "commitments": "Admin", "erp_integrations": "Standard", "can_push_to_accounting": False}


def test_cara_may_not_start(relink: Relink) -> None:
    """Cara has Commitments Standard: start is refused and audited with her level."""
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "x",
                            token="sandbox-cara")
    assert code == 1 and doc["outcome"] == "refused"
    assert "Commitments Admin (has Standard)" in doc["message"]
    entries = relink.json("audit", "log", "--invoice", "9001", "--format", "json")[1]["entries"]
    assert entries[-1]["actor_login"] == "cara@summit.example"
    assert entries[-1]["evidence"]["permissions"] == {"commitments": "Standard"}
    assert relink.json("list")[1]["items"] == []


def test_paid_bill_is_refused_by_the_erp(relink: Relink, sandbox: Sandbox) -> None:
    """9002's bill is paid: the ERP refuses the delete and its reason is shown."""
    wid = start(relink, 9002)
    code, doc = advance(relink, wid, "delete-in-erp")
    assert (code, doc["outcome"], doc["state"], doc["in_flight"]) == (
        1, "refused", "Exported", None)
    assert doc["message"].startswith(f"Refused by {PRODUCTS[sandbox.erp]}: ")
    assert "paid" in doc["message"].lower() or "payment" in doc["message"].lower()


def test_bill_deleted_by_hand_is_confirmed(relink: Relink) -> None:
    """9003's bill is already gone: confirm-erp-deletion succeeds at once."""
    wid = start(relink, 9003)
    code, doc = advance(relink, wid, "confirm-erp-deletion")
    assert (code, doc["state"]) == (0, "DeletedInERP")


def test_confirm_refused_while_bill_exists(relink: Relink) -> None:
    """confirm-erp-deletion refuses while the bill still exists in the ERP."""
    wid = start(relink)
    code, doc = advance(relink, wid, "confirm-erp-deletion")
    assert (code, doc["state"]) == (1, "Exported")
    assert "still exists" in doc["message"]


def test_unsynced_invoice_cannot_start(relink: Relink) -> None:
    """9004 is not synced with the ERP: start is refused."""
    code, doc = relink.json("start", "9004", "--project", "101", "--reason", "x")
    assert code == 1 and "not synced" in doc["message"]


def test_procore_refuses_to_delete_undeletable_invoice(relink: Relink) -> None:
    """9005 is not deletable: Procore refuses delete-in-procore; state stays Unlinked."""
    wid = start(relink, 9005)
    for step in ("delete-in-erp", "unlink"):
        assert advance(relink, wid, step)[0] == 0
    code, doc = advance(relink, wid, "delete-in-procore")
    assert (code, doc["outcome"], doc["state"], doc["in_flight"]) == (
        1, "refused", "Unlinked", None)
    assert doc["message"].startswith("Refused by Procore: ")


def test_second_start_is_refused(relink: Relink) -> None:
    """An invoice with an open correction cannot get a second one."""
    wid = start(relink)
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "again")
    assert code == 1 and f"open correction #{wid}" in doc["message"]


def test_cancel_only_in_exported(relink: Relink) -> None:
    """cancel works in Exported (final, invoice free again) and is refused elsewhere."""
    wid = start(relink)
    code, doc = advance(relink, wid, "cancel")
    assert (code, doc["state"], doc["next"]) == (0, "Cancelled", [])
    assert advance(relink, wid, "delete-in-erp")[0] == 1
    second = start(relink)
    assert advance(relink, second, "delete-in-erp")[0] == 0
    code, doc = advance(relink, second, "cancel")
    assert (code, doc["state"]) == (1, "DeletedInERP")


def test_second_project_invoice(relink: Relink) -> None:
    """9101 in project 102 goes through delete-in-erp and unlink too."""
    wid = start(relink, 9101, 102)
    for step in ("delete-in-erp", "unlink"):
        assert advance(relink, wid, step)[0] == 0


def test_list_and_show(relink: Relink) -> None:
    """list shows corrections newest first, filtered by state; show has the history."""
    first = start(relink)
    second = start(relink, 9003)
    assert advance(relink, second, "confirm-erp-deletion")[0] == 0
    items = relink.json("list")[1]["items"]
    assert [i["id"] for i in items] == [second, first]
    assert [i["id"] for i in relink.json("list", "--state", "Exported")[1]["items"]] == [first]
    doc = relink.json("show", str(second))[1]
    assert [e["action"] for e in doc["history"]] == ["start", "confirm-erp-deletion"]


def test_audit_verifies_after_scenarios(relink: Relink) -> None:
    """After successes and refusals alike, audit verify passes."""
    wid = start(relink)
    advance(relink, wid, "unlink")
    advance(relink, wid, "delete-in-erp")
    advance(relink, wid, "unlink", token="sandbox-ben")
    outcome = relink("audit", "verify")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("OK: 5 entries")
