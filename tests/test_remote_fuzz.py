"""R5 for remote answers: whatever a remote system sends, a connector raises only RemoteError."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.erp import make_erp
from integrations.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.http import RetryPolicy
from integrations.procore import ProcoreClient, exchange_token

TOKEN = "fuzz-token-3b9d1e"
LIMIT = 4_000  # max_body_bytes in these tests, so "huge" stays cheap
XERO_ID = "00000000-0000-4000-8000-000000000183"

REQUISITION = {
    "id": 9001, "project_id": 101, "commitment_id": 5501, "number": 1,
    "invoice_number": "INV-1001", "status": "approved", "period_id": 301,
    "billing_date": "2026-01-31", "requisition_start": "2026-01-01",
    "requisition_end": "2026-01-31", "origin_id": "183", "origin_data": None,
    "erp_status": "synced", "deletable": True, "vendor_name": "Ironclad Steel",
    "total_claimed_amount": "12500.00", "created_at": "2026-02-02T15:00:00Z",
    "updated_at": "2026-02-02T15:00:00Z",
    # the extended view (view=extended): typed items naming the line item they bill
    "items": [{"id": 9950000001, "item_type": "contract_item", "line_item_id": 55011,
               "description_of_work": "Structural steel", "scheduled_value": "250000.00",
               "work_completed_this_period": "12500.00", "materials_presently_stored": "0.00",
               "position": 1}],
}
UNLINK = {"item_type": "requisition", "item_id": 9001, "origin_id": None, "origin_data": None}
TEMPLATES: dict[str, Any] = {
    "me": {"id": 7001, "login": "ana@summit.example", "name": "Ana"},
    "company_me": {"id": 7001, "erp_integrated_accountant": True},
    "permissions": {"tools": [{"id": 1, "name": "commitments", "friendly_name": "Commitments",
                               "user_access_level": {"id": 3, "name": "Admin"}}]},
    "requisition": REQUISITION,
    "requisitions": [REQUISITION, {**REQUISITION, "id": 9002, "origin_id": None}],
    "sync": {"entities": [UNLINK],
             "errors": [{**UNLINK, "errors": {"item_id": ["Entity with this ID not found"]}}]},
    "procore_error": {"code": "unprocessable", "message": "Not deletable", "fields": {}},
    "token": {"access_token": "a", "token_type": "bearer", "expires_in": 5400,
              "refresh_token": "r", "created_at": 1},
    "qbo_bill": {"Bill": {"Id": "183", "SyncToken": "0", "TotalAmt": 10.0, "Balance": 10.0,
                          "LinkedTxn": []}, "time": "2026-02-03T09:00:00Z"},
    "qbo_deleted": {"Bill": {"status": "Deleted", "Id": "183"}},
    "qbo_fault": {"Fault": {"Error": [{"Message": "Object Not Found", "Detail": "gone",
                                       "code": "610"}], "type": "ValidationFault"}},
    "xero_bill": {"Invoices": [{"InvoiceID": XERO_ID, "Type": "ACCPAY", "Status": "AUTHORISED",
                                "AmountDue": 10.0, "AmountPaid": 0}]},
    "xero_voided": {"Invoices": [{"InvoiceID": XERO_ID, "Type": "ACCPAY", "Status": "VOIDED"}]},
    "xero_fault": {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation",
                   "Elements": [{"ValidationErrors": [{"Message": "Paid"}]}]},
    "intacct_bill": {"ia::result": {"key": "50183", "id": "50183", "billNumber": "INV-1001",
                                    "state": "posted"}, "ia::meta": {}},
    "intacct_error": {"ia::result": {"ia::error": {"code": "notFound", "message": "No bill"}}},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside ``doc``."""
    found = [prefix] if prefix else []
    items: Any = []
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    for key, value in items:
        found.extend(paths(value, (*prefix, key)))
    return found


