"""The commitment calls of the real clients against the sandbox over loopback HTTP: Procore's
work order contracts and External Data Sync, Xero purchase orders, Sage Intacct purchasing
documents, and QuickBooks Online's refusal (its Procore connector does not sync commitments)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from integrations.base import ERPConnector
from integrations.erp import make_erp
from integrations.errors import RemoteForbidden, RemoteNotFound, RemoteRefused
from integrations.factory import close
from integrations.guard import guarded
from integrations.http import RetryPolicy
from integrations.procore import ProcoreClient
from sandbox import seed
from tests.conftest import LOOPBACK_TLS, Sandbox


def no_sleep(seconds: float) -> None:
    """Waits are skipped so that the tests stay fast."""


POLICY = RetryPolicy(attempts=2, backoff_initial=0, backoff_max=0, backoff_jitter=0,
                     sleep=no_sleep)
SYNCING = pytest.mark.parametrize("erp", ["xero", "intacct"])
STILL_IN_ERP = "The commitment is still in {product}. Please delete it before retrying."
REFUSALS = {  # the ERP's own words for 6002 (billed / converted)
    "xero": "This purchase order has been billed and cannot be deleted. Unmark it as billed first.",
    "intacct": "PC Subcontracts-SC-6002 cannot be deleted because it has been converted. Delete"
               " the converted transactions first.",
}
LIVE_STATUS = {"xero": "AUTHORISED", "intacct": "pending"}
NUMBERS = {"xero": "PO-6001", "intacct": "SC-6001"}


@pytest.fixture(name="procore_as")
def fixture_procore_as(sandbox: Sandbox) -> Iterator[Callable[..., ProcoreClient]]:
    clients: list[ProcoreClient] = []

    def make(user: str = "ana") -> ProcoreClient:
        client = ProcoreClient(sandbox.url, f"sandbox-{user}", seed.COMPANY_ID, policy=POLICY)
        clients.append(client)
        return client

    yield make
    close(*clients)


@pytest.fixture(name="procore")
def fixture_procore(procore_as: Callable[..., ProcoreClient]) -> ProcoreClient:
    return procore_as("ana")


@pytest.fixture(name="connector")
def fixture_connector(sandbox: Sandbox) -> Iterator[ERPConnector]:
    env = sandbox.env
    connector = make_erp(env["RELINK_ERP"], base_url=env["RELINK_ERP_URL"],
                         token=env["RELINK_ERP_TOKEN"], company=env["RELINK_ERP_COMPANY"],
                         policy=POLICY)
    yield connector
    close(connector)


def document_id(sandbox: Sandbox, serial: int) -> str:
    return seed.purchase_document_id(sandbox.erp, serial)


def documents(sandbox: Sandbox) -> dict[int, dict[str, Any]]:
    return {doc["serial"]: doc for doc in sandbox.control("GET", "state/purchase-documents")}


def click_unlink(sandbox: Sandbox, commitment_id: int) -> Any:
    """The operator clicks Unlink on the commitment in Procore's ERP Integrations tool; the
    sandbox answers as Procore's connector closes the ERP Request Detail."""
    return sandbox.control(
        "POST", "ui/unlink", {"item_type": "work_order_contract", "item_id": commitment_id}
    )


def unlinking(commitment_id: int) -> list[dict[str, Any]]:
    """The External Data Sync update clearing a work order contract's ERP link."""
    return [{"item_type": "work_order_contract", "item_id": commitment_id, "origin_id": None,
             "origin_data": None, "origin_code": None}]


class RecordingGuard:
    """A send guard (the step lease's interface) that notes what each send announced."""

    def __init__(self) -> None:
        self.sends: list[bool] = []
        self.settled_as: list[bool | None] = []

    def before_send(self, *, write: bool, seconds: float) -> None:
        self.sends.append(write)

    def settled(self, *, changed: bool | None) -> None:
        self.settled_as.append(changed)


# -- reading ------------------------------------------------------------------------------------


@SYNCING
def test_a_synced_commitment_and_its_erp_document_are_read(procore, connector, sandbox):
    """6001 is an Approved subcontract linked to its live ERP document, id and number."""
    commitment = procore.get_commitment(101, 6001)
    assert (commitment.id, commitment.project_id, commitment.kind) == (
        6001, 101, "work_order_contract")
    assert (commitment.number, commitment.status) == ("SC-6001", "Approved")
    assert commitment.title == "Structural steel package"
    assert commitment.origin_id == document_id(sandbox, 6001)
    assert commitment.origin_code == NUMBERS[sandbox.erp]
    assert commitment.fields["vendor"]["company"] == "Ironclad Steel"
    assert commitment.fields["grand_total"] == "250000.00"
    document = connector.get_purchase_document(commitment.origin_id)
    assert document is not None
    assert (document.id, document.number) == (commitment.origin_id, commitment.origin_code)
    assert document.status == LIVE_STATUS[sandbox.erp]
    assert [(c.method, c.path, c.status) for c in procore.drain_calls()] == [
        ("GET", "/rest/v1.0/work_order_contracts/6001?project_id=101", 200)]


