"""The real clients against the sandbox over loopback HTTP: every endpoint, all three ERPs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from integrations.erp import DEFAULT_API_URLS, PRODUCTS, make_erp
from integrations.errors import (
    RemoteForbidden,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.factory import close, connect, connected
from integrations.http import RetryPolicy
from integrations.procore import ProcoreClient, exchange_token
from sandbox import seed
from sandbox.faults import FaultSettings
from sandbox.limits import RateLimiter
from sandbox.server import SandboxServer
from sandbox.transport import in_process_transport
from sandbox.wire import Request
from sandbox.world import SandboxWorld
from tests.conftest import LOOPBACK_TLS

ERPS = ["qbo", "xero", "intacct"]


def no_sleep(seconds: float) -> None:
    """Server-directed waits are skipped so that the tests stay fast."""


POLICY = RetryPolicy(attempts=3, backoff_initial=0, backoff_max=0, backoff_jitter=0,
                     sleep=no_sleep)


@pytest.fixture(name="procore_server", scope="module")
def fixture_procore_server() -> Iterator[SandboxServer]:
    with SandboxServer("qbo") as server:
        yield server


@pytest.fixture(name="erp_server", scope="module", params=ERPS)
def fixture_erp_server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    with SandboxServer(request.param) as server:
        yield server


@pytest.fixture(name="sandbox")
def fixture_sandbox(procore_server: SandboxServer) -> SandboxServer:
    procore_server.world.reset()
    procore_server.world.configure_faults(FaultSettings())
    return procore_server


@pytest.fixture(name="erp_sandbox")
def fixture_erp_sandbox(erp_server: SandboxServer) -> SandboxServer:
    erp_server.world.reset()
    erp_server.world.configure_faults(FaultSettings())
    return erp_server


@pytest.fixture(name="procore_as")
def fixture_procore_as(sandbox: SandboxServer) -> Iterator[Callable[..., ProcoreClient]]:
    clients: list[ProcoreClient] = []

    def make(user: str = "ana", policy: RetryPolicy = POLICY) -> ProcoreClient:
        client = ProcoreClient(sandbox.url, f"sandbox-{user}", seed.COMPANY_ID, policy=policy)
        clients.append(client)
        return client

    yield make
    close(*clients)


@pytest.fixture(name="erp")
def fixture_erp(erp_sandbox: SandboxServer) -> Iterator[object]:
    env = erp_sandbox.env()
    connector = make_erp(env["RELINK_ERP"], base_url=env["RELINK_ERP_URL"],
                         token=env["RELINK_ERP_TOKEN"], company=env["RELINK_ERP_COMPANY"],
                         policy=POLICY)
    yield connector
    close(connector)


def bill_id(server: SandboxServer, qbo_id: int) -> str:
    return seed.erp_bill_id(server.world.erp, qbo_id)


def unlinking(*invoices: int) -> list[dict[str, object]]:
    """External Data Sync updates clearing the ERP link of each invoice."""
    return [{"item_type": "requisition", "item_id": invoice, "origin_id": None,
             "origin_data": None} for invoice in invoices]


def click_unlink(server: SandboxServer, invoice: int) -> dict[str, object]:
    """The operator clicks Unlink in Procore's ERP Integrations tool; the sandbox answers as
    Procore's own connector closes the ERP Request Detail (there is no public API for it)."""
    response = httpx.post(f"{server.url}/_sandbox/ui/unlink",
                          json={"item_type": "requisition", "item_id": invoice}, timeout=10,
                          verify=LOOPBACK_TLS)
    response.raise_for_status()
    return dict(response.json())


# -- Procore ---------------------------------------------------------------------------------


def test_me_is_the_user_behind_the_token(procore_as):
    """``me`` reads the seeded user of the token, named (company_id asked), a service account's
    too (its token needs the company header)."""
    user = procore_as("ana").me()
    assert (user.id, user.login, user.name) == (7001, "ana@summit.example", "Ana Alvarez")
    service = procore_as("service").me()
    assert (service.id, service.name) == (7009, "ERP Connector")


def test_permissions_are_read_from_procore(procore_as):
    """Tool levels (project and company) and Can Push to Accounting follow the seed."""
    ana, cara = procore_as("ana"), procore_as("cara")
    assert ana.can_push_to_accounting() is True
    assert procore_as("ben").can_push_to_accounting() is False
    assert ana.tool_levels(project_id=101)["commitments"] == "Admin"
    assert ana.tool_levels()["erp_integrations"] == "Admin"
    assert cara.tool_levels(project_id=101)["commitments"] == "Standard"
    assert cara.tool_levels()["erp_integrations"] == "Read Only"


