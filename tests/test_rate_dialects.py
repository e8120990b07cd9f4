"""Rate limits per product, both sides: the sandbox answers Procore and each ERP in its own
dialect, and the client paces itself by that dialect (acceptance 4 of issue 10: a paced Xero run
gets no 429, and a used-up daily limit exits 3 at once with the time to retry)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import cli
from integrations.errors import RemoteUnavailable
from integrations.http import HttpClient, RetryPolicy
from integrations.pacing import Limits
from sandbox.limits import ErpLimits, erp_limits
from sandbox.seed import ERP_TOKEN, erp_bill_id
from sandbox.server import SandboxServer
from tests.conftest import LOOPBACK_TLS, Relink, Sandbox
from tests.test_http import FakeClock as Clock

RETRY_AFTER = re.compile(r"retry after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def procore_get(client: httpx.Client, path: str, token: str = "sandbox-ana") -> httpx.Response:
    return client.get(path, headers={"Authorization": f"Bearer {token}",
                                     "Procore-Company-Id": "4021"})


def xero_get(client: httpx.Client, qbo_id: int = 1200) -> httpx.Response:
    return client.get(
        f"/erp/api.xro/2.0/Invoices/{erp_bill_id('xero', qbo_id)}",
        headers={"Authorization": f"Bearer {ERP_TOKEN}",
                 "xero-tenant-id": "a3f6c1de-0000-4000-8000-000000004021"},
    )


def erp_get(client: httpx.Client, erp: str, qbo_id: int = 1200) -> httpx.Response:
    bill = erp_bill_id(erp, qbo_id)
    path = {"qbo": f"/erp/v3/company/9130357/bill/{bill}",
            "intacct": f"/erp/ia/api/v1/objects/accounts-payable/bill/{bill}"}[erp]
    return client.get(path, headers={"Authorization": f"Bearer {ERP_TOKEN}"})


PROCORE_HEADERS = {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"}


def procore_rate_headers(response: httpx.Response) -> set[str]:
    return {name.lower() for name in response.headers} & PROCORE_HEADERS


# -- the sandbox: Procore ------------------------------------------------------------------------


@pytest.mark.parametrize("erp", ["qbo"])
def test_every_procore_answer_carries_rate_headers_with_a_generous_default(
    sandbox: Sandbox,
) -> None:
    """Without --rate-limit, Procore's answers (errors too) carry X-Rate-Limit-* with 1000 times
    Procore's documented 3,600 an hour (10,000 in the spike window): never close to throttling."""
    with httpx.Client(verify=LOOPBACK_TLS, base_url=sandbox.url, timeout=10) as client:
        answers = [procore_get(client, "/rest/v1.0/me"),
                   procore_get(client, "/rest/v1.0/me", token="nobody"),
                   procore_get(client, "/rest/v1.0/projects/101/requisitions/1")]
        erp = erp_get(client, "qbo")
    assert [answer.status_code for answer in answers][:2] == [200, 401]
    now = time.time()
    remaining = []
    for answer in answers:
        assert int(answer.headers["X-Rate-Limit-Limit"]) >= 10_000, answer.headers
        assert now - 1 <= int(answer.headers["X-Rate-Limit-Reset"]) <= now + 3601
        remaining.append(int(answer.headers["X-Rate-Limit-Remaining"]))
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
    assert erp.status_code == 200 and procore_rate_headers(erp) == set()


def test_reset_clears_the_windows() -> None:
    """POST /_sandbox/reset gives back every window: a used-up limit is whole again."""
    with (SandboxServer("xero", rate_limit=(2, 60.0), erp_rate_limit="1/min") as server,
          httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client):
        assert procore_get(client, "/rest/v1.0/me").status_code == 200
        assert procore_get(client, "/rest/v1.0/me").status_code == 429
        assert xero_get(client).status_code == 200
        assert xero_get(client).status_code == 429
        client.post("/_sandbox/reset").raise_for_status()
        assert procore_get(client, "/rest/v1.0/me").status_code == 200
        assert xero_get(client).status_code == 200


# -- the sandbox: each ERP in its own dialect ----------------------------------------------------