@SYNCING
def test_seeded_commitments_are_synced_as_the_spec_says(procore, connector, sandbox):
    """6002 is billed/converted, 6003 never synced, 6004 synced but gone from the ERP."""
    billed = procore.get_commitment(101, 6002)
    assert billed.origin_id == document_id(sandbox, 6002)
    document = connector.get_purchase_document(billed.origin_id)
    assert document is not None
    assert document.status == {"xero": "BILLED", "intacct": "partiallyConverted"}[sandbox.erp]
    assert procore.get_commitment(101, 6003).origin_id is None
    gone = procore.get_commitment(101, 6004)
    assert gone.origin_id == document_id(sandbox, 6004)
    assert connector.get_purchase_document(gone.origin_id) is None


def test_a_missing_commitment_is_not_found_after_trying_both_kinds(procore, sandbox):
    """Neither a work order nor a purchase order contract: RemoteNotFound; another project too."""
    with pytest.raises(RemoteNotFound, match="no commitment 6999 in project 101"):
        procore.get_commitment(101, 6999)
    assert [c.path for c in procore.drain_calls()] == [
        "/rest/v1.0/work_order_contracts/6999?project_id=101",
        "/rest/v1.0/purchase_order_contracts/6999?project_id=101",
    ]
    with pytest.raises(RemoteNotFound):
        procore.get_commitment(102, 6001)


# -- the ERP document -----------------------------------------------------------------------------


@SYNCING
def test_deleting_the_erp_document_makes_it_gone_once(procore, connector, sandbox):
    """After the delete the document reads as None; deleting again sends no second write."""
    origin = procore.get_commitment(101, 6001).origin_id
    connector.delete_purchase_document(origin, idempotency_key="wf-1-delete-in-erp")
    assert connector.get_purchase_document(origin) is None
    connector.delete_purchase_document(origin, idempotency_key="wf-1-delete-in-erp")
    writes = [c for c in connector.drain_calls() if c.method != "GET"]
    assert [(c.method, c.status) for c in writes] == [
        {"xero": ("POST", 200), "intacct": ("DELETE", 204)}[sandbox.erp]]
    if sandbox.erp == "intacct":
        assert writes[0].path == (
            "/ia/api/v1/objects/purchasing/document::PC%20Subcontracts/66001")
    assert documents(sandbox)[6001]["exists"] is False
    assert documents(sandbox)[6002]["exists"] is True


@SYNCING
def test_a_billed_document_is_refused_in_the_erps_own_words(procore, connector, sandbox):
    """6002: RemoteRefused with the ERP's reason, nothing deleted, the write settled unchanged."""
    origin = procore.get_commitment(101, 6002).origin_id
    guard = RecordingGuard()
    with guarded(guard), pytest.raises(RemoteRefused) as caught:
        connector.delete_purchase_document(origin, idempotency_key="wf-2-delete-in-erp")
    assert caught.value.message == REFUSALS[sandbox.erp]
    assert (caught.value.system, caught.value.status) == (sandbox.erp, 400)
    assert guard.sends == [False, True] and guard.settled_as == [False]
    assert connector.get_purchase_document(origin) is not None


@SYNCING
def test_a_document_already_deleted_needs_no_write(procore, connector, sandbox):
    """6004's document is gone (Xero: DELETED, Intacct: 404): the delete only reads."""
    origin = procore.get_commitment(101, 6004).origin_id
    guard = RecordingGuard()
    with guarded(guard):
        connector.delete_purchase_document(origin, idempotency_key="wf-4-delete-in-erp")
    assert guard.sends == [False]
    assert [c.method for c in connector.drain_calls()] == ["GET"]


@SYNCING
def test_the_erp_delete_is_a_guarded_write(procore, connector, sandbox):
    """Every ERP call asks the step lease first: the read as a read, the delete as a write."""
    origin = procore.get_commitment(101, 6001).origin_id
    guard = RecordingGuard()
    with guarded(guard):
        connector.delete_purchase_document(origin, idempotency_key="wf-5-delete-in-erp")
    assert guard.sends == [False, True] and guard.settled_as == [True]


