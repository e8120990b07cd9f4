"""Oracles nobody here wrote: the vendors' own SDKs against the sandbox over loopback HTTP.

* ``xero-python`` (Xero's official SDK, generated from its OpenAPI document) reads every bill and
  purchase order the sandbox answers, its refusals, and the bodies relink sends, field for field;
* ``python-quickbooks`` reads every QuickBooks Online bill, deletes one, and meets the Faults;
* ``sageintacctrestsdk`` (Sage Intacct's REST SDK) has no models: it checks the paths, verbs and
  envelopes, and the bill's fields are checked against the IOAS ``objects.accounts-payable.bill``
  schema transcribed below.

No call leaves the machine: each SDK is pointed at the sandbox's loopback URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import intacctsdk.apis.api_base
import pytest
from intacctsdk import BadRequestError, IntacctRESTSDK
from quickbooks import QuickBooks
from quickbooks.exceptions import ObjectNotFoundException, QuickbooksException
from quickbooks.objects.bill import Bill as QuickBooksBill
from requests_oauthlib import OAuth2Session
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import Invoice, Invoices, PurchaseOrder, PurchaseOrders
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.deserializer import deserialize
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.api_client.serializer import serialize
from xero_python.exceptions import HTTPStatusException

from integrations.erp import make_erp
from integrations.errors import RemoteRefused
from sandbox import seed
from sandbox.server import SandboxServer
from tests.conftest import LOOPBACK_TLS

# What each seeded bill is in each product (sandbox/bill_states.py); absent: not readable (gone)
XERO_STATUS = {183: "AUTHORISED", 184: "PAID", 185: "VOIDED", 2001: "DRAFT", 2002: "SUBMITTED",
               2003: "SUBMITTED", 2004: "DRAFT", 2005: "AUTHORISED", 2006: "AUTHORISED",
               2007: "DELETED"}
INTACCT_STATE = {183: "posted", 184: "paid", 2001: "draft", 2002: "submitted",
                 2003: "partiallyApproved", 2004: "declined", 2005: "selected",
                 2006: "partiallyPaid", 2007: "reversed"}
QBO_PAID = {184: Decimal("8400.00"), 2006: Decimal("2240.00")}  # what a BillPayment settled
# Fields Xero's answers carry beyond its OpenAPI schemas, each shown in Xero's own example answers
ENVELOPE = {"Id", "Status", "ProviderName", "DateTimeUTC"}
XERO_EXTRAS = {
    "Invoices": ENVELOPE,
    "PurchaseOrders": ENVELOPE,
    "Invoice": {"DateString", "DueDateString"},
    "PurchaseOrder": {"DateString", "Type"},
    "LineItem": {"ValidationErrors"},
}
# IOAS objects.accounts-payable.bill (Sage Intacct REST v1): its top-level fields and ``state`` enum
INTACCT_BILL_FIELDS = {
    "key", "id", "href", "billNumber", "moduleName", "state", "recordType", "vendor", "term",
    "referenceNumber", "description", "dueInDays", "postingDate", "discountCutOffDate", "dueDate",
    "recommendedPaymentDate", "createdDate", "isOnHold", "isTaxInclusive", "paymentPriority",
    "totalBaseAmount", "totalBaseAmountDue", "totalTxnAmount", "totalTxnAmountDue",
    "isSystemGenerated", "purchasing", "purchasingDocument", "recurringSchedule", "contacts",
    "currency", "taxSolution", "invoiceType", "invoiceMode", "eInvoiceStatus", "importStatus",
    "importErrorMessage", "recipientEmail", "senderEmail", "anomalyCode", "documentSource",
    "billSummary", "sourceModule", "paymentInformation", "retainage", "billBackTemplate",
    "attachment", "lines", "audit", "entity",
}
INTACCT_BILL_STATES = {"reversed", "reversal", "analyzing", "partiallyApproved", "submitted",
                       "declined", "noValue", "posted", "paid", "partiallyPaid", "selected",
                       "draft"}
INTACCT_PAYMENT_FIELDS = {"fullyPaidDate", "totalBaseAmountPaid", "totalTxnAmountPaid",
                          "totalBaseAmountSelectedForPayment", "totalTxnAmountSelectedForPayment"}


@pytest.fixture(name="servers", scope="module")
def fixture_servers() -> Iterator[dict[str, SandboxServer]]:
    servers = {erp: SandboxServer(erp).start() for erp in seed.ERP_KEYS}
    yield servers
    for server in servers.values():
        server.stop()


def fresh(servers: dict[str, SandboxServer], erp: str) -> SandboxServer:
    server = servers[erp]
    server.world.reset()
    return server


def bills_of(server: SandboxServer) -> list[dict[str, Any]]:
    """Every kind of bill the sandbox holds (from the control endpoint's list: qbo_id,
    invoice_number, state, exists, updated_at, ...)."""
    bills: list[dict[str, Any]] = httpx.get(f"{server.url}/_sandbox/state/bills",
                                            verify=LOOPBACK_TLS).json()
    assert {bill["qbo_id"] for bill in bills} >= set(XERO_STATUS)
    # the batch of 200 alike open bills is represented by its first and last
    return [bill for bill in bills if not 1200 < bill["qbo_id"] < 1399]


class Recording(httpx.BaseTransport):
    """Real HTTP to the sandbox, keeping each request relink sends (with its body)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def relink_erp(server: SandboxServer, transport: httpx.BaseTransport | None = None) -> Any:
    env = server.env()
    return make_erp(env["RELINK_ERP"], base_url=env["RELINK_ERP_URL"], token=seed.ERP_TOKEN,
                    company=env["RELINK_ERP_COMPANY"], transport=transport)