def test_xero_answers_in_its_own_headers_and_429s_with_retry_after() -> None:
    """Xero's answers carry X-MinLimit/DayLimit/AppMinLimit-Remaining (never Procore's headers);
    over the minute limit: 429 with Retry-After and X-Rate-Limit-Problem: minute."""
    with (SandboxServer("xero", erp_rate_limit="3/min,100/day") as server,
          httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client):
        answers = [xero_get(client, 1200 + n) for n in range(4)]
        missing = client.get("/erp/api.xro/2.0/Invoices/nope",
                             headers={"Authorization": f"Bearer {ERP_TOKEN}"})
    ok, refused = answers[:3], answers[3]
    assert [a.status_code for a in ok] == [200, 200, 200]
    assert [a.headers["X-MinLimit-Remaining"] for a in ok] == ["2", "1", "0"]
    assert [a.headers["X-DayLimit-Remaining"] for a in ok] == ["99", "98", "97"]
    assert all(int(a.headers["X-AppMinLimit-Remaining"]) > 9000 for a in ok)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    assert missing.status_code == 429  # a refused call does not count: still over
    assert all(procore_rate_headers(a) == set() for a in [*answers, missing])


def test_xero_daily_limit_can_be_exhausted_for_tests() -> None:
    """POST /_sandbox/limits/exhaust {"limit": "day"} uses up the daily limit: Xero answers 429,
    X-Rate-Limit-Problem: day, with a Retry-After of about a day; GET /_sandbox/limits tells
    when it frees."""
    with (SandboxServer("xero", erp_rate_limit="60/min,5000/day") as server,
          httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client):
        assert xero_get(client).headers["X-DayLimit-Remaining"] == "4999"
        bad = client.post("/_sandbox/limits/exhaust", json={"limit": "week"})
        exhausted = client.post("/_sandbox/limits/exhaust", json={"limit": "day"}).json()
        refused = xero_get(client)
        limits = client.get("/_sandbox/limits").json()
    assert bad.status_code == 400
    day = next(w for w in exhausted["windows"] if w["name"] == "day")
    assert day["remaining"] == 0 and day["frees_at"] is not None
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert refused.headers["X-DayLimit-Remaining"] == "0"
    assert 86_000 <= int(refused.headers["Retry-After"]) <= 86_400
    assert next(w for w in limits["erp"]["windows"] if w["name"] == "day")["remaining"] == 0


