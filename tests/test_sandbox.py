"""The sandbox simulator (spec/sandbox.md) over real loopback HTTP: seed, rules, control endpoints,
faults, rate limits and OAuth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox import PRODUCT_NAMES, SandboxServer, SandboxWorld, in_process_transport
from sandbox.faults import FaultSettings
from sandbox.seed import ERP_ONLY_BILLS, INVOICES, erp_bill_id
from sandbox.server import export_lines
from tests.conftest import LOOPBACK_TLS

ERPS = ["qbo", "xero", "intacct"]
XERO_TENANT = "a3f6c1de-0000-4000-8000-000000004021"
ERP_COMPANIES = {"qbo": "9130357", "xero": XERO_TENANT, "intacct": "summit-builders"}


def procore_headers(user: str = "ana") -> dict[str, str]:
    return {"Authorization": f"Bearer sandbox-{user}", "Procore-Company-Id": "4021"}


def erp_headers(erp: str) -> dict[str, str]:
    headers = {"Authorization": "Bearer sandbox-erp"}
    return headers | {"xero-tenant-id": XERO_TENANT} if erp == "xero" else headers


def read_bill(client: httpx.Client, erp: str, bill_id: str) -> httpx.Response:
    path = {
        "qbo": f"/erp/v3/company/9130357/bill/{bill_id}",
        "xero": f"/erp/api.xro/2.0/Invoices/{bill_id}",
        "intacct": f"/erp/ia/api/v1/objects/accounts-payable/bill/{bill_id}",
    }[erp]
    return client.get(path, headers=erp_headers(erp))


def bill_exists(client: httpx.Client, erp: str, bill_id: str) -> bool:
    response = read_bill(client, erp, bill_id)
    if erp == "xero":
        return response.json()["Invoices"][0]["Status"] not in ("DELETED", "VOIDED")
    assert response.status_code in (200, 400, 404)
    return response.status_code == 200


def delete_bill(client: httpx.Client, erp: str, bill_id: str) -> httpx.Response:
    headers = erp_headers(erp)
    if erp == "qbo":
        token = read_bill(client, erp, bill_id).json()["Bill"]["SyncToken"]
        body = {"Id": bill_id, "SyncToken": token}
        return client.post(
            "/erp/v3/company/9130357/bill?operation=delete", json=body, headers=headers
        )
    if erp == "xero":
        body = {"Invoices": [{"InvoiceID": bill_id, "Status": "VOIDED"}]}
        return client.post(f"/erp/api.xro/2.0/Invoices/{bill_id}", json=body, headers=headers)
    return client.delete(f"/erp/ia/api/v1/objects/accounts-payable/bill/{bill_id}", headers=headers)


def unlink(client: httpx.Client, requisition_id: int, user: str = "service") -> httpx.Response:
    """External Data Sync clearing the link, by the ERP connector's service account."""
    update = {"item_type": "requisition", "item_id": requisition_id, "origin_id": None}
    return client.patch(
        "/rest/v1.0/companies/4021/external_data/sync",
        json={"updates": [update]},
        headers=procore_headers(user),
    )


def click_unlink(client: httpx.Client, requisition_id: int) -> Any:
    """The operator clicks Unlink in the ERP Integrations tool (Procore's connector answers)."""
    body = {"item_type": "requisition", "item_id": requisition_id}
    response = client.post("/_sandbox/ui/unlink", json=body)
    assert response.status_code == 200
    return response.json()


def requisition(
    client: httpx.Client, requisition_id: int, project_id: int = 101, view: str | None = None
) -> Any:
    query = f"project_id={project_id}" + (f"&view={view}" if view else "")
    response = client.get(
        f"/rest/v1.1/requisitions/{requisition_id}?{query}", headers=procore_headers()
    )
    return response.json() if response.status_code == 200 else None


@pytest.fixture(name="servers", scope="module")
def fixture_servers() -> Iterator[dict[str, SandboxServer]]:
    servers = {erp: SandboxServer(erp).start() for erp in ERPS}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(name="server", params=ERPS)
def fixture_server(request: pytest.FixtureRequest, servers: dict[str, SandboxServer]) -> Any:
    server = servers[request.param]
    server.world.reset()
    server.world.configure_faults(FaultSettings())
    return server


