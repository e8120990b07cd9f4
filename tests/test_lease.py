"""The lease of a step in flight: what every send tells it, how it renews, and when it is lost.
Narrow tests: the HTTP client over httpx.MockTransport, the lease over a real SQLite file."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable

import httpx
import pytest

from engine.db import Database
from engine.lease import LeaseLost, StepLease, format_time, lease_live, parse_time
from engine.store import WorkflowStore
from integrations.errors import RemoteError
from integrations.guard import guarded
from integrations.http import HttpClient, RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A guard that remembers what it was told."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.events: list[tuple[str, object]] = []

    def before_send(self, *, write: bool, seconds: float) -> None:
        self.events.append(("before", write))
        if self.refuse:
            raise LeaseLost("lost")

    def settled(self, *, changed: bool | None) -> None:
        self.events.append(("settled", changed))


def client(handler: Handler) -> HttpClient:
    policy = RetryPolicy(attempts=1, backoff_initial=0, backoff_max=0, backoff_jitter=0,
                         connect_timeout=1, read_timeout=2, write_timeout=3)
    return HttpClient(system="procore", label="Procore", base_url="http://remote.test",
                      policy=policy, transport=httpx.MockTransport(handler))


def answer(status: int) -> Handler:
    return lambda request: httpx.Response(status, json={})


def fail(exc: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


@pytest.mark.parametrize(("handler", "changed"), [
    (answer(200), True), (answer(500), True), (answer(422), False), (answer(429), False),
    (answer(503), False), (fail(httpx.ConnectError), False), (fail(httpx.ReadTimeout), None),
    (fail(httpx.RemoteProtocolError), None),
])
def test_every_write_is_settled_as_sent_unsent_or_unanswered(
    handler: Handler, changed: bool | None
) -> None:
    """A write tells the guard whether it provably changed nothing, was answered, or left the
    machine unanswered; a read tells it only that it is about to be sent."""
    recorder = Recorder()
    with client(handler) as http, guarded(recorder):
        with contextlib.suppress(RemoteError):
            http.request("DELETE", "/thing")
        with contextlib.suppress(RemoteError):
            http.request("GET", "/thing")
    assert recorder.events[:2] == [("before", True), ("settled", changed)]
    assert recorder.events[2:] == [("before", False)]


def test_a_refusing_guard_stops_the_request_before_it_is_sent() -> None:
    """LeaseLost from the guard propagates and the transport never sees the request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with client(handler) as http, guarded(Recorder(refuse=True)), pytest.raises(LeaseLost):
        http.request("POST", "/thing")
    assert seen == []


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(name="leased")
def fixture_leased(sqlite_url: str) -> tuple[Database, StepLease, Clock]:
    db = Database(sqlite_url)
    clock = Clock()
    store = WorkflowStore()
    until = format_time(clock.now + dt.timedelta(seconds=1))
    with db.write() as conn:
        wid = store.insert(conn, {
            "workflow": "subcontractor-invoice", "version": 1, "state": "Exported",
            "company_id": 1, "project_id": 2, "subject_type": "requisition",
            "subject_id": "3", "remote_ref": {"erp_bill_id": "183"}, "erp": "QuickBooks Online",
            "erp_key": "qbo", "reason": "r", "snapshot": {},
            "created_at": "t", "updated_at": "t",
        })
        instance = store.get(conn, wid)
        assert instance is not None
        instance = store.update(conn, wid, instance.revision, {
            "in_flight_step": "delete-in-erp", "in_flight_lease_until": until})
    assert instance is not None
    return db, StepLease(db, store, instance, seconds=1, now=clock, sent_by_owner=True), clock


def test_a_send_renews_a_lease_that_would_not_outlast_it(
    leased: tuple[Database, StepLease, Clock]
) -> None:
    """Before a 6-second exchange the 1-second lease is extended to cover it plus the margin,
    and stored; a lease that already covers the exchange is left as it is."""
    db, lease, clock = leased
    lease.before_send(write=True, seconds=6)
    until = parse_time(lease.instance.in_flight_lease_until or "")
    assert until == clock.now + dt.timedelta(seconds=8)
    revision = lease.instance.revision
    lease.before_send(write=False, seconds=6)
    assert lease.instance.revision == revision
    assert lease_live(lease.instance, clock.now) and not lease_live(
        lease.instance, clock.now + dt.timedelta(seconds=9))
    db.dispose()


def test_a_lease_whose_row_moved_on_is_lost_and_sends_nothing(
    leased: tuple[Database, StepLease, Clock]
) -> None:
    """Once another operator settled the step (the row's revision moved on), the next send
    that needs a renewal raises LeaseLost, and the lease refuses every later send."""
    db, lease, clock = leased
    with db.write() as conn:
        assert WorkflowStore().update(conn, lease.instance.id, lease.instance.revision,
                                      {"in_flight_step": None}) is not None
    clock.now += dt.timedelta(seconds=5)
    with pytest.raises(LeaseLost):
        lease.before_send(write=True, seconds=1)
    with pytest.raises(LeaseLost):
        lease.before_send(write=False, seconds=0.0)
    db.dispose()


def test_what_was_sent_decides_whether_the_owner_may_release(
    leased: tuple[Database, StepLease, Clock]
) -> None:
    """Nothing sent, or every write refused: sent_nothing; a write announced but never settled
    (interrupted), answered, or unanswered: not."""
    db, lease, _ = leased
    assert lease.sent_nothing
    lease.before_send(write=True, seconds=1)
    assert not lease.sent_nothing  # on its way
    lease.settled(changed=False)
    assert lease.sent_nothing
    lease.before_send(write=True, seconds=1)
    lease.settled(changed=None)
    assert not lease.sent_nothing and lease.unanswered
    db.dispose()


def test_owner_describes_itself() -> None:
    """The owner names login, host and process."""
    from engine.lease import Owner

    owner = Owner("ana@summit.example", "builder-7", 4242)
    assert owner.describe() == "ana@summit.example on builder-7 (pid 4242)"
