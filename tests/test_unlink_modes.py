"""Procore's real ERP mechanism (issue "Procore's real ERP mechanism"): unlink as Procore does
it, in both modes, through the CLI against the sandbox over real HTTP, for every ERP product;
the real read and write shapes; the latest-invoice rule."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LOOPBACK_TLS, Relink, Sandbox

SYNC = "/external_data/sync"
INTEGRATOR = {"RELINK_UNLINK_MODE": "integrator", "RELINK_INTEGRATOR_TOKEN": "sandbox-service"}


@pytest.fixture(name="erp", params=["qbo", "xero", "intacct"])
def fixture_erp(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def started_and_deleted_in_erp(relink: Relink, invoice: int = 9001, **env: str) -> int:
    code, doc = relink.json("start", str(invoice), "--project", "101", "--reason", "wrong amount")
    assert code == 0, doc
    code, doc = relink.json("advance", str(doc["id"]), "delete-in-erp", **env)
    assert (code, doc["state"]) == (0, "DeletedInERP"), doc
    return int(doc["id"])


def last_entry(relink: Relink, wid: int) -> dict[str, Any]:
    code, doc = relink.json("audit", "log", "--workflow", str(wid), "--format", "json")
    assert code == 0
    return dict(doc["entries"][-1])


def sync_calls(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [call for call in sandbox.calls() if call["path"].endswith(SYNC)]


def click_when_waited_for(sandbox: Sandbox, invoice: int) -> threading.Thread:
    """The operator clicks Unlink once relink has read the invoice twice (its check, then its
    first look while waiting)."""
    path = f"/rest/v1.1/requisitions/{invoice}?"

    def reads() -> int:
        return sum(1 for c in sandbox.calls() if c["path"].startswith(path))

    before = reads()

    def click() -> None:
        deadline = time.monotonic() + 20
        while reads() < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        sandbox.control("POST", "ui/unlink", {"item_type": "requisition", "item_id": invoice})

    thread = threading.Thread(target=click)
    thread.start()
    return thread


# procore mode: the operator clicks Unlink; relink waits and never writes the link -----------------


def test_procore_mode_waits_for_the_click(relink: Relink, sandbox: Sandbox) -> None:
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    wid = started_and_deleted_in_erp(relink)
    clicker = click_when_waited_for(sandbox, 9001)
    outcome = relink("--json", "advance", str(wid), "unlink")
    clicker.join()
    doc = outcome.json()
    assert (outcome.exit_code, doc["state"]) == (0, "Unlinked"), doc
    assert "ERP Integrations › Subcontractor Invoices › Synced with ERP" in outcome.stderr
    assert "INV-1001" in outcome.stderr  # which invoice to click, said while waiting
    entry = last_entry(relink, wid)
    evidence = entry["evidence"]
    assert evidence["unlink_mode"] == "procore"
    assert evidence["before"]["origin_id"] == sandbox.bill_id(183)
    assert evidence["before"]["erp_status"] == "synced"
    assert evidence["after"] == {"origin_id": None, "erp_status": None}
    assert sync_calls(sandbox) == []  # relink never wrote the link itself
    requests = sandbox.control("GET", "erp-requests")
    assert [(r["request_name"], r["request_detail"]["status"]) for r in requests] == [
        ("unlink_requisition", "success")
    ]


def test_procore_mode_without_a_click_leaves_the_step_to_run_again(
    relink: Relink, sandbox: Sandbox
) -> None:
    """No click within the wait: exit 3, nothing in flight, audited; after the click the same
    command confirms it."""
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    wid = started_and_deleted_in_erp(relink)
    code, doc = relink.json("advance", str(wid), "unlink", RELINK_UNLINK_WAIT_SECONDS="0.5")
    assert (code, doc["state"], doc["outcome"]) == (3, "DeletedInERP", "failed"), doc["message"]
    assert "Not unlinked yet" in doc["message"]
    assert f"relink advance {wid} unlink" in doc["message"]
    code, shown = relink.json("show", str(wid))
    assert shown["in_flight"] is None, shown
    assert last_entry(relink, wid)["outcome"] == "failed"
    clicked = sandbox.control("POST", "ui/unlink", {"item_type": "requisition", "item_id": 9001})
    assert clicked == {"status": "success", "messages": []}
    code, doc = relink.json("advance", str(wid), "unlink")
    assert (code, doc["state"]) == (0, "Unlinked"), doc
    assert sync_calls(sandbox) == []


def test_the_click_while_the_bill_is_still_there_shows_the_red_message(
    relink: Relink, sandbox: Sandbox
) -> None:
    """Procore's connector checks the ERP too: the click fails with the red message and the link
    stays (what relink's own ERP check says before it asks for the click)."""
    products = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}
    detail = sandbox.control("POST", "ui/unlink", {"item_type": "requisition", "item_id": 9001})
    red = f"The requisition is still in {products[sandbox.erp]}. Please delete it before retrying."
    assert detail == {"status": "failed", "messages": [red]}
    invoice = {r["id"]: r for r in sandbox.requisitions(101)}[9001]
    assert invoice["origin_id"] == sandbox.bill_id(183)