@pytest.fixture(name="qbo_server")
def fixture_qbo_server(servers: dict[str, SandboxServer]) -> SandboxServer:
    server = servers["qbo"]
    server.world.reset()
    server.world.configure_faults(FaultSettings())
    return server


@pytest.fixture(name="client")
def fixture_client(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=5) as client:
        yield client


@pytest.fixture(name="qbo_client")
def fixture_qbo_client(qbo_server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(verify=LOOPBACK_TLS, base_url=qbo_server.url, timeout=5) as client:
        yield client


# --- seed ------------------------------------------------------------------------------------


def test_seed_invoices_match_the_spec(qbo_client: httpx.Client) -> None:
    """Invoices 9001-9005, 9101 and the batch carry the seeded numbers, states and links."""
    expected = {
        9001: ("INV-1001", "approved", "183", True),
        9002: ("INV-1002", "approved", "184", True),
        9003: ("INV-1003", "approved", "185", True),
        9004: ("INV-1004", "draft", None, True),
        9005: ("INV-1005", "approved", "186", False),
    }
    for invoice_id, (number, status, origin_id, deletable) in expected.items():
        body = requisition(qbo_client, invoice_id)
        assert (body["invoice_number"], body["status"]) == (number, status)
        assert (body["origin_id"], body["deletable"]) == (origin_id, deletable)
        assert body["vendor_name"] == "Ironclad Steel"
    second = requisition(qbo_client, 9101, project_id=102)
    assert (second["invoice_number"], second["origin_id"]) == ("INV-2001", "190")
    assert second["vendor_name"] == "Northside Electric"
    last = requisition(qbo_client, 9399, project_id=102)
    assert (last["invoice_number"], last["origin_id"]) == ("INV-3199", "1399")
    # one commitment per invoice, except 5600 with four; 9400 shares its number with 9205
    assert [requisition(qbo_client, i)["commitment_id"] for i in expected] == [
        5501, 5502, 5503, 5504, 5505
    ]
    assert (second["commitment_id"], last["commitment_id"]) == (5506, 5899)
    twin, shared = (requisition(qbo_client, i, project_id=102) for i in (9205, 9400))
    assert twin["invoice_number"] == shared["invoice_number"] == "INV-3005"
    assert (shared["commitment_id"], shared["origin_id"]) == (5900, "1400")
    chain = [requisition(qbo_client, i) for i in (9601, 9602, 9603, 9604)]
    assert [(c["commitment_id"], c["number"], c["invoice_number"], c["origin_id"])
            for c in chain] == [(5600, n, f"INV-400{n}", str(1600 + n)) for n in range(1, 5)]
    assert {c["vendor_name"] for c in chain} == {"Keystone Concrete"}


def test_requisition_fields_have_the_documented_types(qbo_client: httpx.Client) -> None:
    """Ids are integers, origin_id and money are strings, dates YYYY-MM-DD, times ISO 8601;
    items come only with view=extended, typed and naming the line item they bill."""
    body = requisition(qbo_client, 9001)
    assert all(isinstance(body[name], int) for name in ("id", "project_id", "commitment_id"))
    assert body["total_claimed_amount"] == "12500.00"
    assert body["billing_date"] == "2026-01-31" and body["requisition_start"] == "2026-01-01"
    assert body["created_at"].endswith("Z") and body["erp_status"] == "synced"
    assert {"comment", "final", "origin_data", "period_id", "number"} <= body.keys()
    assert "items" not in body
    extended = requisition(qbo_client, 9001, view="extended")
    assert {key: value for key, value in extended.items() if key != "items"} == body
    items = extended["items"]
    assert [(i["item_type"], i["line_item_id"], i["work_completed_this_period"])
            for i in items] == [
        ("contract_item", 55011, "10000.00"), ("change_order_item", 55015, "2500.00")
    ]
    assert all(isinstance(i["id"], int) and isinstance(i["description_of_work"], str)
               and "description" not in i for i in items)
    detail = requisition(qbo_client, 9101, project_id=102, view="extended")["items"]
    assert [(i["item_type"], i.get("detail_line_item_id")) for i in detail] == [
        ("contract_item", None), ("contract_detail_item", 55063)
    ]


def test_origin_ids_use_each_erps_id_format(client: httpx.Client, server: SandboxServer) -> None:
    """An invoice's origin_id is its bill's id in the ERP's own format, readable there."""
    expected = {
        "qbo": "183",
        "xero": "00000000-0000-4000-8000-000000000183",
        "intacct": "50183",
    }[server.world.erp]
    assert requisition(client, 9001)["origin_id"] == expected
    assert bill_exists(client, server.world.erp, expected)


def test_seed_bills_are_open_paid_or_gone(client: httpx.Client, server: SandboxServer) -> None:
    """Bills 183, 186, 190 and 1200-1399 exist, 184 is paid, 185 is already deleted."""
    erp = server.world.erp
    for qbo_id in (183, 184, 186, 190, 1200, 1399):
        assert bill_exists(client, erp, erp_bill_id(erp, qbo_id))
    assert not bill_exists(client, erp, erp_bill_id(erp, 185))
    states = {bill["qbo_id"]: bill["state"] for bill in client.get("/_sandbox/state/bills").json()}
    exported = {invoice.bill_qbo_id for invoice in INVOICES} - {None}
    assert states[184] == "paid" and states[183] == "open"
    assert set(states) == exported | {bill.qbo_id for bill in ERP_ONLY_BILLS}


def test_list_pages_with_total_and_link_headers(qbo_client: httpx.Client) -> None:
    """Listing answers one page at a time with Total, Per-Page and a Link to the next page."""
    params = {"project_id": "102", "per_page": "100", "page": "3"}
    response = qbo_client.get("/rest/v1.1/requisitions", params=params, headers=procore_headers())
    assert response.headers["Total"] == "202" and response.headers["Per-Page"] == "100"
    assert [item["id"] for item in response.json()] == [9399, 9400]
    first = qbo_client.get(
        "/rest/v1.1/requisitions", params=params | {"page": "1"}, headers=procore_headers()
    )
    assert len(first.json()) == 100 and 'page=2>; rel="next"' in first.headers["Link"]


def test_list_filters(qbo_client: httpx.Client) -> None:
    """filters[status], filters[origin_id] and filters[invoice_number] narrow the list."""
    base = {"project_id": "101"}
    cases = [
        ({"filters[status]": "draft"}, [9004]),
        ({"filters[origin_id]": "184"}, [9002]),
        ({"filters[invoice_number]": "INV-1005"}, [9005]),
        ({"filters[commitment_id]": "5600"}, [9601, 9602, 9603, 9604]),
        ({"filters[commitment_id]": "5707"}, []),
    ]
    for filters, ids in cases:
        response = qbo_client.get(
            "/rest/v1.1/requisitions", params=base | filters, headers=procore_headers()
        )
        assert [item["id"] for item in response.json()] == ids


# --- authentication and permissions --------------------------------------------------------


def test_missing_or_unknown_token_is_401(qbo_client: httpx.Client) -> None:
    """Procore and the ERP both answer 401 without a token they know."""
    assert qbo_client.get("/rest/v1.0/me").status_code == 401
    bad = {"Authorization": "Bearer nope", "Procore-Company-Id": "4021"}
    assert qbo_client.get("/rest/v1.0/me", headers=bad).status_code == 401
    response = qbo_client.get("/erp/v3/company/9130357/bill/183", headers=bad)
    # Intuit's platform answers 401 (and 403) in lower case: {"fault": {"error": [...]}}
    assert response.status_code == 401 and response.json()["fault"]["error"][0]["code"] == "3200"


def test_company_header_is_required_except_on_me(qbo_client: httpx.Client) -> None:
    """Without Procore-Company-Id only a user's /rest/v1.0/me answers (a service account's
    token needs the header there too); the rest is refused by name. /me names the user only
    when asked with company_id."""
    token_only = {"Authorization": "Bearer sandbox-ana"}
    assert qbo_client.get("/rest/v1.0/me", headers=token_only).json() == {
        "id": 7001, "login": "ana@summit.example"}
    named = qbo_client.get("/rest/v1.0/me?company_id=4021", headers=token_only).json()
    assert (named["id"], named["name"]) == (7001, "Ana Alvarez")
    response = qbo_client.get("/rest/v1.1/requisitions/9001?project_id=101", headers=token_only)
    assert response.status_code == 400
    assert response.json()["message"] == "Missing Procore-Company-Id header!"
    assert set(response.json()) == {"code", "message", "fields", "reason", "error"}
    service = {"Authorization": "Bearer sandbox-service"}
    assert qbo_client.get("/rest/v1.0/me?company_id=4021", headers=service).status_code == 400
    with_company = qbo_client.get("/rest/v1.0/me?company_id=4021",
                                  headers=procore_headers("service")).json()
    assert (with_company["id"], with_company["login"]) == (7009, "erp-connector@summit.example")


@pytest.mark.parametrize(
    ("user", "commitments", "erp_integrations", "accountant"),
    [
        ("ana", "Admin", "Admin", True),
        ("ben", "Admin", "Standard", False),
        ("cara", "Standard", "Read Only", False),
        ("rita", "Read Only", "None", False),
    ],
)
def test_permissions_reflect_the_seeded_users(
    qbo_client: httpx.Client, user: str, commitments: str, erp_integrations: str, accountant: bool
) -> None:
    """Tool access levels and erp_integrated_accountant are the seed's, per user."""
    headers = procore_headers(user)
    get = qbo_client.get
    project = get("/rest/v1.0/settings/permissions?project_id=101", headers=headers).json()
    company = get("/rest/v1.0/settings/permissions?company_id=4021", headers=headers).json()
    assert project["tools"][0]["name"] == "commitments"
    assert project["tools"][0]["user_access_level"]["name"] == commitments
    assert company["tools"][0]["name"] == "erp_integrations"
    assert company["tools"][0]["user_access_level"]["name"] == erp_integrations
    me = get("/rest/v1.1/companies/4021/me", headers=headers).json()
    assert me["erp_integrated_accountant"] is accountant


def test_unlink_and_delete_need_their_permissions(qbo_client: httpx.Client) -> None:
    """External Data Sync is only for the service account with ERP Integrations Admin (never an
    operator, even an Admin); deleting needs Commitments Admin, or Standard for a draft."""
    for user in ("ana", "ben", "cara", "rita"):
        assert unlink(qbo_client, 9003, user).status_code == 403
    assert requisition(qbo_client, 9003)["origin_id"] == "185"
    url = "/rest/v1.1/requisitions/{}?project_id=101"
    assert unlink(qbo_client, 9003).status_code == 200
    assert qbo_client.delete(url.format(9003), headers=procore_headers("cara")).status_code == 403
    assert qbo_client.delete(url.format(9004), headers=procore_headers("rita")).status_code == 403
    assert requisition(qbo_client, 9003) is not None and requisition(qbo_client, 9004) is not None
    assert qbo_client.delete(url.format(9004), headers=procore_headers("cara")).status_code == 200


# --- the correction, per ERP ---------------------------------------------------------------


def test_unlink_while_the_bill_exists_names_the_product(
    client: httpx.Client, server: SandboxServer
) -> None:
    """The Unlink click fails with the red message naming the ERP product, and keeps the link."""
    product = PRODUCT_NAMES[server.world.erp]
    message = f"The requisition is still in {product}. Please delete it before retrying."
    assert click_unlink(client, 9001) == {"status": "failed", "messages": [message]}
    assert requisition(client, 9001)["origin_id"] is not None
    requests = client.get("/_sandbox/erp-requests").json()
    assert [(r["request_name"], r["item_id"], r["request_detail"]) for r in requests] == [
        ("unlink_requisition", 9001, {"status": "failed", "messages": [message]})
    ]


def test_full_correction(client: httpx.Client, server: SandboxServer) -> None:
    """Delete the bill, unlink (the operator's click), delete the invoice, re-enter it with
    typed items: each step is accepted."""
    erp = server.world.erp
    bill_id = requisition(client, 9001)["origin_id"]
    assert delete_bill(client, erp, bill_id).status_code in (200, 204)
    assert not bill_exists(client, erp, bill_id)
    assert click_unlink(client, 9001) == {"status": "success", "messages": []}
    assert requisition(client, 9001)["origin_id"] is None
    deleted = client.delete(
        "/rest/v1.1/requisitions/9001?project_id=101", headers=procore_headers()
    )
    assert deleted.status_code == 200 and requisition(client, 9001) is None
    body = {
        "project_id": 101,
        "commitment_id": 5501,
        "requisition": {
            "invoice_number": "INV-1001",
            "billing_date": "2026-01-31",
            "items": [
                {"item_type": "contract_item", "line_item_id": 55011,
                 "work_completed_this_period": "9500.00"},
                {"item_type": "change_order_item", "line_item_id": 55015,
                 "work_completed_this_period": "2500.00"},
            ],
        },
    }
    created = client.post("/rest/v1.1/requisitions", json=body, headers=procore_headers())
    assert created.status_code == 201
    new = created.json()
    # the only invoice on its commitment again, so numbered 1
    assert new["id"] >= 9_900_000_000 and new["origin_id"] is None and new["number"] == 1
    assert new["total_claimed_amount"] == "12000.00"
    assert [(i["item_type"], i["line_item_id"], i["work_completed_this_period"])
            for i in new["items"]] == [
        ("contract_item", 55011, "9500.00"), ("change_order_item", 55015, "2500.00")
    ]
    procore_calls = [c for c in client.get("/_sandbox/calls").json()
                     if c["path"].startswith("/rest/")]
    assert {c["actor"] for c in procore_calls} == {"ana@summit.example"}
    assert not any("external_data" in c["path"] for c in procore_calls)  # the click did it


def test_paid_bill_is_refused_in_the_products_shape(
    client: httpx.Client, server: SandboxServer
) -> None:
    """Deleting a paid bill fails with the ERP's own error body and the bill stays."""
    erp = server.world.erp
    bill_id = erp_bill_id(erp, 184)
    response = delete_bill(client, erp, bill_id)
    if erp == "qbo":
        assert response.status_code == 400 and response.json()["Fault"]["Error"][0]["code"]
    elif erp == "xero":
        assert response.status_code == 400 and response.json()["Type"] == "ValidationException"
        assert response.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    else:  # the delete operation documents 400 as its only error answer
        assert response.status_code == 400
        assert response.json()["ia::result"]["ia::error"]["code"] == "operationFailed"
    assert bill_exists(client, erp, bill_id)


def test_procore_refuses_to_delete_synced_or_undeletable_invoices(qbo_client: httpx.Client) -> None:
    """A synced invoice, one marked deletable: false, or one that is not the most recent on
    its commitment cannot be deleted: 422, each with its own reason."""
    url = "/rest/v1.1/requisitions/{}?project_id=101"
    assert qbo_client.delete(url.format(9001), headers=procore_headers()).status_code == 422
    qbo_client.post("/_sandbox/erp/bills/186/delete")
    assert unlink(qbo_client, 9005).json()["errors"] == []
    response = qbo_client.delete(url.format(9005), headers=procore_headers())
    assert response.status_code == 422 and "payments" in response.json()["message"]
    for invoice in (9603, 9604):
        assert unlink(qbo_client, invoice).json()["errors"] == []
    response = qbo_client.delete(url.format(9603), headers=procore_headers())
    assert response.status_code == 422 and response.json()["message"] == (
        "Only the most recent invoice on a commitment can be deleted."
        " Later invoices on this commitment: 4."
    )
    assert qbo_client.delete(url.format(9604), headers=procore_headers()).status_code == 200
    assert qbo_client.delete(url.format(9603), headers=procore_headers()).status_code == 200


def test_qbo_needs_the_current_sync_token(qbo_client: httpx.Client) -> None:
    """A stale SyncToken fails with Fault 5010; reading a deleted bill is Fault 610."""
    headers = erp_headers("qbo")
    url = "/erp/v3/company/9130357/bill?operation=delete"
    stale = qbo_client.post(url, json={"Id": "183", "SyncToken": "7"}, headers=headers)
    assert stale.status_code == 400 and stale.json()["Fault"]["Error"][0]["code"] == "5010"
    assert qbo_client.post(url, json={"Id": "183", "SyncToken": "0"}, headers=headers).is_success
    gone = read_bill(qbo_client, "qbo", "183")
    assert gone.status_code == 400 and gone.json()["Fault"]["Error"][0]["code"] == "610"


def test_xero_idempotency_key_replays_the_first_answer(servers: dict[str, SandboxServer]) -> None:
    """The same Idempotency-Key gives the first answer again; a void without it is refused."""
    server = servers["xero"]
    server.world.reset()
    bill_id = erp_bill_id("xero", 183)
    body = {"Invoices": [{"InvoiceID": bill_id, "Status": "VOIDED"}]}
    url = f"/erp/api.xro/2.0/Invoices/{bill_id}"
    with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=5) as client:
        keyed = erp_headers("xero") | {"Idempotency-Key": "void-183"}
        first = client.post(url, json=body, headers=keyed)
        again = client.post(url, json=body, headers=keyed)
        plain = client.post(url, json=body, headers=erp_headers("xero"))
        read = read_bill(client, "xero", bill_id)
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert plain.status_code == 400
    assert read.json()["Invoices"][0]["Status"] == "VOIDED"


