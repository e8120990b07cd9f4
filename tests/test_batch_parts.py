"""The parts batches stand on, as narrow unit tests: the HTTP client's calls kept per thread, a
rate budget shared by several processes, identity and permissions read once (again when they
expire), and the way from a state to a goal."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from engine.drive import default_goal_state, path
from engine.permissions import PermissionReader
from integrations.http import HttpClient
from integrations.models import User
from tests.test_http import (  # noqa: F401  (the fixtures, by their names)
    FakeClock,
    budget_server,
    fixture_clock,
    fixture_make_client,
    fixture_policy,
)
from workflows import registry
from workflows.definition import Requirement

CLIENT = Callable[..., HttpClient]


def test_each_thread_drains_only_the_calls_it_made(make_client: CLIENT) -> None:
    """Threads sharing one client (a batch) each get back their own calls, so each attempt's
    audit entry records what it sent and nothing of its neighbours'."""
    client = make_client(lambda request: httpx.Response(200, json={}))
    seen: dict[int, list[str]] = {}

    def work(worker: int) -> None:
        for n in range(5):
            client.request("GET", f"/things/{worker}-{n}")
        seen[worker] = [call.path for call in client.drain_calls()]

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {w: [f"/things/{w}-{n}" for n in range(5)] for w in range(4)}
    assert client.drain_calls() == []  # this thread made none


def test_processes_sharing_a_budget_take_their_share(make_client: CLIENT,
                                                     clock: FakeClock) -> None:
    """Three clients (three workers of one batch) against one budget, each told it shares it
    with three: each paces on a third of what is left, and no call gets a 429."""
    handler, state = budget_server(clock, limit=12, window=10)
    clients = [make_client(handler, pace_below=4, reset_margin=0.1) for _ in range(3)]
    for client in clients:
        client.share_rate_budget(lambda: 3)

    def work(client: HttpClient, worker: int) -> None:
        for n in range(12):
            client.request("GET", f"/things/{worker}-{n}")

    threads = [threading.Thread(target=work, args=(client, w))
               for w, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (state["served"], state["limited"]) == (36, 0)


class CountingProcore:
    """Just what the permission reader calls, counting the reads."""

    company_id = 4021

    def __init__(self) -> None:
        self.reads = 0

    def me(self) -> User:
        self.reads += 1
        return User(id=7001, login="ana@summit.example", name="Ana")

    def can_push_to_accounting(self) -> bool:
        self.reads += 1
        return True

    def tool_levels(self, *, project_id: int | None = None) -> dict[str, str]:
        self.reads += 1
        return {"commitments": "Admin"} if project_id else {"erp_integrations": "Admin"}


def test_identity_and_permissions_are_read_once_until_they_expire() -> None:
    """Read once however many corrections ask (and threads at once), again after max_age."""
    procore = CountingProcore()
    now = [0.0]
    reader = PermissionReader(procore, max_age=600, clock=lambda: now[0])  # type: ignore[arg-type]
    needs = Requirement.of(commitments={"Admin"}, erp_integrations={"Admin"},
                           privileges={"can_push_to_accounting"})

    def work() -> None:
        for _ in range(20):
            reader.actor()
            reader.granted(needs, 102)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert procore.reads == 4  # the user, the privilege, the project's and the company's tools
    now[0] = 599.0
    reader.granted(needs, 102)
    assert procore.reads == 4
    now[0] = 600.0
    assert reader.actor().login == "ana@summit.example"
    reader.granted(needs, 102)
    assert procore.reads == 8


def test_the_way_to_a_goal_takes_no_way_out() -> None:
    """From each state, the steps to Reentered; never through abandon or cancel; the default
    goal is the final state furthest from the start."""
    definition = registry.get("subcontractor-invoice")
    assert default_goal_state(definition) == "Reentered"
    assert path(definition, "Exported", "Reentered") == [
        "delete-in-erp", "unlink", "delete-in-procore", "reenter"]
    assert path(definition, "Unlinked", "Reentered") == ["delete-in-procore", "reenter"]
    assert path(definition, "Reentered", "Reentered") == []
    assert path(definition, "Cancelled", "Reentered") is None
    assert path(definition, "Exported", "Abandoned") is None  # only a person gives up