# --- Xero: xero-python ------------------------------------------------------------------------


def xero_api(server: SandboxServer) -> AccountingApi:
    """xero-python's AccountingApi, its host the sandbox, its token the sandbox's ERP token."""
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id="relink-tests",
                                                              client_secret="unused")),
                       pool_threads=1)

    @client.oauth2_token_getter
    def token() -> dict[str, Any]:
        return {"access_token": seed.ERP_TOKEN, "token_type": "Bearer",
                "scope": ["accounting.transactions"], "expires_in": 1800}

    return AccountingApi(client, base_url=f"{server.url}/erp/api.xro/2.0")


@pytest.fixture(name="xero")
def fixture_xero(servers: dict[str, SandboxServer]) -> Iterator[AccountingApi]:
    """xero-python on a freshly reset Xero sandbox; its connections closed afterwards."""
    api = xero_api(fresh(servers, "xero"))
    yield api
    api.api_client.rest_client.pool_manager.clear()


def unknown_fields(model: str, data: Any, api: AccountingApi, where: str = "") -> set[str]:
    """Keys of ``data`` that xero-python's ``model`` does not know (so would drop), recursively;
    the documented extras (XERO_EXTRAS) excepted."""
    finder = api.get_model_finder()
    if model.startswith("list[") and isinstance(data, list):
        inner = model[5:-1]
        return set().union(*(unknown_fields(inner, item, api, where) for item in data))
    try:
        cls = finder.find_model(model)
    except AttributeError:
        return set()  # a primitive
    if not isinstance(data, dict) or not hasattr(cls, "attribute_map"):
        return set()
    by_key = {key: cls.openapi_types[attr] for attr, key in cls.attribute_map.items()}
    found = {f"{where}{model}.{key}" for key in data
             if key not in by_key and key not in XERO_EXTRAS.get(model, set())}
    for key, value in data.items():
        if key in by_key:
            found |= unknown_fields(by_key[key], value, api, f"{where}{model}.")
    return found