def test_intacct_delete_answers_204_then_404(servers: dict[str, SandboxServer]) -> None:
    """Deleting an Intacct bill answers 204 and the bill is 404 from then on."""
    server = servers["intacct"]
    server.world.reset()
    url = "/erp/ia/api/v1/objects/accounts-payable/bill/50183"
    with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=5) as client:
        assert client.delete(url, headers=erp_headers("intacct")).status_code == 204
        assert client.delete(url, headers=erp_headers("intacct")).status_code == 404
        assert client.get(url, headers=erp_headers("intacct")).status_code == 404


# --- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"amount": "1.00"}, "amount"),
        ({"billing_date": "31/01/2026"}, "billing_date"),
        ({"status": "paid"}, "status"),
        ({"final": "yes"}, "final"),
        ({"items": [{"item_type": "contract_item", "line_item_id": 55011,
                     "work_completed_this_period": 12}]}, "items[0].work_completed_this_period"),
        ({"items": [{"item_type": "contract_item", "line_item_id": 55011, "description": "x",
                     "work_completed_this_period": "1.00"}]}, "items[0].description"),
        ({"items": [{"work_completed_this_period": "1.00"}]}, "items[0].item_type"),
        ({"items": [{"item_type": "contract_item", "line_item_id": 55021,
                     "work_completed_this_period": "1.00"}]}, "items[0].line_item_id"),
    ],
)
def test_create_validates_writable_fields(
    qbo_client: httpx.Client, fields: dict[str, Any], bad_field: str | None
) -> None:
    """Unknown fields and wrong types are refused with 422 naming the field."""
    body = {"project_id": 101, "commitment_id": 5501, "requisition": fields}
    response = qbo_client.post("/rest/v1.1/requisitions", json=body, headers=procore_headers())
    assert response.status_code == 422
    assert bad_field is None or bad_field in response.json()["fields"]