def test_the_cli_plays_the_click(relink: Relink, sandbox: Sandbox) -> None:
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    wid = started_and_deleted_in_erp(relink)
    outcome = relink("sandbox", "click-unlink", "9001")
    assert (outcome.exit_code, outcome.stdout.strip()) == (
        0, "Unlinked requisition 9001 in the sandbox's Procore."
    )
    code, doc = relink.json("advance", str(wid), "unlink")
    assert (code, doc["state"]) == (0, "Unlinked"), doc
    refused = relink("sandbox", "click-unlink", "9002")  # its bill is paid, still in the ERP
    assert refused.exit_code == 1 and "still in" in refused.stdout


# integrator mode: relink clears the link with the service account ---------------------------------


def test_integrator_mode_clears_header_and_items_as_the_service_account(
    relink: Relink, sandbox: Sandbox
) -> None:
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    wid = started_and_deleted_in_erp(relink)
    code, doc = relink.json("advance", str(wid), "unlink", **INTEGRATOR)
    assert (code, doc["state"]) == (0, "Unlinked"), doc
    calls = sync_calls(sandbox)
    assert [(c["method"], c["status"], c["actor"]) for c in calls] == [
        ("PATCH", 200, "erp-connector@summit.example")
    ]
    # the operator's identity is still the one read, checked and audited
    entry = last_entry(relink, wid)
    assert entry["actor_login"] == "ana@summit.example"
    assert entry["evidence"]["unlink_mode"] == "integrator"
    assert entry["evidence"]["after"]["origin_id"] is None
    invoice = {r["id"]: r for r in sandbox.requisitions(101)}[9001]
    assert invoice["origin_id"] is None
    assert set(invoice["item_links"].values()) == {None}  # the items' links too
    assert len(invoice["item_links"]) == 2
    operators = {c["actor"] for c in sandbox.calls() if not c["path"].startswith("/erp")}
    assert operators == {"ana@summit.example", "erp-connector@summit.example"}


def test_integrator_mode_needs_the_service_account_token(
    relink: Relink, sandbox: Sandbox
) -> None:
    wid = started_and_deleted_in_erp(relink)
    before = len(sandbox.calls())
    outcome = relink("advance", str(wid), "unlink", RELINK_UNLINK_MODE="integrator")
    assert outcome.exit_code == 2
    assert "RELINK_INTEGRATOR_TOKEN" in outcome.stderr
    assert len(sandbox.calls()) == before  # refused before anything was read or written


def test_external_data_sync_is_the_service_accounts_alone(sandbox: Sandbox) -> None:
    """The operator's token gets 403; per-item errors come keyed by field."""
    body = {"updates": [{"item_type": "requisition", "item_id": 9001, "origin_id": None}]}
    path = "/rest/v1.0/companies/4021/external_data/sync"
    headers = {"Procore-Company-Id": "4021"}
    with httpx.Client(
            verify=LOOPBACK_TLS, base_url=sandbox.url, timeout=10, headers=headers) as client:
        refused = client.patch(path, json=body, headers={"Authorization": "Bearer sandbox-ana"})
        assert refused.status_code == 403
        missing = {"updates": [{"item_type": "requisition", "item_id": 1, "origin_id": None}]}
        answer = client.patch(path, json=missing,
                              headers={"Authorization": "Bearer sandbox-service"})
    assert answer.status_code == 200
    assert answer.json() == {
        "entities": [],
        "errors": [{"item_type": "requisition", "item_id": 1, "origin_id": None,
                    "errors": {"item_id": ["Entity with this ID not found"]}}],
    }


# reads and the re-entry body --------------------------------------------------------------------