def test_get_requisition_reads_the_invoice(procore_as):
    """An invoice is read with its ERP link; a missing one raises RemoteNotFound."""
    procore = procore_as()
    synced = procore.get_requisition(101, 9001)
    assert (synced.id, synced.project_id, synced.commitment_id) == (9001, 101, 5501)
    assert synced.origin_id == "183"
    assert synced.fields["invoice_number"] == "INV-1001"
    assert procore.get_requisition(101, 9004).origin_id is None
    with pytest.raises(RemoteNotFound):
        procore.get_requisition(101, 123456)


def test_find_requisitions_reads_every_page_and_filters(procore_as):
    """All 202 invoices of project 102 come back across pages; filters narrow them down."""
    procore = procore_as()
    everything = procore.find_requisitions(102)
    assert len(everything) == 202
    assert len({r.id for r in everything}) == 202
    pages = [c for c in procore.drain_calls() if c.path.startswith("/rest/v1.1/requisitions")]
    assert len(pages) == 3
    found = procore.find_requisitions(102, commitment_id=5707, invoice_number="INV-3007")
    assert [r.id for r in found] == [9207]
    # 9400 shares its invoice number with 9205, on another commitment
    assert [r.id for r in procore.find_requisitions(102, invoice_number="INV-3005")] == [
        9205, 9400
    ]
    assert [r.id for r in procore.find_requisitions(101, commitment_id=5600)] == [
        9601, 9602, 9603, 9604
    ]
    assert procore.find_requisitions(101, commitment_id=5707) == []


def test_sync_errors_carry_procores_words_by_field(procore_as):
    """External Data Sync answers each refused update with its reasons keyed by field: the error
    names the item and Procore's own words; a valid update clears the link."""
    service = procore_as("service")
    with pytest.raises(RemoteRefused) as caught:
        service.sync_external_data(unlinking(9003, 123456))
    assert caught.value.message == (
        "External Data Sync refused requisition 123456: item_id: Entity with this ID not found"
    )
    # the valid update of the same request was applied (9003's bill is gone from the ERP)
    assert procore_as().get_requisition(101, 9003).origin_id is None
    with pytest.raises(RemoteRefused, match="item_type: must be one of"):
        service.sync_external_data([{"item_type": "invoice", "item_id": 9001, "origin_id": None}])
    assert procore_as().get_requisition(101, 9001).origin_id == "183"


def test_unlink_needs_the_erp_permissions(procore_as):
    """External Data Sync is the ERP connector's: an operator, even one with Admin on ERP
    Integrations, is refused with RemoteForbidden (403) and the link stays."""
    for user in ("rita", "ana"):
        with pytest.raises(RemoteForbidden) as caught:
            procore_as(user).sync_external_data(unlinking(9003))
        assert "ERP Integrations" in caught.value.message
    assert procore_as().get_requisition(101, 9003).origin_id == "185"


def test_delete_requisition_follows_procores_rules(procore_as):
    """A synced, undeletable or not most recent invoice is refused (422); an unlinked one that
    is the latest on its commitment is deleted."""
    procore, service = procore_as(), procore_as("service")
    with pytest.raises(RemoteRefused) as caught:
        procore.delete_requisition(101, 9001)
    assert caught.value.status == 422 and "synced with the ERP" in caught.value.message
    service.sync_external_data(unlinking(9005, 9601, 9604))
    with pytest.raises(RemoteRefused) as caught:
        procore.delete_requisition(101, 9005)
    assert caught.value.status == 422 and "payments" in caught.value.message
    with pytest.raises(RemoteRefused) as caught:
        procore.delete_requisition(101, 9601)
    assert caught.value.status == 422 and caught.value.message == (
        "Only the most recent invoice on a commitment can be deleted."
        " Later invoices on this commitment: 2, 3, 4."
    )
    procore.delete_requisition(101, 9604)
    service.sync_external_data(unlinking(9003))
    procore.delete_requisition(101, 9003)
    for gone in (9003, 9604):
        with pytest.raises(RemoteNotFound):
            procore.get_requisition(101, gone)
    assert procore.get_requisition(101, 9601).id == 9601