def test_bad_json_is_400(qbo_client: httpx.Client) -> None:
    """A body that is not JSON is answered 400, by Procore and by the ERP."""
    json_type = {"Content-Type": "application/json"}
    for method, url, user in [
        ("POST", "/rest/v1.1/requisitions", "ana"),
        ("PATCH", "/rest/v1.0/companies/4021/external_data/sync", "service"),
    ]:
        headers = procore_headers(user) | json_type
        assert qbo_client.request(method, url, content=b"{nope", headers=headers).status_code == 400
    qbo_url = "/erp/v3/company/9130357/bill?operation=delete"
    assert qbo_client.post(qbo_url, content=b"\xff", headers=erp_headers("qbo")).status_code == 400


# --- control endpoints -----------------------------------------------------------------------


def test_control_delete_and_restore_a_bill(client: httpx.Client, server: SandboxServer) -> None:
    """A bill deleted by hand is gone until restored; the QBO id is accepted too."""
    erp = server.world.erp
    bill_id = erp_bill_id(erp, 190)
    assert client.post(f"/_sandbox/erp/bills/{bill_id}/delete").json()["exists"] is False
    assert not bill_exists(client, erp, bill_id)
    assert client.post("/_sandbox/erp/bills/190/restore").json()["exists"] is True
    assert bill_exists(client, erp, bill_id)
    assert client.post("/_sandbox/erp/bills/nope/delete").status_code == 404