def procore_get(sandbox: Sandbox, path: str, token: str = "sandbox-ana", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": "4021"}
    response = httpx.get(sandbox.url + path, params=params, headers=headers, timeout=10,
                         verify=LOOPBACK_TLS)
    return response.status_code, response.json()


def test_me_names_the_user_only_with_a_company_or_project(sandbox: Sandbox) -> None:
    assert procore_get(sandbox, "/rest/v1.0/me") == (
        200, {"id": 7001, "login": "ana@summit.example"})
    assert procore_get(sandbox, "/rest/v1.0/me", company_id=4021)[1]["name"] == "Ana Alvarez"
    bare = httpx.get(sandbox.url + "/rest/v1.0/me", timeout=10,
                     headers={"Authorization": "Bearer sandbox-service"}, verify=LOOPBACK_TLS)
    assert bare.status_code == 400
    assert bare.json()["message"] == "Missing Procore-Company-Id header!"


def test_items_come_only_with_the_extended_view(sandbox: Sandbox) -> None:
    path = "/rest/v1.1/requisitions/9001"
    status, plain = procore_get(sandbox, path, project_id=101)
    assert status == 200 and "items" not in plain
    _, extended = procore_get(sandbox, path, project_id=101, view="extended")
    assert [(i["item_type"], i["line_item_id"], i["work_completed_this_period"])
            for i in extended["items"]] == [
        ("contract_item", 55011, "10000.00"), ("change_order_item", 55015, "2500.00")]
    assert all("description" not in item for item in extended["items"])
    _, detail = procore_get(sandbox, "/rest/v1.1/requisitions/9101", project_id=102,
                            view="extended")
    assert detail["items"][1]["item_type"] == "contract_detail_item"
    assert detail["items"][1]["detail_line_item_id"] == 55063


def test_reentry_sends_typed_items_for_the_snapshots_lines(
    relink: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The data file corrects an amount by line item; the other item is copied; the new
    invoice's items name the same lines with the same types."""
    wid = started_and_deleted_in_erp(relink)
    for step in ("unlink", "delete-in-procore"):
        assert relink.json("advance", str(wid), step)[0] == 0
    data = tmp_path / "fix.json"
    data.write_text(json.dumps({"items": [
        {"line_item_id": 55015, "work_completed_this_period": "2000.00"}]}))
    code, doc = relink.json("advance", str(wid), "reenter", "--data", str(data))
    assert (code, doc["state"]) == (0, "Reentered"), doc
    new = {r["id"]: r for r in sandbox.requisitions(101)}[doc["new_invoice_id"]]
    assert [(i["item_type"], i["line_item_id"], i["work_completed_this_period"])
            for i in new["items"]] == [
        ("contract_item", 55011, "10000.00"), ("change_order_item", 55015, "2000.00")]
    assert new["total_claimed_amount"] == "12000.00"


def test_reentry_refuses_a_line_not_on_the_invoice(
    relink: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    wid = started_and_deleted_in_erp(relink)
    for step in ("unlink", "delete-in-procore"):
        assert relink.json("advance", str(wid), step)[0] == 0
    data = tmp_path / "fix.json"
    data.write_text(json.dumps({"items": [
        {"line_item_id": 99999, "work_completed_this_period": "1.00"}]}))
    posts = len([c for c in sandbox.calls() if c["method"] == "POST"])
    code, doc = relink.json("advance", str(wid), "reenter", "--data", str(data))
    assert code == 1 and "99999" in doc["message"], doc
    assert len([c for c in sandbox.calls() if c["method"] == "POST"]) == posts


def test_procore_refuses_untyped_items(sandbox: Sandbox) -> None:
    body = {"project_id": 101, "commitment_id": 5501, "requisition": {
        "invoice_number": "X-1", "items": [
            {"description": "Steel", "work_completed_this_period": "10.00"}]}}
    response = httpx.post(sandbox.url + "/rest/v1.1/requisitions", json=body, timeout=10,
                          headers={"Authorization": "Bearer sandbox-ana",
                                   "Procore-Company-Id": "4021"}, verify=LOOPBACK_TLS)
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert fields["items[0].description"] == ["is not a writable field"]
    assert "items[0].item_type" in fields


# only the most recent invoice on a commitment can be deleted --------------------------------------


def test_start_on_an_older_invoice_names_the_later_ones(relink: Relink, sandbox: Sandbox) -> None:
    before = len(sandbox.mutating_calls())
    code, doc = relink.json("start", "9602", "--project", "101", "--reason", "wrong amount")
    assert code == 1
    assert "9604 (INV-4004), 9603 (INV-4003)" in doc["message"], doc
    assert "commitment 5600" in doc["message"]
    assert len(sandbox.mutating_calls()) == before
    code, doc = relink.json("start", "9604", "--project", "101", "--reason", "wrong amount")
    assert code == 0, doc


def test_procore_deletes_only_the_latest_invoice(sandbox: Sandbox) -> None:
    for invoice in (9601, 9604):  # unlink both first: a synced invoice is refused for that
        sandbox.control("POST", f"erp/bills/{1600 + invoice - 9600}/delete")
        detail = sandbox.control("POST", "ui/unlink",
                                 {"item_type": "requisition", "item_id": invoice})
        assert detail["status"] == "success"
    headers = {"Authorization": "Bearer sandbox-ana", "Procore-Company-Id": "4021"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=10,
                      verify=LOOPBACK_TLS) as client:
        older = client.delete("/rest/v1.1/requisitions/9601", params={"project_id": 101})
        latest = client.delete("/rest/v1.1/requisitions/9604", params={"project_id": 101})
    assert older.status_code == 422
    assert older.json()["message"].startswith(
        "Only the most recent invoice on a commitment can be deleted.")
    assert latest.status_code == 200