def test_create_requisition_returns_the_new_invoice(procore_as):
    """Re-entering an invoice answers with a new id (beyond 32 bits) on the same commitment,
    its typed items billing the same line."""
    procore = procore_as()
    procore_as("service").sync_external_data(unlinking(9003))
    procore.delete_requisition(101, 9003)
    item = {"item_type": "contract_item", "line_item_id": 55031,
            "work_completed_this_period": "15250.00"}
    created = procore.create_requisition(101, 5503, {"invoice_number": "INV-1003-R",
                                                     "period_id": 301, "items": [item]})
    assert created.id > 2**32
    assert (created.project_id, created.commitment_id, created.origin_id) == (101, 5503, None)
    assert created.fields["invoice_number"] == "INV-1003-R"
    read = procore.get_requisition(101, created.id)
    assert read.id == created.id
    assert [(i["item_type"], i["line_item_id"], i["work_completed_this_period"])
            for i in read.fields["items"]] == [("contract_item", 55031, "15250.00")]


def test_a_bad_token_is_rejected_without_showing_it(sandbox):
    """An unknown token raises RemoteRejectedCredentials; the token appears nowhere."""
    token = "not-a-real-token-xyz"
    with ProcoreClient(sandbox.url, token, seed.COMPANY_ID, policy=POLICY) as procore:
        with pytest.raises(RemoteRejectedCredentials) as caught:
            procore.me()
        assert token not in str(caught.value)
        assert all(token not in str(c.as_evidence()) for c in procore.drain_calls())


def test_calls_match_the_sandbox_call_log(procore_as, sandbox):
    """Each recorded Call is one request the sandbox received, with the same status."""
    procore = procore_as()
    procore.me()
    procore.get_requisition(101, 9001)
    with pytest.raises(RemoteForbidden):
        procore.sync_external_data(unlinking(9001))
    ours = [(c.method, c.path, c.status) for c in procore.drain_calls()]
    theirs = [(c["method"], c["path"], c["status"]) for c in sandbox.world.calls()]
    assert ours == theirs
    assert ours[0] == ("GET", "/rest/v1.0/me?company_id=4021", 200)
    assert ours[1] == ("GET", "/rest/v1.1/requisitions/9001?project_id=101&view=extended", 200)
    assert ours[2] == ("PATCH", "/rest/v1.0/companies/4021/external_data/sync", 403)
    assert {c["actor"] for c in sandbox.world.calls()} == {"ana@summit.example"}


def test_exchange_token_with_an_authorization_code(sandbox):
    """The OAuth code grant gives a bearer token for the user; a bad code is rejected."""
    form = {"grant_type": "authorization_code", "client_id": seed.OAUTH_CLIENT_ID,
            "client_secret": seed.OAUTH_CLIENT_SECRET, "code": "sandbox-code-ben",
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}
    token = exchange_token(sandbox.url, form, policy=POLICY)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"]
    with ProcoreClient(sandbox.url, token["access_token"], seed.COMPANY_ID) as procore:
        assert procore.me().login == "ben@summit.example"
    with pytest.raises(RemoteRejectedCredentials) as caught:
        exchange_token(sandbox.url, {**form, "code": "sandbox-code-nobody"}, policy=POLICY)
    assert seed.OAUTH_CLIENT_SECRET not in str(caught.value)


def test_transient_faults_are_retried_then_reported(procore_as, sandbox):
    """With every call failing, a read is tried ``attempts`` times, then RemoteUnavailable."""
    procore = procore_as()
    for kind, error in [("503", RemoteUnavailable), ("500", RemoteUnavailable),
                        ("429", RemoteUnavailable), ("reset", RemoteUnavailable),
                        ("garbage", RemoteProtocolError)]:
        sandbox.world.configure_faults(FaultSettings(rate=1.0, kinds=(kind,)))
        with pytest.raises(error) as caught:
            procore.get_requisition(101, 9001)
        assert (
            "after 3 attempts (GET /rest/v1.1/requisitions/9001?project_id=101&view=extended)"
            in str(caught.value)
        )
        assert len(procore.drain_calls()) == 3