def test_calls_log_api_calls_only_and_reset_clears_everything(qbo_client: httpx.Client) -> None:
    """The call log lists API calls with their query string and the identity behind each
    token; reset restores the seed."""
    qbo_client.get("/_sandbox/health")
    qbo_client.get("/rest/v1.1/requisitions/9004?project_id=101", headers=procore_headers())
    qbo_client.delete("/rest/v1.1/requisitions/9004?project_id=101", headers=procore_headers())
    unlink(qbo_client, 9003)
    qbo_client.get("/rest/v1.0/me")
    sync = "/rest/v1.0/companies/4021/external_data/sync"
    ana, service = "ana@summit.example", "erp-connector@summit.example"
    assert qbo_client.get("/_sandbox/calls").json() == [
        {"method": "GET", "path": "/rest/v1.1/requisitions/9004?project_id=101", "status": 200,
         "actor": ana},
        {"method": "DELETE", "path": "/rest/v1.1/requisitions/9004?project_id=101", "status": 200,
         "actor": ana},
        {"method": "PATCH", "path": sync, "status": 200, "actor": service},
        {"method": "GET", "path": "/rest/v1.0/me", "status": 401, "actor": None},
    ]
    state = qbo_client.get("/_sandbox/state/requisitions?project_id=101").json()
    assert {item["id"]: item["deleted"] for item in state}[9004] is True
    assert qbo_client.post("/_sandbox/reset").status_code == 200
    assert qbo_client.get("/_sandbox/calls").json() == []
    assert requisition(qbo_client, 9004) is not None