def xero_raw(server: SandboxServer, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {seed.ERP_TOKEN}", "xero-tenant-id": seed.XERO_TENANT}
    answer = httpx.get(f"{server.url}/erp/api.xro/2.0/{path}", headers=headers, verify=LOOPBACK_TLS)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_xero_python_reads_every_bill_the_sandbox_has(servers, xero):
    """Every bill deserialises in xero-python: its dates from ``/Date(ms+0000)/``, its status
    the seeded one, and no field that the SDK would drop."""
    server, api = servers["xero"], xero
    for record in bills_of(server):
        qbo_id, bill_id = record["qbo_id"], record["id"]
        (invoice,) = api.get_invoice(seed.XERO_TENANT, bill_id).invoices
        assert (invoice.invoice_id, invoice.type) == (bill_id, "ACCPAY")
        assert invoice.invoice_number == record["invoice_number"]
        assert (invoice.date, invoice.due_date) == (date(2026, 1, 31), date(2026, 3, 2))
        assert invoice.updated_date_utc.tzinfo is not None
        assert invoice.updated_date_utc.astimezone(UTC) == datetime.fromisoformat(
            record["updated_at"])
        if qbo_id in XERO_STATUS:
            assert invoice.status == XERO_STATUS[qbo_id], qbo_id
        paid = sum(payment.amount for payment in invoice.payments or [])
        assert invoice.amount_paid == paid
        assert invoice.amount_due == (0 if invoice.status in ("VOIDED", "DELETED")
                                      else invoice.total - paid)
        raw = xero_raw(server, f"Invoices/{bill_id}")
        assert unknown_fields("Invoices", raw, api) == set(), qbo_id
        assert raw["Invoices"][0]["DateString"] == "2026-01-31T00:00:00"
        assert raw["Invoices"][0]["Date"] == "/Date(1769817600000+0000)/"


def test_xero_python_reads_the_purchase_orders(servers, xero):
    """Purchase orders deserialise too, with Xero's date format and no field the SDK drops."""
    server, api = servers["xero"], xero
    for commitment_id, status in ((6001, "AUTHORISED"), (6002, "BILLED"), (6004, "DELETED")):
        order_id = seed.purchase_document_id("xero", commitment_id)
        (order,) = api.get_purchase_order(seed.XERO_TENANT, order_id).purchase_orders
        assert (order.purchase_order_id, order.status) == (order_id, status)
        assert order.date == date.fromisoformat(seed.COMMITMENT_DATE)
        assert order.updated_date_utc.tzinfo is not None
        raw = xero_raw(server, f"PurchaseOrders/{order_id}")
        assert unknown_fields("PurchaseOrders", raw, api) == set()


def test_xero_python_changes_a_bill_and_meets_xeros_refusals(xero):
    """Through the SDK: a SUBMITTED bill is DELETED; a part-paid and a paid bill are refused
    with a ValidationException that the SDK's Error model reads; answers carry a correlation id."""
    api = xero
    submitted = seed.erp_bill_id("xero", 2002)
    body = Invoices(invoices=[Invoice(invoice_id=submitted, status="DELETED")])
    answer, status, headers = api.update_invoice(seed.XERO_TENANT, submitted, body,
                                                 _return_http_data_only=False)
    assert (status, answer.invoices[0].status) == (200, "DELETED")
    assert dict(headers)["xero-correlation-id"].startswith("00000000-0000-4000-e000-")
    for qbo_id in (2006, 184):
        bill_id = seed.erp_bill_id("xero", qbo_id)
        with pytest.raises(HTTPStatusException) as caught:
            api.update_invoice(seed.XERO_TENANT, bill_id, Invoices(
                invoices=[Invoice(invoice_id=bill_id, status="VOIDED")]))
        assert caught.value.status == 400
        error = deserialize("Error", json.loads(caught.value.body), api.get_model_finder())
        assert (error.type, error.error_number) == ("ValidationException", 10)
        assert error.elements[0].invoice_id == bill_id
        assert "payment" in error.elements[0].validation_errors[0].message
    assert api.get_invoice(seed.XERO_TENANT, seed.erp_bill_id("xero", 2006)).invoices[0].status \
        == "AUTHORISED"


def test_the_bodies_relink_sends_to_xero_are_xero_pythons(servers, xero):
    """Each body relink posts to Xero is what xero-python serialises from its models for the same
    change (bar the SDK's false defaults), and survives the SDK's round trip without a loss."""
    server = servers["xero"]
    recording = Recording()
    erp = relink_erp(server, recording)
    try:
        erp.delete_bill(seed.erp_bill_id("xero", 2001), idempotency_key="sdk-1")
        erp.delete_bill(seed.erp_bill_id("xero", 183), idempotency_key="sdk-2")
        erp.delete_purchase_document(seed.purchase_document_id("xero", 6001),
                                     idempotency_key="sdk-3")
        with pytest.raises(RemoteRefused, match="payment or credit note allocated"):
            erp.delete_bill(seed.erp_bill_id("xero", 2006), idempotency_key="sdk-4")
    finally:
        erp.close()
    posts = [json.loads(request.content) for request in recording.sent if request.method == "POST"]
    assert len(posts) == 4
    finder = xero.get_model_finder()
    expected = [
        Invoices(invoices=[Invoice(invoice_id=seed.erp_bill_id("xero", 2001), status="DELETED")]),
        Invoices(invoices=[Invoice(invoice_id=seed.erp_bill_id("xero", 183), status="VOIDED")]),
        PurchaseOrders(purchase_orders=[PurchaseOrder(
            purchase_order_id=seed.purchase_document_id("xero", 6001), status="DELETED")]),
        Invoices(invoices=[Invoice(invoice_id=seed.erp_bill_id("xero", 2006), status="VOIDED")]),
    ]
    for sent, model in zip(posts, expected, strict=True):
        # what the SDK sends for the same change: relink's fields, plus the flags its models
        # default (HasAttachments, HasErrors: false)
        sdk_body = serialize(model)
        assert contains(sdk_body, sent)
        for extra in set(sdk_body[next(iter(sdk_body))][0]) - set(next(iter(sent.values()))[0]):
            assert sdk_body[next(iter(sdk_body))][0][extra] is False, extra
        # and nothing relink sends is lost through the SDK's models
        assert contains(serialize(deserialize(type(model).__name__, sent, finder)), sent)


# --- QuickBooks Online: python-quickbooks ----------------------------------------------------


@pytest.fixture(name="quickbooks")
def fixture_quickbooks(
    servers: dict[str, SandboxServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[QuickBooks]:
    """python-quickbooks' client on the sandbox's QuickBooks Online (plain HTTP on loopback)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the loopback sandbox has no TLS
    server = fresh(servers, "qbo")
    client = QuickBooks(company_id=seed.QBO_REALM, minorversion=75)
    client.api_url_v3 = f"{server.url}/erp/v3"
    client.session = OAuth2Session("relink-tests", token={"access_token": seed.ERP_TOKEN,
                                                          "token_type": "Bearer"})
    yield client
    client.session.close()


def contains(whole: Any, part: Any) -> bool:
    """Every field of ``part`` is in ``whole`` with the same value (recursively)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and contains(whole[key], value) for key, value in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(
            contains(w, p) for w, p in zip(whole, part, strict=True))
    return bool(whole == part)


def test_python_quickbooks_reads_every_bill(servers, quickbooks):
    """Each live bill reads into python-quickbooks' Bill without losing a field; a payment shows
    as a BillPayment and a lower Balance; a deleted bill is its ObjectNotFoundException."""
    server = servers["qbo"]
    for record in bills_of(server):
        qbo_id = record["qbo_id"]
        if not record["exists"]:
            with pytest.raises(ObjectNotFoundException):
                QuickBooksBill.get(str(qbo_id), qb=quickbooks)
            continue
        bill = QuickBooksBill.get(str(qbo_id), qb=quickbooks)
        assert (bill.Id, bill.DocNumber) == (str(qbo_id), record["invoice_number"])
        paid = QBO_PAID.get(qbo_id, Decimal("0"))
        assert Decimal(str(bill.TotalAmt)) - Decimal(str(bill.Balance)) == paid
        assert [link.TxnType for link in bill.LinkedTxn] == (["BillPayment"] if paid else [])
        raw = httpx.get(f"{server.url}/erp/v3/company/{seed.QBO_REALM}/bill/{qbo_id}",
                        headers={"Authorization": f"Bearer {seed.ERP_TOKEN}"},
                        verify=LOOPBACK_TLS).json()["Bill"]
        assert contains(QuickBooksBill.from_json(raw).to_dict(), raw), qbo_id


def test_python_quickbooks_deletes_a_bill_and_meets_the_faults(servers, quickbooks):
    """Through the SDK: an open bill is deleted; a paid or part-paid one is refused (Fault 6000);
    a stale SyncToken is Fault 5010."""
    bill = QuickBooksBill.get("2001", qb=quickbooks)
    answer = bill.delete(qb=quickbooks)
    assert answer["Bill"] == {"domain": "QBO", "status": "Deleted", "Id": "2001"}
    for qbo_id in ("2006", "184"):
        with pytest.raises(QuickbooksException) as caught:
            QuickBooksBill.get(qbo_id, qb=quickbooks).delete(qb=quickbooks)
        assert caught.value.error_code == 6000 and "payments" in caught.value.detail
    stale = QuickBooksBill.get("183", qb=quickbooks)
    stale.SyncToken = "9"
    with pytest.raises(QuickbooksException) as caught:
        stale.delete(qb=quickbooks)
    assert caught.value.error_code == 5010


def test_relink_asks_quickbooks_what_python_quickbooks_asks(servers, quickbooks):
    """relink's read and delete of a bill use python-quickbooks' paths, minorversion and body."""
    sdk_bodies: list[Any] = []
    quickbooks.session.hooks["response"].append(
        lambda response, *args, **kwargs: sdk_bodies.append(response.request.body))
    QuickBooksBill.get("2001", qb=quickbooks).delete(qb=quickbooks)
    server = servers["qbo"]
    sdk_calls = server.world.calls()
    server.world.reset()
    recording = Recording()
    erp = relink_erp(server, recording)
    try:
        erp.delete_bill("2001", idempotency_key="sdk-5")
    finally:
        erp.close()
    relink_calls = server.world.calls()
    assert [c["method"] for c in relink_calls] == [c["method"] for c in sdk_calls]
    for ours, theirs in zip(relink_calls, sdk_calls, strict=True):
        ours_path, _, ours_query = ours["path"].partition("?")
        theirs_path, _, theirs_query = theirs["path"].partition("?")
        assert ours_path == theirs_path
        ours_params = dict(httpx.QueryParams(ours_query))
        ours_params.pop("requestid", None)  # relink names each write (python-quickbooks can too)
        assert ours_params == dict(httpx.QueryParams(theirs_query))
    ours_body = json.loads(recording.sent[-1].content)
    assert ours_body == json.loads(sdk_bodies[-1])


# --- Sage Intacct: sageintacctrestsdk ---------------------------------------------------------


@pytest.fixture(name="intacct")
def fixture_intacct(
    servers: dict[str, SandboxServer], monkeypatch: pytest.MonkeyPatch
) -> IntacctRESTSDK:
    """Sage Intacct's REST SDK with an access token, its base URL the sandbox's."""
    server = fresh(servers, "intacct")
    monkeypatch.setattr(intacctsdk.apis.api_base, "BASE_URL", f"{server.url}/erp/ia/api/v1")
    return IntacctRESTSDK(access_token=seed.ERP_TOKEN)


def test_sageintacctrestsdk_reads_every_bill(servers, intacct):
    """Each bill reads through the SDK; its fields and state are those of Intacct's bill schema;
    a deleted bill is a 404 in Intacct's error shape."""
    server = servers["intacct"]
    for record in bills_of(server):
        qbo_id, key = record["qbo_id"], record["id"]
        if record["state"] == "deleted":
            with pytest.raises(BadRequestError) as caught:
                intacct.bills.get_by_key(key)
            assert json.loads(caught.value.response)["ia::result"]["ia::error"]["code"]
            continue
        answer = intacct.bills.get_by_key(key)
        bill = answer["ia::result"]
        assert (bill["key"], bill["id"], bill["billNumber"]) == (key, key,
                                                                 record["invoice_number"])
        assert set(bill) <= INTACCT_BILL_FIELDS, set(bill) - INTACCT_BILL_FIELDS
        assert set(bill["paymentInformation"]) <= INTACCT_PAYMENT_FIELDS
        assert bill["state"] in INTACCT_BILL_STATES
        if qbo_id in INTACCT_STATE:
            assert bill["state"] == INTACCT_STATE[qbo_id], qbo_id
        for name in ("totalTxnAmount", "totalTxnAmountDue", "totalBaseAmount"):
            assert Decimal(bill[name]).as_tuple().exponent == -2
        assert answer["ia::meta"] == {"totalCount": 1, "totalSuccess": 1, "totalError": 0}


def test_sageintacctrestsdk_deletes_what_intacct_allows(servers, intacct):
    """Through the SDK: unpaid draft, submitted, partially approved, declined and posted bills are
    deleted (204); selected, part-paid, paid and reversed ones are refused with 400."""
    for qbo_id in (2001, 2002, 2003, 2004, 183):
        assert intacct.bills.delete(seed.erp_bill_id("intacct", qbo_id)) is None
    for qbo_id, number in ((2005, "ERP-2005"), (2006, "ERP-2006"), (184, "INV-1002"),
                           (2007, "ERP-2007")):
        with pytest.raises(BadRequestError) as caught:
            intacct.bills.delete(seed.erp_bill_id("intacct", qbo_id))
        assert "status code: 400" in caught.value.message
        error = json.loads(caught.value.response)["ia::result"]["ia::error"]
        assert error["code"] == "operationFailed" and number in error["message"]
    deletes = [c for c in servers["intacct"].world.calls() if c["method"] == "DELETE"]
    assert [c["status"] for c in deletes] == [204] * 5 + [400] * 4
