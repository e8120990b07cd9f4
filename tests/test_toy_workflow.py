"""The extension point, proved by a workflow defined only here: a punch-list item that is approved
and then closed in a (fake) remote tracker. It is registered through the public API and runs
through the real engine (a real SQLite file or PostgreSQL, the real audit chain) with in-process
fakes of the remote systems; nothing in engine/ knows it.

Also the core's own rules, tested directly: definition validation, the machine deciding every
step (no cached bypass), versions kept per instance, requirements as data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from engine.db import Database
from engine.errors import Refused, UsageError
from engine.machine import NotPermitted, OutOfOrder, WorkflowMachine
from engine.remotes import Remotes
from engine.reviews import AuditService
from engine.service import CorrectionService
from integrations.errors import RemoteNotFound
from integrations.models import Call, User
from workflows import registry
from workflows.definition import (
    Opened,
    Opening,
    OpeningContext,
    Requirement,
    Step,
    StepContext,
    StepResult,
    Subject,
    WorkflowDefinition,
)
from workflows.errors import DefinitionError, Rejected

# the fake remote systems ------------------------------------------------------------------------


@dataclass
class Tracker:
    """A remote punch list: item id -> status; ``closes`` counts close requests received."""

    items: dict[int, str] = field(default_factory=lambda: {1: "open", 2: "open", 3: "done"})
    closes: int = 0


class FakeProcore:
    """Procore as the engine needs it (identity, levels, privileges) plus the tracker."""

    company_id = 4021

    def __init__(self, tracker: Tracker, level: str = "Admin") -> None:
        self.tracker = tracker
        self.level = level
        self._calls: list[Call] = []

    def _log(self, method: str, path: str) -> None:
        self._calls.append(Call("procore", method, path, 200, f"toy-{len(self._calls)}"))

    def drain_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def me(self) -> User:
        self._log("GET", "/rest/v1.0/me")
        return User(7001, "ana@summit.example", "Ana Alvarez")

    def can_push_to_accounting(self) -> bool:
        return True

    def tool_levels(self, *, project_id: int | None = None) -> dict[str, str]:
        self._log("GET", "/rest/v1.0/settings/permissions")
        return {"change_orders": self.level, "erp_integrations": "Admin"}

    def item(self, item_id: int) -> str:
        self._log("GET", f"/punch_items/{item_id}")
        if item_id not in self.tracker.items:
            raise RemoteNotFound("procore", 404, "no such item")
        return self.tracker.items[item_id]

    def close_item(self, item_id: int) -> None:
        self._log("PATCH", f"/punch_items/{item_id}")
        self.tracker.closes += 1
        self.tracker.items[item_id] = "done"


class FakeERP:
    key = "toy"
    product_name = "Toy ERP"
    company = "toy-company"

    def drain_calls(self) -> list[Call]:
        return []


# the toy workflow ------------------------------------------------------------------------------


class PunchState(enum.StrEnum):
    OPEN = "Open"
    APPROVED = "Approved"
    CLOSED = "Closed"


def _procore(ctx: StepContext | OpeningContext) -> FakeProcore:
    assert isinstance(ctx.procore, FakeProcore)
    return ctx.procore


def open_item(ctx: OpeningContext) -> Opened:
    try:
        status = _procore(ctx).item(int(ctx.subject_id))
    except RemoteNotFound:
        raise Rejected(f"Refused: punch item {ctx.subject_id} does not exist.") from None
    if status != "open":
        raise Rejected(f"Refused: punch item {ctx.subject_id} is already {status}.")
    return Opened({"status": status}, {"tracker": "punch"}, f"punch item {ctx.subject_id}")


def probe_close(ctx: StepContext) -> StepResult | None:
    if _procore(ctx).item(int(ctx.subject_id)) == "done":
        return StepResult("Closed.", changes={"closed": True})
    return None


def close(ctx: StepContext) -> StepResult:
    if (done := probe_close(ctx)) is not None:
        return done
    _procore(ctx).close_item(int(ctx.subject_id))
    return StepResult(f"Closed punch item {ctx.subject_id}.", changes={"closed": True})


def item_fields(
    subject_id: str, remote_ref: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, Any]:
    return {"punch_item": int(subject_id), "closed": bool(results.get("closed"))}


CHANGE_ORDERS_ADMIN = Requirement.of(change_orders={"Admin"})
OPEN, A, C = PunchState.OPEN, PunchState.APPROVED, PunchState.CLOSED
TOY = WorkflowDefinition(
    name="toy-punch-item",
    version=1,
    states=PunchState,
    initial=OPEN,
    finals=frozenset({C}),
    steps=(
        Step("approve", (OPEN,), A, Requirement.of(change_orders={"Standard", "Admin"})),
        Step("close", (A,), C, CHANGE_ORDERS_ADMIN, action=close, probe=probe_close),
    ),
    opening=Opening(Requirement.of(change_orders={"Standard", "Admin"})),
    subject=Subject(type="punch_item", noun="punch item", open=open_item, fields=item_fields),
)
# version 2 adds a final Rejected state reached by `reject`; instances of version 1 keep theirs
TOY_V2 = replace(
    TOY,
    version=2,
    states=enum.StrEnum("PunchStateV2", {"OPEN": "Open", "APPROVED": "Approved",  # type: ignore[misc]
                                         "CLOSED": "Closed", "REJECTED": "Rejected"}),
    finals=frozenset({C, "Rejected"}),
    steps=(*TOY.steps, Step("reject", (OPEN,), "Rejected", CHANGE_ORDERS_ADMIN)),
)


@pytest.fixture(name="registered", scope="module")
def fixture_registered() -> WorkflowDefinition:
    return registry.register(TOY)


@pytest.fixture(name="tracker")
def fixture_tracker() -> Tracker:
    return Tracker()


@pytest.fixture(name="service")
def fixture_service(
    db_url: str, tracker: Tracker, registered: WorkflowDefinition
) -> Iterator[CorrectionService]:
    service = CorrectionService(
        Database(db_url),
        lambda: Remotes(FakeProcore(tracker), FakeERP()),  # type: ignore[arg-type]
        workflow=TOY.name,
    )
    yield service
    service.close()


def verified(db_url: str) -> int:
    audit = AuditService(Database(db_url))
    try:
        return int(audit.verify()["entries"])
    finally:
        audit.close()


# the toy runs through the engine ---------------------------------------------------------------


def test_a_workflow_from_outside_runs_through_the_engine(
    service: CorrectionService, tracker: Tracker, db_url: str
) -> None:
    started = service.start("1", 101, "finished on site")
    assert (started.kind, started.state_before, started.state_after, started.next) == (
        "succeeded", None, "Open", ("approve",))
    shown = started.document()
    assert (shown["subject_type"], shown["subject_id"], shown["punch_item"]) == (
        "punch_item", "1", 1)
    wid = started.id
    assert wid is not None
    approved = service.advance(wid, "approve")
    assert (approved.state_before, approved.state_after) == ("Open", "Approved")
    assert approved.evidence["required"] == {"change_orders": ["Standard", "Admin"]}
    done = service.advance(wid, "close")
    assert (done.state, done.instance["closed"], done.next) == ("Closed", True, ())
    assert done.document()["outcome"] == "succeeded"
    assert tracker.items[1] == "done" and tracker.closes == 1
    history = service.show(wid)["history"]
    assert [(e["action"], e["outcome"]) for e in history] == [
        ("start", "succeeded"), ("approve", "succeeded"),
        ("close", "in_flight"), ("close", "succeeded")]
    assert {(e["format"], e["subject_type"], e["subject_id"]) for e in history} == {
        (2, "punch_item", "1")}
    assert {(e["invoice_id"], e["erp_bill_id"]) for e in history} == {(None, None)}
    assert history[1]["evidence"]["required"] == {"change_orders": ["Standard", "Admin"]}
    assert verified(db_url) == 4


def test_the_toy_refusals_are_audited(
    service: CorrectionService, tracker: Tracker, db_url: str
) -> None:
    with pytest.raises(Refused, match="already done"):
        service.start("3", 101, "x")
    wid = service.start("2", 101, "x").id
    with pytest.raises(Refused, match="close is not allowed in state Open") as refused:
        service.advance(wid, "close")
    assert (refused.value.workflow_id, refused.value.state, refused.value.step) == (
        wid, "Open", "close")
    with pytest.raises(Refused, match="already has an open correction"):
        service.start("2", 101, "again")
    steps = r"unknown step 'unlink' \(steps of toy-punch-item: approve, close\)"
    with pytest.raises(UsageError, match=steps):
        service.advance(wid, "unlink")
    assert tracker.closes == 0
    outcomes = [(e["action"], e["outcome"]) for e in service.show(wid)["history"]]
    assert outcomes == [("start", "succeeded"), ("close", "refused")]
    assert verified(db_url) == 4  # the refused starts belong to no instance, but are entries


def test_permissions_are_data_the_toy_declares(db_url: str, tracker: Tracker,
                                               registered: WorkflowDefinition) -> None:
    service = CorrectionService(
        Database(db_url),
        lambda: Remotes(FakeProcore(tracker, level="Read Only"), FakeERP()),  # type: ignore[arg-type]
        workflow=TOY.name,
    )
    try:
        gap = r"needs Change Orders Standard or Admin \(has Read Only\)"
        with pytest.raises(Refused, match=gap):
            service.start("1", 101, "x")
    finally:
        service.close()


def test_an_instance_runs_under_the_version_it_started_with(
    service: CorrectionService, db_url: str
) -> None:
    old = service.start("1", 101, "v1").id
    registry.register(TOY_V2)
    try:
        new = service.start("2", 101, "v2")
        assert new.instance["version"] == 2 and "reject" in new.next
        assert service.show(old)["version"] == 1
        with pytest.raises(UsageError, match="unknown step 'reject'"):
            service.advance(old or 0, "reject")  # version 1 has no such step
        assert new.id is not None and old is not None
        assert service.advance(new.id, "reject").state == "Rejected"
        assert service.advance(old, "approve").state == "Approved"
    finally:
        registry._REGISTRY.pop((TOY_V2.name, TOY_V2.version))


# the core, directly ------------------------------------------------------------------------------


def test_the_machine_decides_every_time() -> None:
    """No decision is cached past its guard: the same (state, step) is refused once the levels
    no longer allow it, and order is checked by the machine each time."""
    machine = WorkflowMachine(TOY)
    need = CHANGE_ORDERS_ADMIN
    assert machine.decide("Approved", "close", need, {"change_orders": "Admin"}) == "Closed"
    with pytest.raises(NotPermitted) as refused:
        machine.decide("Approved", "close", need, {"change_orders": "Standard"})
    assert refused.value.gaps == ["Change Orders Admin (has Standard)"]
    assert machine.decide("Approved", "close", need, {"change_orders": "Admin"}) == "Closed"
    with pytest.raises(OutOfOrder):
        machine.decide("Open", "close", need, {"change_orders": "Admin"})
    with pytest.raises(OutOfOrder):
        machine.decide("Nowhere", "close", need, {"change_orders": "Admin"})
    assert machine.next_steps("Open") == ["approve"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"initial": "Nowhere"}, "initial state 'Nowhere' is not a state"),
        ({"finals": frozenset()}, "final states must be a non-empty set"),
        ({"steps": TOY.steps[:1]}, "unreachable state(s) Closed"),
        ({"steps": (*TOY.steps, Step("approve", (A,), C, Requirement()))}, "reserved or repeated"),
        ({"steps": (*TOY.steps, Step("start", (A,), C, Requirement()))}, "reserved or repeated"),
        ({"steps": (*TOY.steps, Step("reopen", (C,), OPEN, Requirement()))},
         "leaves a final state"),
        ({"steps": (*TOY.steps, Step("x", (OPEN,), "Elsewhere", Requirement()))},
         "unknown 'Elsewhere'"),
        ({"steps": (*TOY.steps, Step("x", (OPEN,), A, Requirement(), probe=probe_close))},
         "durable step x has no action"),
        ({"steps": (*TOY.steps, Step("x", (OPEN,), A, Requirement(), needs_data=True))},
         "no data model"),
        ({"subject": replace(TOY.subject, type="punch item")},
         "subject type must be an identifier"),
    ],
)
def test_malformed_definitions_are_refused_when_registered(
    change: dict[str, Any], message: str
) -> None:
    bad = replace(TOY, name="toy-bad", **change)
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.register(bad)
    with pytest.raises(KeyError):
        registry.get("toy-bad")


def test_a_name_and_version_register_once(registered: WorkflowDefinition) -> None:
    assert registry.register(TOY) is TOY  # the same object again: a module imported twice
    with pytest.raises(DefinitionError, match="already registered"):
        registry.register(replace(TOY, description="another"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"prime_contract": ["Admin"]}, "unknown key(s) prime_contract"),
        ({"commitments": "Admin"}, "commitments must be a list of"),
        ({"commitments": ["Owner"]}, "commitments must be a list of"),
        ({"can_push_to_accounting": "yes"}, "can_push_to_accounting must be true or false"),
    ],
)
def test_requirements_parse_only_known_tools_levels_and_privileges(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Requirement.parse(raw)


def test_requirements_read_and_loosen_in_procore_words() -> None:
    default = Requirement.of(commitments={"Admin"}, erp_integrations={"Standard", "Admin"},
                             privileges={"can_push_to_accounting"})
    looser = Requirement.parse({"commitments": ["Standard", "Admin"], "prime_contracts": ["Admin"]})
    assert looser.loosens(default) == [
        "Commitments Standard", "ERP Integrations not checked", "no Can Push to Accounting"]
    assert default.loosens(default) == []
    assert default.loosens(looser) == ["Prime Contracts not checked"]
    assert default.missing({"commitments": "Admin", "erp_integrations": "Read Only",
                            "can_push_to_accounting": False}) == [
        "ERP Integrations Standard or Admin (has Read Only)", "Can Push to Accounting"]
    assert looser.as_dict(("erp_integrations", "can_push_to_accounting")) == {
        "commitments": ["Standard", "Admin"], "prime_contracts": ["Admin"],
        "erp_integrations": [], "can_push_to_accounting": False}