def test_every_response_has_a_request_id(qbo_client: httpx.Client) -> None:
    """Procore, ERP, OAuth, control and error answers all carry X-Request-Id."""
    responses = [
        qbo_client.get("/rest/v1.0/me"),
        qbo_client.get("/erp/v3/company/9130357/bill/183", headers=erp_headers("qbo")),
        qbo_client.post("/oauth/token", data={"grant_type": "password"}),
        qbo_client.get("/_sandbox/health"),
        qbo_client.get("/nowhere"),
    ]
    assert all(response.headers.get("X-Request-Id") for response in responses)


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "503", "429", "garbage", "timeout", "reset"])
def test_each_fault_kind_fails_the_call_and_changes_nothing(
    qbo_server: SandboxServer, kind: str
) -> None:
    """A faulted call answers as its kind says (or not at all) and the sandbox is unchanged."""
    faults = {"rate": 1, "kinds": [kind], "seed": 1, "timeout_seconds": 1}
    url = "/rest/v1.1/requisitions/9004?project_id=101"
    with httpx.Client(verify=LOOPBACK_TLS, base_url=qbo_server.url, timeout=0.3) as client:
        assert client.post("/_sandbox/faults", json=faults).status_code == 200
        response: httpx.Response | None = None
        try:
            response = client.delete(url, headers=procore_headers())
        except httpx.TimeoutException:
            assert kind == "timeout"
        except httpx.RemoteProtocolError:
            assert kind == "reset"
        client.post("/_sandbox/faults", json={"rate": 0})
        calls = client.get("/_sandbox/calls").json()
        state = client.get("/_sandbox/state/requisitions?project_id=101").json()
    if kind in ("timeout", "reset"):
        assert response is None and calls[-1]["status"] == 0
    elif kind == "garbage":
        assert response is not None and response.status_code == 200
        with pytest.raises(ValueError):
            response.json()
    else:
        assert response is not None and response.status_code == int(kind)
        assert kind == "500" or response.headers["Retry-After"] == "1"
    assert {item["id"]: item["deleted"] for item in state}[9004] is False