@SYNCING
def test_an_unknown_document_is_gone_but_a_wrong_url_never_is(connector, sandbox):
    """The ERP's own 404 reads as gone; a 404 from Procore's root (a wrong ERP URL) raises."""
    assert connector.get_purchase_document(document_id(sandbox, 9999)) is None
    env = sandbox.env
    misdirected = make_erp(env["RELINK_ERP"], base_url=env["RELINK_PROCORE_URL"],
                           token=env["RELINK_ERP_TOKEN"], company=env["RELINK_ERP_COMPANY"],
                           policy=POLICY)
    try:
        with pytest.raises(RemoteNotFound):
            misdirected.get_purchase_document(document_id(sandbox, 6001))
    finally:
        close(misdirected)


def test_quickbooks_online_does_not_sync_commitments(procore, connector, sandbox):
    """QBO: no commitment is synced, and the connector refuses without sending anything."""
    assert sandbox.erp == "qbo" and connector.syncs_commitments is False
    assert procore.get_commitment(101, 6001).origin_id is None
    for call in (lambda: connector.get_purchase_document("6001"),
                 lambda: connector.delete_purchase_document("6001", idempotency_key="k")):
        with pytest.raises(RemoteRefused) as caught:
            call()
        assert caught.value.message == (
            "QuickBooks Online's Procore connector does not sync commitments")
    assert connector.drain_calls() == []
    assert documents(sandbox) == {}


@SYNCING
def test_xero_and_intacct_sync_commitments(connector):
    """The connectors of ERPs whose Procore connector syncs commitments say so."""
    assert connector.syncs_commitments is True


# -- unlinking ------------------------------------------------------------------------------------


@SYNCING
def test_unlink_is_refused_while_the_document_exists_then_clears_the_link(
    procore, procore_as, connector, sandbox
):
    """The Unlink click fails in Procore's words naming the ERP product; after the ERP delete
    it clears the link, and the integrator's External Data Sync of the cleared link changes
    nothing and is not refused."""
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    commitment = procore.get_commitment(101, 6001)
    product = seed.PRODUCT_NAMES[sandbox.erp]
    assert click_unlink(sandbox, 6001) == {
        "status": "failed", "messages": [STILL_IN_ERP.format(product=product)]}
    assert procore.get_commitment(101, 6001).origin_id == commitment.origin_id
    assert commitment.origin_id is not None
    connector.delete_purchase_document(commitment.origin_id, idempotency_key="wf-6")
    assert click_unlink(sandbox, 6001) == {"status": "success", "messages": []}
    unlinked = procore.get_commitment(101, 6001)
    assert (unlinked.origin_id, unlinked.origin_code) == (None, None)
    assert unlinked.fields["origin_data"] is None
    procore_as("service").sync_external_data(unlinking(6001))
    again = procore.get_commitment(101, 6001)
    assert (again.origin_id, again.fields["updated_at"]) == (None, unlinked.fields["updated_at"])


@SYNCING
def test_the_accounting_approver_links_the_commitment_to_a_new_document(
    procore, connector, sandbox
):
    """After delete and unlink, the sandbox's accept creates a new ERP document and links it."""
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    old = procore.get_commitment(101, 6001)
    assert old.origin_id is not None
    connector.delete_purchase_document(old.origin_id, idempotency_key="wf-7")
    assert click_unlink(sandbox, 6001)["status"] == "success"
    accepted = sandbox.control("POST", "erp/commitments/6001/accept")
    resynced = procore.get_commitment(101, 6001)
    assert resynced.origin_id == accepted["origin_id"] == document_id(sandbox, 16001)
    assert resynced.origin_code == accepted["document"]["number"]
    document = connector.get_purchase_document(resynced.origin_id)
    assert document is not None and document.status == LIVE_STATUS[sandbox.erp]
    refused = click_unlink(sandbox, 6001)
    assert refused["status"] == "failed" and "still in" in refused["messages"][0]
    assert procore.get_commitment(101, 6001).origin_id == resynced.origin_id


def test_accept_is_refused_where_it_makes_no_sense(sandbox):
    """Under QBO, whose connector syncs no commitment, accept is 422; an unknown id is 404."""
    with httpx.Client(verify=LOOPBACK_TLS, base_url=sandbox.url) as client:
        answer = client.post("/_sandbox/erp/commitments/6001/accept")
        assert answer.status_code == 422 and "does not sync" in answer.json()["message"]
        assert client.post("/_sandbox/erp/commitments/6999/accept").status_code == 404