def test_quickbooks_throttles_with_its_own_fault() -> None:
    """Over 500-a-minute (here 2): QuickBooks Online's 429 Fault, code 3001 ThrottleExceeded,
    with intuit_tid and no rate headers of anyone's."""
    with (SandboxServer("qbo", erp_rate_limit="2/min") as server,
          httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client):
        answers = [erp_get(client, "qbo", 1200 + n) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    fault = answers[2].json()["Fault"]
    assert fault["type"] == "SERVICE"
    assert fault["Error"][0]["code"] == "3001"
    assert "ThrottleExceeded" in fault["Error"][0]["Message"]
    assert answers[2].headers["intuit_tid"]
    assert all(procore_rate_headers(a) == set() and "Retry-After" not in a.headers
               and "X-MinLimit-Remaining" not in a.headers for a in answers)


def test_quickbooks_allows_ten_calls_in_progress() -> None:
    """With its limits on, QuickBooks Online refuses an eleventh and twelfth call while ten
    are in progress (each held 2 s by the sandbox's latency)."""
    with SandboxServer("qbo", latency_ms=2000, erp_rate_limit="500/min") as server:
        statuses: list[int] = []
        lock = threading.Lock()

        def call(n: int) -> None:
            with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client:
                status = erp_get(client, "qbo", 1200 + n).status_code
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter(statuses) == {200: 10, 429: 2}


def test_intacct_throttles_with_its_own_error_shape() -> None:
    """Sage Intacct's 429 comes as ia::result / ia::error (code GW-0010, a model)."""
    with (SandboxServer("intacct", erp_rate_limit="1/min") as server,
          httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as client):
        answers = [erp_get(client, "intacct", 1200 + n) for n in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    error = answers[1].json()["ia::result"]["ia::error"]
    assert error["code"] == "GW-0010" and error["errorId"]
    assert answers[1].json()["ia::meta"]["totalError"] == 1
    assert all(procore_rate_headers(a) == set() for a in answers)


@pytest.mark.parametrize("erp", ["xero"])
def test_an_injected_429_on_the_erp_comes_in_the_erps_dialect(sandbox: Sandbox) -> None:
    """The 429 fault on an ERP call is Xero's (X-Rate-Limit-Problem, Retry-After), not
    Procore's X-Rate-Limit-* headers."""
    sandbox.control("POST", "faults", {"rate": 1, "kinds": ["429"]})
    try:
        with httpx.Client(verify=LOOPBACK_TLS, base_url=sandbox.url, timeout=10) as client:
            refused = xero_get(client)
    finally:
        sandbox.control("POST", "faults", {"rate": 0})
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert refused.headers["Retry-After"] == "1"
    assert procore_rate_headers(refused) == set()


@pytest.mark.parametrize(
    ("erp", "spec", "words"),
    [("xero", "60/min,5000/day,9/h", "one or two"), ("qbo", "500/min,1/day", "one limit"),
     ("xero", "60/fortnight", "N/PERIOD"), ("intacct", "0/min", "at least one call")],
)
def test_erp_rate_limit_option_is_checked(erp: str, spec: str, words: str) -> None:
    """A malformed --erp-rate-limit, or one the product does not have, is one clear line,
    exit 2, before anything is served."""
    result = CliRunner().invoke(
        cli.app, ["sandbox", "serve", "--erp", erp, "--port", "0", "--erp-rate-limit", spec],
        env={"RELINK_CONFIG": "", "NO_COLOR": "1"},
    )
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "--erp-rate-limit" in result.stderr and words in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# -- the client against each dialect (in-process, on a fake clock) -------------------------------


class FakeClock(Clock):
    """Unix time that moves only when someone sleeps (or a call takes time); records sleeps."""

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Served:
    """What a fake remote saw: statuses, and the most calls it had in progress at once."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.in_progress = 0
        self.most = 0
        self.lock = threading.Lock()


def dialect_server(
    limits: ErpLimits, clock: FakeClock, real_latency: float = 0.0
) -> tuple[httpx.MockTransport, Served]:
    """A remote applying the sandbox's own limiter for ``limits``' product: each call takes
    10 ms on the fake clock (and ``real_latency`` for real, so that threads overlap)."""
    served = Served()

    def handler(request: httpx.Request) -> httpx.Response:
        with served.lock:
            refusal, headers = limits.admit()
            if refusal is not None:
                served.statuses.append(refusal.status)
                return httpx.Response(refusal.status, headers=refusal.headers,
                                      content=refusal.body)
            served.in_progress += 1
            served.most = max(served.most, served.in_progress)
        clock.advance(0.01)
        time.sleep(real_latency)
        with served.lock:
            served.in_progress -= 1
            limits.done()
            served.statuses.append(200)
        return httpx.Response(200, json={"ok": True}, headers=headers)

    return httpx.MockTransport(handler), served


def scripted(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return httpx.MockTransport(handler), seen


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="client_for")
def fixture_client_for(clock: FakeClock) -> Iterator[Callable[..., HttpClient]]:
    """An HttpClient of a given system on the fake clock; close them all afterwards."""
    clients: list[HttpClient] = []

    def make(system: str, transport: httpx.MockTransport, **policy: Any) -> HttpClient:
        settings: dict[str, Any] = {"backoff_initial": 0, "backoff_max": 0, "backoff_jitter": 0,
                                    "clock": clock.time, "sleep": clock.sleep, **policy}
        client = HttpClient(system=system, label={"xero": "Xero", "qbo": "QuickBooks Online",
                                                   "procore": "Procore"}[system],
                            base_url="http://remote.test", policy=RetryPolicy(**settings),
                            transport=transport)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def retry_time(message: str) -> float:
    match = RETRY_AFTER.search(message)
    assert match, message
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def test_xero_pacing_keeps_under_its_rolling_minute(clock: FakeClock, client_for: Any) -> None:
    """200 calls against Xero's 20-a-minute rolling window, read from X-MinLimit-Remaining alone:
    no 429, and the pacer waited."""
    limits = erp_limits("xero", "20/min,5000/day", clock=clock.time)
    transport, served = dialect_server(limits, clock)
    client = client_for("xero", transport, max_wait=120)
    started = clock.now
    for n in range(200):
        assert client.request("GET", f"/Invoices/{n}").ok
    assert served.statuses == [200] * 200
    assert clock.sleeps and clock.now - started >= (200 - 20) / 20 * 60  # the limit's pace


def test_xero_pacing_holds_across_threads(clock: FakeClock, client_for: Any) -> None:
    """Eight threads sharing a Xero client: no 429, never more than 5 calls in progress."""
    limits = erp_limits("xero", "12/min,5000/day", clock=clock.time)
    transport, served = dialect_server(limits, clock, real_latency=0.002)
    client = client_for("xero", transport, max_wait=120)

    def work(worker: int) -> None:
        for n in range(6):
            client.request("GET", f"/Invoices/{worker}-{n}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert served.statuses == [200] * 48
    assert 1 < served.most <= 5


@pytest.mark.parametrize(
    ("system", "spec", "limits", "calls"),
    [("xero", "60/min,5000/day", Limits(), 300),
     ("qbo", "500/min", Limits(), 1200)],
)
def test_long_runs_at_the_documented_limits_pace_evenly(
    clock: FakeClock, client_for: Any, system: str, spec: str, limits: Limits, calls: int
) -> None:
    """Runs of several windows' worth at Xero's and QuickBooks Online's documented limits: no
    429, and no wait anywhere near a window (so http.max_wait, here 5 s, never cuts a run)."""
    server_limits = erp_limits(system, spec, clock=clock.time)
    transport, served = dialect_server(server_limits, clock)
    client = client_for(system, transport, max_wait=5, limits=limits)
    for n in range(calls):
        assert client.request("GET", f"/things/{n}").ok
    assert served.statuses == [200] * calls
    assert clock.sleeps and max(clock.sleeps) <= 2


def test_xero_daily_limit_seen_used_up_fails_before_sending(
    clock: FakeClock, client_for: Any
) -> None:
    """Once an answer says X-DayLimit-Remaining: 0, the next call is not sent: RemoteUnavailable
    (exit 3) at once, naming Xero's daily limit and when to retry (a day after that answer)."""
    headers = {"X-MinLimit-Remaining": "59", "X-DayLimit-Remaining": "0",
               "X-AppMinLimit-Remaining": "9999"}
    transport, seen = scripted(httpx.Response(200, json={}, headers=headers))
    client = client_for("xero", transport)
    client.request("GET", "/Invoices/1")
    answered = clock.now
    with pytest.raises(RemoteUnavailable) as caught:
        client.request("GET", "/Invoices/2")
    assert seen == ["/Invoices/1"] and clock.sleeps == []
    assert "Xero's daily limit is used up" in caught.value.message
    assert "the call was not sent" in caught.value.message
    assert answered + 86_400 <= retry_time(caught.value.message) <= answered + 86_402


def test_xero_429_for_the_day_fails_at_once_with_the_retry_time(
    clock: FakeClock, client_for: Any
) -> None:
    """A 429 with X-Rate-Limit-Problem: day and a Retry-After beyond http.max_wait is not retried:
    RemoteUnavailable at once, saying when (now + Retry-After, in UTC)."""
    refused = httpx.Response(429, headers={"Retry-After": "50000", "X-Rate-Limit-Problem": "day",
                                           "X-DayLimit-Remaining": "0"})
    transport, seen = scripted(refused)
    client = client_for("xero", transport, max_wait=60)
    with pytest.raises(RemoteUnavailable) as caught:
        client.request("GET", "/Invoices/1")
    assert len(seen) == 1 and clock.sleeps == []
    assert caught.value.status == 429
    assert "Xero's daily limit is used up (HTTP 429)" in caught.value.message
    assert clock.now + 50_000 <= retry_time(caught.value.message) <= clock.now + 50_001


def test_xero_429_for_the_minute_waits_and_retries(clock: FakeClock, client_for: Any) -> None:
    """A minute-limit 429 whose Retry-After fits in http.max_wait is waited out, then retried."""
    refused = httpx.Response(429, headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute"})
    transport, seen = scripted(refused, httpx.Response(200, json={}))
    client = client_for("xero", transport, max_wait=60)
    assert client.request("GET", "/Invoices/1").ok
    assert len(seen) == 2 and sum(clock.sleeps) >= 7


def test_quickbooks_pacing_counts_its_own_calls(clock: FakeClock, client_for: Any) -> None:
    """QuickBooks Online sends no rate headers: the pacer keeps to the documented rate (here 10
    a minute) by counting its own calls, so none is throttled."""
    limits = erp_limits("qbo", "10/min", clock=clock.time)
    transport, served = dialect_server(limits, clock)
    client = client_for("qbo", transport, max_wait=120,
                        limits=Limits(qbo_calls=10, qbo_window_seconds=60))
    for n in range(35):
        assert client.request("GET", f"/bill/{n}").ok
    assert served.statuses == [200] * 35 and clock.sleeps


def test_quickbooks_pacing_keeps_ten_in_progress(clock: FakeClock, client_for: Any) -> None:
    """Sixteen threads on one QuickBooks Online client never have more than 10 calls in
    progress, so the realm's concurrency limit never answers 429."""
    limits = erp_limits("qbo", "100000/min", clock=clock.time)
    transport, served = dialect_server(limits, clock, real_latency=0.003)
    client = client_for("qbo", transport)

    def work(worker: int) -> None:
        for n in range(4):
            client.request("GET", f"/bill/{worker}-{n}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert served.statuses == [200] * 64
    assert 1 < served.most <= 10


def test_quickbooks_throttle_waits_the_documented_minute(clock: FakeClock, client_for: Any) -> None:
    """After ThrottleExceeded (no Retry-After), the client waits Intuit's 60 s and retries; with
    http.max_wait under a minute it fails at once instead, saying when."""
    fault = {"Fault": {"Error": [{"Message": "message=ThrottleExceeded; errorCode=003001;"
                                             " statusCode=429", "code": "3001"}],
                       "type": "SERVICE"}}
    transport, seen = scripted(httpx.Response(429, json=fault), httpx.Response(200, json={}))
    assert client_for("qbo", transport, max_wait=90).request("GET", "/bill/1").ok
    assert len(seen) == 2 and sum(clock.sleeps) >= 60
    transport, seen = scripted(httpx.Response(429, json=fault))
    with pytest.raises(RemoteUnavailable, match="QuickBooks Online's rate limit is used up"):
        client_for("qbo", transport, max_wait=30).request("GET", "/bill/1")
    assert len(seen) == 1


def test_procore_429_beyond_max_wait_fails_at_once(clock: FakeClock, client_for: Any) -> None:
    """Procore's hourly limit used up (X-Rate-Limit-Reset 30 min away) is not slept through or
    retried into: RemoteUnavailable at once, naming the reset time."""
    reset = int(clock.now) + 1800
    refused = httpx.Response(429, headers={"X-Rate-Limit-Limit": "3600",
                                           "X-Rate-Limit-Remaining": "0",
                                           "X-Rate-Limit-Reset": str(reset)})
    transport, seen = scripted(refused)
    with pytest.raises(RemoteUnavailable, match="Procore's rate limit is used up") as caught:
        client_for("procore", transport, max_wait=60).request("GET", "/rest/v1.0/me")
    assert len(seen) == 1 and clock.sleeps == []
    assert reset <= retry_time(caught.value.message) <= reset + 1


def test_procore_hour_seen_used_up_fails_before_sending(clock: FakeClock, client_for: Any) -> None:
    """An answer with X-Rate-Limit-Remaining: 0 and a reset beyond http.max_wait: the next call
    is not sent."""
    reset = int(clock.now) + 1200
    used_up = httpx.Response(200, json={}, headers={"X-Rate-Limit-Limit": "3600",
                                                    "X-Rate-Limit-Remaining": "0",
                                                    "X-Rate-Limit-Reset": str(reset)})
    transport, seen = scripted(used_up)
    client = client_for("procore", transport, max_wait=60)
    client.request("GET", "/rest/v1.0/me")
    with pytest.raises(RemoteUnavailable, match="the call was not sent"):
        client.request("GET", "/rest/v1.0/me")
    assert len(seen) == 1 and clock.sleeps == []


# -- acceptance 4: through the service and the CLI, over real HTTP ------------------------------

WINDOW_SECONDS = 1.0  # Xero's minute, compressed (the sandbox's and the client's alike)
PER_WINDOW = 20
INVOICES = range(9200, 9230)  # start + delete-in-erp on each: 60 steps


@pytest.fixture(name="xero_limited")
def fixture_xero_limited() -> Iterator[SandboxServer]:
    """A Xero sandbox of this test's own: 20 calls per (1-second) minute, 5,000 a day."""
    with SandboxServer("xero", erp_rate_limit=f"{PER_WINDOW}/1s,5000/day") as server:
        yield server


@pytest.fixture(name="pacer_sleeps")
def fixture_pacer_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the pacers ask for (the only user of RetryPolicy.sleep), while the clients
    built from settings know Xero's minute as WINDOW_SECONDS long."""
    import engine.app

    sleeps: list[float] = []
    settings_policy = engine.app.retry_policy

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    def policy(*args: Any, **kwargs: Any) -> RetryPolicy:
        built: RetryPolicy = settings_policy(*args, **kwargs)
        return replace(built, sleep=sleep, limits=Limits(xero_minute_seconds=WINDOW_SECONDS))

    monkeypatch.setattr(engine.app, "retry_policy", policy)
    return sleeps


def test_sixty_xero_steps_get_no_429_and_the_pacer_waited(
    sqlite_url: str, xero_limited: SandboxServer, pacer_sleeps: list[float]
) -> None:
    """Acceptance 4: 60 steps against Xero's limits (20 per compressed minute): every step
    succeeds, the sandbox's call log has no 429, the ERP took more calls than one window holds,
    and the pacer waited for the window to free."""
    from engine.app import correction_service
    from engine.settings import load_settings

    env = {**xero_limited.env(), "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_DATABASE_URL": sqlite_url, "RELINK_CONFIG": ""}
    service = correction_service(load_settings(env=env), env, workflow="subcontractor-invoice")
    outcomes: list[str] = []
    try:
        for invoice in INVOICES:
            doc = service.start(invoice, 102, "pacing")
            assert doc.id is not None, doc
            outcomes.append(doc.kind)
            outcomes.append(service.advance(doc.id, "delete-in-erp").kind)
    finally:
        service.close()
    assert outcomes == ["succeeded"] * 60

    calls: list[dict[str, Any]] = httpx.get(f"{xero_limited.url}/_sandbox/calls",
                                            verify=LOOPBACK_TLS).json()
    assert Counter(call["status"] for call in calls if call["status"] >= 400) == Counter()
    xero_calls = [call for call in calls if call["path"].startswith("/erp/api.xro")]
    assert len(xero_calls) > 2 * PER_WINDOW
    assert pacer_sleeps and sum(pacer_sleeps) > 0


@pytest.mark.parametrize("erp", ["xero"])
def test_used_up_daily_limit_exits_3_at_once_with_the_retry_time(
    relink: Relink, sandbox: Sandbox
) -> None:
    """Acceptance 4: Xero's daily limit used up: `relink advance` exits 3 after one refused call
    (no retry, no wait), saying when to retry, in UTC, as Xero's Retry-After says."""
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "daily limit")
    assert code == 0, doc
    before = len(sandbox.calls())
    limits = sandbox.control("POST", "limits/exhaust", {"limit": "day"})
    frees_at = next(w for w in limits["windows"] if w["name"] == "day")["frees_at"]

    outcome = relink("advance", str(doc["id"]), "delete-in-erp")
    assert outcome.exit_code == 3, outcome.stdout + outcome.stderr
    said = outcome.stdout + outcome.stderr
    assert "Xero's daily limit is used up" in said
    assert frees_at - 1 <= retry_time(said) <= frees_at + 3
    erp_calls = [c for c in sandbox.calls()[before:] if c["path"].startswith("/erp")]
    assert [c["status"] for c in erp_calls] == [429]
    code, shown = relink.json("show", str(doc["id"]))
    assert (code, shown["state"]) == (0, "Exported")