def test_fault_rate_zero_turns_faults_off_and_a_seed_repeats(qbo_server: SandboxServer) -> None:
    """Faults drawn with the same seed repeat the same sequence; rate 0 lets every call through."""

    def statuses(faults: dict[str, Any]) -> list[int]:
        with httpx.Client(verify=LOOPBACK_TLS, base_url=qbo_server.url, timeout=5) as client:
            client.post("/_sandbox/faults", json=faults)
            return [
                client.get("/rest/v1.0/me", headers=procore_headers()).status_code
                for _ in range(20)
            ]

    half = {"rate": 0.5, "kinds": ["500", "503"], "seed": 7}
    first, second = statuses(half), statuses(half)
    assert first == second and {200, 500, 503} >= set(first) and 200 in first
    assert set(first) != {200}
    assert statuses({"rate": 0}) == [200] * 20


def test_bad_fault_settings_are_400(qbo_client: httpx.Client) -> None:
    """An unknown fault kind or a rate above 1 is refused."""
    assert qbo_client.post("/_sandbox/faults", json={"rate": 2}).status_code == 400
    response = qbo_client.post("/_sandbox/faults", json={"rate": 0.1, "kinds": ["fire"]})
    assert response.status_code == 400


def test_rate_limit_answers_429_with_headers() -> None:
    """Over the limit, calls get 429 with Retry-After; each system counts apart; control is free."""
    with (
        SandboxServer("qbo", rate_limit="3/1") as server,
        httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=5) as client,
    ):
        first = client.get("/rest/v1.0/me", headers=procore_headers())
        second = client.get("/rest/v1.0/me", headers=procore_headers())
        erp = read_bill(client, "qbo", "183")
        health = client.get("/_sandbox/health")
        calls = client.get("/_sandbox/calls").json()
    assert first.status_code == 200 and first.headers["X-Rate-Limit-Limit"] == "1"
    assert first.headers["X-Rate-Limit-Remaining"] == "0"
    assert int(first.headers["X-Rate-Limit-Reset"]) > 0
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    assert second.headers["X-Rate-Limit-Remaining"] == "0"
    assert erp.status_code == 200 and health.status_code == 200
    assert "X-Rate-Limit-Limit" not in health.headers
    assert [call["status"] for call in calls] == [200, 429, 200]