def mutated(names: list[str]) -> st.SearchStrategy[Any]:
    """A documented answer (one of ``names``) with one field replaced by any JSON value, or gone."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        doc = copy.deepcopy(TEMPLATES[draw(st.sampled_from(names))])
        where = draw(st.sampled_from(paths(doc)))
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[where[-1]] = draw(json_values)
        else:
            del parent[where[-1]]
        return doc

    return build()


def answers(names: list[str]) -> st.SearchStrategy[Any]:
    """Answers to one endpoint: its documented bodies, broken ones, garbage, failures."""
    relevant = st.sampled_from(names).map(lambda name: TEMPLATES[name])
    documents = st.one_of(relevant, mutated(names), mutated(sorted(TEMPLATES)), json_values)
    bodies = st.one_of(
        documents.map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=60),
        st.tuples(documents, st.integers(0, 40)).map(lambda d: json.dumps(d[0]).encode()[: d[1]]),
        st.sampled_from([b"", b"NaN", b'{"a": Infinity}', b"[" * 5000, b"1" * 5000,
                         b"\xff\xfe{}"]),
        st.integers(LIMIT + 1, LIMIT * 3).map(lambda n: b'["' + b"x" * n + b'"]'),
    )
    statuses = st.one_of(
        st.sampled_from([200, 200, 201, 204, 400, 400, 401, 403, 404, 409, 422, 429, 500, 503]),
        st.integers(100, 599),
    )
    documented = st.tuples(st.sampled_from([200, 201, 400, 404, 422]),
                           relevant.map(lambda doc: json.dumps(doc).encode()), st.just({}))
    return st.one_of(documented, st.tuples(statuses, bodies, odd_headers), failures)


odd_headers = st.dictionaries(
    st.sampled_from(["Retry-After", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", "Link",
                     "Total", "Content-Type", "X-Request-Id"]),
    st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
              st.integers(-10, 10**12).map(str)),
    max_size=3,
)
failures = st.sampled_from([httpx.ConnectError, httpx.ReadTimeout, httpx.ReadError,
                            httpx.RemoteProtocolError, httpx.WriteError, httpx.PoolTimeout,
                            httpx.DecodingError, httpx.UnsupportedProtocol])


def transport_for(script: list[Any]) -> httpx.MockTransport:
    """Answers the scripted responses in turn (the last repeats)."""
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        answer = script[min(count, len(script)) - 1]
        if isinstance(answer, type):
            raise answer("boom", request=request)
        status, body, headers = answer
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handler)


def no_sleep(seconds: float) -> None:
    """Waits are skipped: the fuzz run must not sleep."""


POLICY = RetryPolicy(attempts=2, backoff_initial=0, backoff_max=0, backoff_jitter=0,
                     max_body_bytes=LIMIT, sleep=no_sleep)
Endpoint = Callable[[httpx.MockTransport], object]


def procore(call: Callable[[ProcoreClient], object]) -> Endpoint:
    def run(transport: httpx.MockTransport) -> object:
        with ProcoreClient("http://procore.test", TOKEN, 4021, policy=POLICY,
                           transport=transport) as client:
            return call(client)
    return run


def erp(product: str, call: Callable[[Any], object]) -> Endpoint:
    def run(transport: httpx.MockTransport) -> object:
        connector = make_erp(product, base_url="http://erp.test/erp", token=TOKEN,
                             company="c-1", policy=POLICY, transport=transport)
        try:
            return call(connector)
        finally:
            connector.close()  # type: ignore[attr-defined]
    return run


PROCORE_ERR = ["procore_error"]
ENDPOINTS: dict[str, tuple[Endpoint, list[str]]] = {
    "procore.me": (procore(lambda c: c.me()), ["me", *PROCORE_ERR]),
    "procore.can_push_to_accounting": (
        procore(lambda c: c.can_push_to_accounting()), ["company_me", *PROCORE_ERR]
    ),
    "procore.tool_levels.project": (
        procore(lambda c: c.tool_levels(project_id=101)), ["permissions", *PROCORE_ERR]
    ),
    "procore.tool_levels.company": (
        procore(lambda c: c.tool_levels()), ["permissions", *PROCORE_ERR]
    ),
    "procore.get_requisition": (
        procore(lambda c: c.get_requisition(101, 9001)), ["requisition", *PROCORE_ERR]
    ),
    "procore.find_requisitions": (
        procore(lambda c: c.find_requisitions(101, commitment_id=5501, invoice_number="INV-1001")),
        ["requisitions", *PROCORE_ERR],
    ),
    "procore.sync_external_data": (
        procore(lambda c: c.sync_external_data([UNLINK])), ["sync", *PROCORE_ERR]
    ),
    "procore.delete_requisition": (
        procore(lambda c: c.delete_requisition(101, 9001)), ["requisition", *PROCORE_ERR]
    ),
    "procore.create_requisition": (
        procore(lambda c: c.create_requisition(101, 5501, {
            "invoice_number": "INV-1001b",
            "items": [{"item_type": "contract_item", "line_item_id": 55011,
                       "work_completed_this_period": "12500.00"}],
        })),
        ["requisition", *PROCORE_ERR],
    ),
    "procore.exchange_token": (
        lambda transport: exchange_token(
            "http://login.test", {"grant_type": "refresh_token", "client_id": "x",
                                  "client_secret": TOKEN, "refresh_token": TOKEN},
            policy=POLICY, transport=transport,
        ),
        ["token", *PROCORE_ERR],
    ),
    "qbo.get_bill": (erp("qbo", lambda c: c.get_bill("183")), ["qbo_bill", "qbo_fault"]),
    "qbo.delete_bill": (
        erp("qbo", lambda c: c.delete_bill("183", idempotency_key="k-1")),
        ["qbo_bill", "qbo_deleted", "qbo_fault"],
    ),
    "xero.get_bill": (erp("xero", lambda c: c.get_bill(XERO_ID)), ["xero_bill", "xero_fault"]),
    "xero.delete_bill": (
        erp("xero", lambda c: c.delete_bill(XERO_ID, idempotency_key="k-1")),
        ["xero_bill", "xero_voided", "xero_fault"],
    ),
    "intacct.get_bill": (
        erp("intacct", lambda c: c.get_bill("50183")), ["intacct_bill", "intacct_error"]
    ),
    "intacct.delete_bill": (
        erp("intacct", lambda c: c.delete_bill("50183", idempotency_key="k")),
        ["intacct_bill", "intacct_error"],
    ),
}
EXIT_CLASSES = (RemoteUnavailable, RemoteRefused, RemoteRejectedCredentials, RemoteNotFound)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_remote_answer_yields_a_result_or_a_remote_error(endpoint, data):
    """Malformed JSON, wrong types, huge bodies, odd statuses: only RemoteError subclasses."""
    call, names = ENDPOINTS[endpoint]
    script = data.draw(st.lists(answers(names), min_size=1, max_size=4), label="answers")
    try:
        call(transport_for(script))
    except RemoteError as exc:
        assert isinstance(exc, EXIT_CLASSES)
        assert exc.message and "\n" not in exc.message
        assert TOKEN not in str(exc)