def test_a_timeout_is_reported_after_the_attempts(procore_as, sandbox):
    """A remote that does not answer in time gives 'timed out after N attempts'."""
    sandbox.world.configure_faults(FaultSettings(rate=1.0, kinds=("timeout",),
                                                 timeout_seconds=0.3))
    quick = RetryPolicy(attempts=2, read_timeout=0.1, backoff_initial=0, backoff_max=0,
                        backoff_jitter=0, sleep=no_sleep)
    with pytest.raises(RemoteUnavailable, match="timed out after 2 attempts"):
        procore_as(policy=quick).me()


def test_a_write_survives_faults_only_where_repeating_is_safe(procore_as, sandbox):
    """A 503 before an unlink is retried; a dropped connection on a write is not."""
    procore = procore_as()
    sandbox.world.configure_faults(FaultSettings(rate=0.5, kinds=("503",), seed=1))
    for _ in range(3):
        procore.get_requisition(101, 9001)
    sandbox.world.configure_faults(FaultSettings(rate=1.0, kinds=("reset",)))
    with pytest.raises(RemoteUnavailable, match=r"not retried \(DELETE"):
        procore.delete_requisition(101, 9003)
    assert len(procore.drain_calls()) >= 4


class FakeClock:
    """Unix time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def rate_limited(
    world: SandboxWorld, limiter: RateLimiter, clock: FakeClock, real_latency: float = 0.0
) -> httpx.MockTransport:
    """The in-process sandbox behind the sandbox's own rate limiter (as its HTTP app uses it)."""
    inner = in_process_transport(world)
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.sleep(0.05)  # latency
        time.sleep(real_latency)  # so that threads really overlap
        with lock:
            admitted, headers = limiter.admit("procore")
        if not admitted:
            world.record_call(
                Request(request.method, request.url.path, {}, {}, b"", raw_query=""), 429
            )
            return httpx.Response(429, headers=headers, json={"message": "Rate limit exceeded"})
        response = inner.handle_request(request)
        response.headers.update(headers)
        return response

    return httpx.MockTransport(handler)


def test_pacing_keeps_under_the_sandbox_rate_limit():
    """Against the sandbox's limiter (hourly-style and 10-second windows), no call gets a 429."""
    clock, world = FakeClock(), SandboxWorld("qbo")
    limiter = RateLimiter(10, 60.0, clock=clock.time)  # 10 a minute; 2 per 10-second spike
    policy = RetryPolicy(backoff_initial=0, backoff_max=0, backoff_jitter=0, max_wait=60,
                         clock=clock.time, sleep=clock.sleep)
    started = clock.now
    with ProcoreClient("http://sandbox.test", "sandbox-ana", 4021, policy=policy,
                       transport=rate_limited(world, limiter, clock)) as procore:
        for _ in range(25):
            procore.me()
    assert [call["status"] for call in world.calls()] == [200] * 25
    assert clock.now - started <= 25 / 10 * 60 + 2 * 60  # about the allowed rate