# --- OAuth -----------------------------------------------------------------------------------

CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


def test_authorization_code_yields_a_token_for_that_user(qbo_client: httpx.Client) -> None:
    """The code sandbox-code-ben yields a fresh bearer token acting as ben."""
    form = CLIENT | {
        "grant_type": "authorization_code",
        "code": "sandbox-code-ben",
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
    }
    token = qbo_client.post("/oauth/token", data=form).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 5400
    assert isinstance(token["created_at"], int) and token["refresh_token"]
    me = qbo_client.get(
        "/rest/v1.0/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.json()["id"] == 7002


def test_refresh_tokens_are_single_use(qbo_client: httpx.Client) -> None:
    """A refresh token works once; using it again is invalid_grant."""
    issued = qbo_client.post("/oauth/token", data=CLIENT | {"grant_type": "client_credentials"})
    refresh = CLIENT | {
        "grant_type": "refresh_token",
        "refresh_token": issued.json()["refresh_token"],
    }
    renewed = qbo_client.post("/oauth/token", data=refresh)
    reused = qbo_client.post("/oauth/token", data=refresh)
    assert (
        renewed.status_code == 200
        and renewed.json()["access_token"] != issued.json()["access_token"]
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert qbo_client.get("/rest/v1.0/me", headers=headers).json()["id"] == 7001


def test_oauth_refuses_a_wrong_client_or_code(qbo_client: httpx.Client) -> None:
    """A wrong client secret is 401 invalid_client; an unknown code is 400 invalid_grant."""
    wrong_secret = {"client_id": "sandbox-client", "client_secret": "guess"}
    assert (
        qbo_client.post(
            "/oauth/token", data=wrong_secret | {"grant_type": "client_credentials"}
        ).status_code
        == 401
    )
    bad_code = CLIENT | {"grant_type": "authorization_code", "code": "sandbox-code-zed"}
    assert qbo_client.post("/oauth/token", data=bad_code).json()["error"] == "invalid_grant"


# --- wiring --------------------------------------------------------------------------------------


def test_env_points_relink_at_the_server(server: SandboxServer) -> None:
    """env() gives URLs, company and ERP settings; the export lines never set a Procore token."""
    env = server.env()
    assert env["RELINK_PROCORE_URL"] == env["RELINK_PROCORE_LOGIN_URL"] == server.url
    assert env["RELINK_ERP_URL"] == server.url + "/erp"
    assert env["RELINK_ERP_COMPANY"] == ERP_COMPANIES[server.world.erp]
    assert (env["RELINK_COMPANY_ID"], env["RELINK_ERP_TOKEN"]) == ("4021", "sandbox-erp")
    lines = export_lines(server)
    assert f"export RELINK_ERP={server.world.erp}" in lines
    assert not any(line.startswith("export RELINK_PROCORE_TOKEN") for line in lines)


def test_in_process_transport_answers_like_the_server() -> None:
    """The httpx transport serves the same world without a server, logging the calls."""
    world = SandboxWorld("intacct")
    with httpx.Client(transport=in_process_transport(world), base_url="http://sandbox") as client:
        body = requisition(client, 9002)
        paid = read_bill(client, "intacct", body["origin_id"]).json()["ia::result"]
    assert paid["state"] == "paid" and paid["key"] == "50184"
    assert [call["status"] for call in world.calls()] == [200, 200]