@SYNCING
def test_accept_refuses_a_commitment_still_synced(sandbox):
    """A commitment whose link is still set cannot be accepted again (409)."""
    with httpx.Client(verify=LOOPBACK_TLS, base_url=sandbox.url) as client:
        assert client.post("/_sandbox/erp/commitments/6001/accept").status_code == 409


# -- editing and deleting in Procore ------------------------------------------------------------


@pytest.mark.parametrize("erp", ["qbo", "xero"])
def test_set_to_draft_then_delete_an_unsynced_commitment(procore, sandbox):
    """6003: an Approved commitment is refused (422); set to Draft it is deleted, then gone."""
    commitment = procore.get_commitment(101, 6003)
    with pytest.raises(RemoteRefused) as caught:
        procore.delete_commitment(commitment)
    assert caught.value.status == 422 and "Draft" in caught.value.message
    draft = procore.update_commitment(commitment, {"status": "Draft"})
    assert (draft.id, draft.status, draft.kind) == (6003, "Draft", "work_order_contract")
    assert draft.fields["status"] == "Draft"
    procore.delete_commitment(draft)
    with pytest.raises(RemoteNotFound):
        procore.get_commitment(101, 6003)
    state = {c["id"]: c for c in sandbox.control("GET", "state/commitments?project_id=101")}
    assert state[6003]["deleted"] is True and state[6001]["deleted"] is False
    patch = [c for c in sandbox.calls() if c["method"] == "PATCH"]
    assert [c["path"] for c in patch] == ["/rest/v1.0/work_order_contracts/6003"]


@SYNCING
def test_a_synced_commitment_cannot_be_deleted_or_have_its_status_changed(procore):
    """While 6001 is synced Procore refuses the delete and the status change (422)."""
    commitment = procore.get_commitment(101, 6001)
    with pytest.raises(RemoteRefused) as caught:
        procore.delete_commitment(commitment)
    assert caught.value.status == 422 and "synced with ERP" in caught.value.message
    with pytest.raises(RemoteRefused) as locked:
        procore.update_commitment(commitment, {"status": "Draft"})
    assert locked.value.status == 422 and "synced with ERP" in locked.value.message
    assert procore.get_commitment(101, 6001).status == "Approved"


def test_update_returns_the_corrected_fields_and_validates_them(procore):
    """Writable fields come back changed; a status outside the kind's enum is refused (422)."""
    commitment = procore.get_commitment(101, 6003)
    updated = procore.update_commitment(
        commitment, {"title": "Miscellaneous metals (revised)", "executed": False,
                     "inclusions": "Stair rails", "vendor_id": 8058})
    assert updated.title == "Miscellaneous metals (revised)"
    assert updated.fields["executed"] is False and updated.fields["inclusions"] == "Stair rails"
    assert updated.fields["vendor"]["company"] == "Keystone Concrete"
    for status in ("approved", "Received"):  # requisition-style; a purchase-order status
        with pytest.raises(RemoteRefused) as caught:
            procore.update_commitment(commitment, {"status": status})
        assert caught.value.status == 422 and "status" in caught.value.message
    with pytest.raises(RemoteRefused, match="not a writable field"):
        procore.update_commitment(commitment, {"grand_total": "1.00"})
    assert procore.get_commitment(101, 6003).status == "Approved"


def test_a_read_only_user_is_forbidden(procore_as, sandbox):
    """sandbox-rita may read the commitment but not change, delete or unlink it (403): External
    Data Sync is for the ERP connector's service account only."""
    rita = procore_as("rita")
    commitment = rita.get_commitment(101, 6003)
    with pytest.raises(RemoteForbidden) as caught:
        rita.update_commitment(commitment, {"status": "Draft"})
    assert caught.value.status == 403 and "Commitments" in caught.value.message
    with pytest.raises(RemoteForbidden):
        rita.delete_commitment(commitment)
    with pytest.raises(RemoteForbidden, match="ERP Integrations"):
        rita.sync_external_data(unlinking(commitment.id))
    assert procore_as("ana").get_commitment(101, 6003).status == "Approved"


def test_an_unknown_kind_is_a_programming_error(procore):
    """A Commitment of a kind Procore does not have never becomes a request."""
    commitment = procore.get_commitment(101, 6003)
    bogus = replace(commitment, kind="prime_contract")
    with pytest.raises(ValueError, match="unknown commitment kind"):
        procore.delete_commitment(bogus)
    assert procore.drain_calls()[-1].method == "GET"