def test_pacing_keeps_concurrent_callers_under_short_windows():
    """Eight threads against 2-second windows (whose reset is rounded up) never get a 429."""
    clock, world = FakeClock(), SandboxWorld("qbo")
    limiter = RateLimiter(6, 2.0, clock=clock.time)
    policy = RetryPolicy(backoff_initial=0, backoff_max=0, backoff_jitter=0,
                         clock=clock.time, sleep=clock.sleep)
    transport = rate_limited(world, limiter, clock, real_latency=0.002)
    with ProcoreClient("http://sandbox.test", "sandbox-ana", 4021, policy=policy,
                       transport=transport) as procore:
        threads = [threading.Thread(target=lambda: [procore.me() for _ in range(6)])
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [call["status"] for call in world.calls()] == [200] * 48


# -- ERPs --------------------------------------------------------------------------------------


def test_erp_products_and_defaults_are_known():
    """Each product key has a name and a public API host; an unknown key is a clear error."""
    assert PRODUCTS == {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}
    assert set(DEFAULT_API_URLS) == set(PRODUCTS)
    with pytest.raises(ValueError, match="unknown ERP product 'sage'"):
        make_erp("sage", base_url="http://x", token="t", company="c")


def test_get_bill_reads_an_open_bill_and_reports_a_deleted_one_gone(erp, erp_sandbox):
    """An open bill is returned; one already deleted in the ERP is None."""
    assert erp.key == erp_sandbox.world.erp
    assert erp.product_name == erp_sandbox.world.product_name
    bill = erp.get_bill(bill_id(erp_sandbox, 183))
    assert bill is not None and bill.id == bill_id(erp_sandbox, 183)
    assert erp.get_bill(bill_id(erp_sandbox, 185)) is None


def test_delete_bill_removes_it_once(erp, erp_sandbox):
    """Deleting (or voiding) a bill makes it gone; deleting it again changes nothing."""
    target = bill_id(erp_sandbox, 183)
    erp.delete_bill(target, idempotency_key="wf-1-delete-in-erp")
    assert erp.get_bill(target) is None
    erp.delete_bill(target, idempotency_key="wf-1-delete-in-erp")
    assert erp.get_bill(target) is None
    deletions = [c for c in erp.drain_calls() if c.method != "GET" and c.status in (200, 204)]
    assert len(deletions) == 1


def test_delete_bill_of_a_paid_bill_is_refused_in_the_erps_words(erp, erp_sandbox):
    """A paid bill cannot be deleted: RemoteRefused with the ERP's reason; the bill stays."""
    target = bill_id(erp_sandbox, 184)
    with pytest.raises(RemoteRefused) as caught:
        erp.delete_bill(target, idempotency_key="wf-2-delete-in-erp")
    assert caught.value.system == erp_sandbox.world.erp
    assert "paid" in caught.value.message.lower() or "payment" in caught.value.message.lower()
    assert erp.get_bill(target) is not None


def test_unlink_names_the_erp_product(erp_sandbox):
    """Procore's connector refuses the Unlink click in red naming the configured ERP product;
    deleting the bill first fixes it."""
    env = erp_sandbox.env()
    procore, erp = connect(
        procore_url=env["RELINK_PROCORE_URL"], token="sandbox-ana", company_id=4021,
        erp_product=env["RELINK_ERP"], erp_url=env["RELINK_ERP_URL"],
        erp_token=env["RELINK_ERP_TOKEN"], erp_company=env["RELINK_ERP_COMPANY"], policy=POLICY,
    )
    try:
        assert erp is not None
        assert click_unlink(erp_sandbox, 9001) == {"status": "failed", "messages": [
            f"The requisition is still in {erp.product_name}. Please delete it before retrying."
        ]}
        origin = procore.get_requisition(101, 9001).origin_id
        assert origin == bill_id(erp_sandbox, 183)
        erp.delete_bill(origin, idempotency_key="wf-3")
        assert click_unlink(erp_sandbox, 9001) == {"status": "success", "messages": []}
        assert procore.get_requisition(101, 9001).origin_id is None
    finally:
        close(procore, erp)


def test_erp_rejects_a_bad_token(erp_sandbox):
    """A wrong ERP token raises RemoteRejectedCredentials without showing the token."""
    env = erp_sandbox.env()
    connector = make_erp(env["RELINK_ERP"], base_url=env["RELINK_ERP_URL"], token="wrong-erp-tok",
                         company=env["RELINK_ERP_COMPANY"], policy=POLICY)
    try:
        with pytest.raises(RemoteRejectedCredentials) as caught:
            connector.get_bill(bill_id(erp_sandbox, 183))
        assert "wrong-erp-tok" not in str(caught.value)
    finally:
        close(connector)


def test_erp_url_without_the_erp_prefix_never_reads_as_gone(erp_sandbox):
    """A misconfigured ERP URL (Procore's root) raises instead of reporting the bill gone."""
    env = erp_sandbox.env()
    connector = make_erp(env["RELINK_ERP"], base_url=env["RELINK_PROCORE_URL"],
                         token=env["RELINK_ERP_TOKEN"], company=env["RELINK_ERP_COMPANY"],
                         policy=POLICY)
    try:
        with pytest.raises((RemoteNotFound, RemoteRefused, RemoteRejectedCredentials)):
            connector.get_bill(bill_id(erp_sandbox, 183))
    finally:
        close(connector)


def test_erp_reads_are_retried_through_faults(erp, erp_sandbox):
    """ERP reads go through 503s and garbage; a write marked idempotent is retried too."""
    erp_sandbox.world.configure_faults(FaultSettings(rate=0.4, kinds=("503", "garbage", "500"),
                                                     seed=3))
    for _ in range(4):
        assert erp.get_bill(bill_id(erp_sandbox, 183)) is not None
    erp_sandbox.world.configure_faults(FaultSettings(rate=1.0, kinds=("garbage",)))
    with pytest.raises(RemoteProtocolError, match="not JSON after 3 attempts"):
        erp.get_bill(bill_id(erp_sandbox, 183))


# What deleting each seeded bill does, per product (sandbox/bill_states.py): "deleted" (or
# voided), "refused" in the ERP's words, or "gone" already
BILL_OUTCOMES = {
    "qbo": {183: "deleted", 184: "refused", 185: "gone", 2001: "deleted", 2002: "deleted",
            2003: "deleted", 2004: "deleted", 2005: "deleted", 2006: "refused", 2007: "gone"},
    "xero": {183: "deleted", 184: "refused", 185: "gone", 2001: "deleted", 2002: "deleted",
             2003: "deleted", 2004: "deleted", 2005: "deleted", 2006: "refused", 2007: "gone"},
    "intacct": {183: "deleted", 184: "refused", 185: "gone", 2001: "deleted", 2002: "deleted",
                2003: "deleted", 2004: "deleted", 2005: "refused", 2006: "refused",
                2007: "gone"},
}
REFUSALS = {"qbo": "payments linked", "xero": "payment or credit note allocated",
            "intacct": "Cancel the payment request|paid bill cannot be deleted"}


def test_each_seeded_bill_state_has_its_outcome(erp, erp_sandbox):
    """Every bill state that changes the outcome does so in each product: deleted (voided),
    refused in the ERP's own words with the bill left as it was, or already gone."""
    outcomes = {}
    for qbo_id in BILL_OUTCOMES[erp.key]:
        target = bill_id(erp_sandbox, qbo_id)
        before = erp.get_bill(target)
        try:
            erp.delete_bill(target, idempotency_key=f"wf-{qbo_id}-delete-in-erp")
        except RemoteRefused as exc:
            assert re.search(REFUSALS[erp.key], exc.message), exc.message
            after = erp.get_bill(target)
            assert after is not None and before is not None and after.status == before.status
            outcomes[qbo_id] = "refused"
            continue
        assert erp.get_bill(target) is None
        outcomes[qbo_id] = "gone" if before is None else "deleted"
    assert outcomes == BILL_OUTCOMES[erp.key]


def test_erp_calls_keep_the_products_request_id(erp, erp_sandbox):
    """Each ERP call keeps the product's own request id (intuit_tid, Xero-Correlation-Id) as
    evidence, or the sandbox's X-Request-Id where the product names none (Intacct)."""
    erp.get_bill(bill_id(erp_sandbox, 183))
    erp.delete_bill(bill_id(erp_sandbox, 183), idempotency_key="wf-1-delete-in-erp")
    calls = erp.drain_calls()
    assert calls
    pattern = {"qbo": r"1-[0-9a-f]{8}-\d{24}", "xero": r"00000000-0000-4000-e000-\d{12}",
               "intacct": r"sandbox-\d{8}"}[erp.key]
    for call in calls:
        assert call.request_id is not None and re.fullmatch(pattern, call.request_id), call
        assert call.as_evidence()["request_id"] == call.request_id
    numbers = [int(call.request_id.rsplit("-", 1)[1]) for call in calls]
    logged = [c for c in erp_sandbox.world.calls() if c["path"].startswith("/erp/")]
    assert len(numbers) == len(logged) and numbers == sorted(numbers)


def test_qbo_sends_minorversion_75_on_every_call():
    """Every QuickBooks Online request names minorversion 75, as python-quickbooks does."""
    world = SandboxWorld("qbo")
    erp = make_erp("qbo", base_url="http://sandbox.test/erp", token=seed.ERP_TOKEN,
                   company=world.erp_company, policy=POLICY,
                   transport=in_process_transport(world))
    try:
        erp.get_bill("183")
        erp.delete_bill("183", idempotency_key="wf-1-delete-in-erp")
        assert erp.get_bill("183") is None
    finally:
        close(erp)
    paths = [call["path"] for call in world.calls()]
    assert len(paths) == 4
    assert all(httpx.URL(path).params.get("minorversion") == "75" for path in paths), paths


def test_qbo_reads_the_lower_case_faults_of_401_and_403(sandbox):
    """A 401 or 403 from QuickBooks comes as {"fault": {"error": [...]}}: its words reach the
    error raised (RemoteRejectedCredentials, RemoteForbidden)."""
    assert sandbox.world.erp == "qbo"
    url = sandbox.env()["RELINK_ERP_URL"]
    unknown = make_erp("qbo", base_url=url, token="not-a-token", company=seed.QBO_REALM,
                       policy=POLICY)
    elsewhere = make_erp("qbo", base_url=url, token=seed.ERP_TOKEN, company="1", policy=POLICY)
    try:
        with pytest.raises(RemoteRejectedCredentials, match="AuthenticationFailed"):
            unknown.get_bill("183")
        with pytest.raises(RemoteForbidden, match="AuthorizationFailed; errorCode=003100"):
            elsewhere.get_bill("183")
    finally:
        close(unknown, elsewhere)


# -- wiring ------------------------------------------------------------------------------------


def test_connect_without_erp_settings_gives_no_connector():
    """With no ERP product or token configured, only the Procore client is built."""
    procore, erp = connect(procore_url="http://procore.test", token="t", company_id=4021,
                           erp_product=None, erp_url=None, erp_token=None, erp_company=None)
    close(procore, erp)
    assert erp is None and procore.company_id == 4021


def test_connect_rejects_bad_erp_settings():
    """An unknown product or a missing QBO realm is a ValueError with a clear message."""
    settings = {"procore_url": "http://procore.test", "token": "t", "company_id": 4021,
                "erp_url": None, "erp_token": "e"}
    with pytest.raises(ValueError, match="unknown ERP product 'sap'"):
        connect(**settings, erp_product="sap", erp_company="x")
    with pytest.raises(ValueError, match="QuickBooks Online needs the realm id"):
        connect(**settings, erp_product="qbo", erp_company=None)


@pytest.mark.parametrize("product", ERPS)
def test_connected_clients_work_over_the_in_process_transport(product):
    """The same clients run against the sandbox world in-process (as the benchmarks do)."""
    world = SandboxWorld(product)
    with connected(
        procore_url="http://sandbox.test", token="sandbox-ana", company_id=4021,
        erp_product=product, erp_url="http://sandbox.test/erp", erp_token=seed.ERP_TOKEN,
        erp_company=world.erp_company, policy=POLICY, transport=in_process_transport(world),
    ) as (procore, erp), ProcoreClient(
        "http://sandbox.test", "sandbox-service", 4021, policy=POLICY,
        transport=in_process_transport(world),
    ) as service:
        assert erp is not None
        origin = procore.get_requisition(101, 9001).origin_id
        assert origin is not None
        erp.delete_bill(origin, idempotency_key="wf-9")
        assert erp.get_bill(origin) is None
        service.sync_external_data(unlinking(9001))
        procore.delete_requisition(101, 9001)
        calls = procore.drain_calls() + erp.drain_calls() + service.drain_calls()
    assert [c["status"] for c in world.calls()] == [c.status for c in sorted(
        calls, key=lambda c: int(c.request_id.rsplit("-", 1)[1]))]


def losing_first_write_answer(world: SandboxWorld) -> httpx.MockTransport:
    """The in-process sandbox, except that the answer to the first write is lost (timeout)."""
    inner = in_process_transport(world)
    lost = False

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal lost
        response = inner.handle_request(request)
        if request.method != "GET" and not lost:
            lost = True
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("product", ERPS)
def test_erp_delete_whose_answer_is_lost_is_repeated_safely(product):
    """The delete is retried (idempotency key or state checked) and changes the ERP only once."""
    world = SandboxWorld(product)
    target = seed.erp_bill_id(product, 183)
    erp = make_erp(product, base_url="http://sandbox.test/erp", token=seed.ERP_TOKEN,
                   company=world.erp_company, policy=POLICY,
                   transport=losing_first_write_answer(world))
    try:
        erp.delete_bill(target, idempotency_key="wf-7-delete-in-erp")
        assert erp.get_bill(target) is None
    finally:
        close(erp)
    writes = [c for c in world.calls() if c["method"] != "GET"]
    assert len(writes) == 2
    assert writes[0]["status"] in (200, 204)


def test_procore_write_whose_answer_is_lost_is_not_repeated():
    """An unlink whose answer is lost is not sent again: the caller must check the state."""
    world = SandboxWorld("qbo")
    procore = ProcoreClient("http://sandbox.test", "sandbox-service", 4021, policy=POLICY,
                            transport=losing_first_write_answer(world))
    with procore, pytest.raises(RemoteUnavailable, match=r"timed out, not retried \(PATCH"):
        procore.sync_external_data(unlinking(9003))
    assert [c["method"] for c in world.calls()].count("PATCH") == 1
