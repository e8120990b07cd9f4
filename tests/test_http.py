"""The HTTP layer of the connectors: retries, waits, pacing, error mapping, secret hygiene."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import httpx
import pytest

from integrations.errors import (
    RemoteError,
    RemoteForbidden,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.http import HttpClient, RetryPolicy
from integrations.procore import ProcoreClient

TOKEN = "tok-SECRET-7f3a9c"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Unix time that only moves when someone sleeps; records every sleep."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="policy")
def fixture_policy(clock: FakeClock) -> RetryPolicy:
    return RetryPolicy(
        attempts=4, backoff_initial=0, backoff_max=0, backoff_jitter=0,
        clock=clock.time, sleep=clock.sleep,
    )


@pytest.fixture(name="make_client")
def fixture_make_client(policy: RetryPolicy) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(handler: Handler, **overrides: object) -> HttpClient:
        used = RetryPolicy(**{**{f: getattr(policy, f) for f in policy.__dataclass_fields__},
                              **overrides})
        client = HttpClient(
            system="procore", label="Procore", base_url="http://remote.test/api",
            headers={"Authorization": f"Bearer {TOKEN}"}, secrets=(TOKEN,), policy=used,
            transport=httpx.MockTransport(handler),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def scripted(*steps: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``steps`` in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    return handler, seen


def ok(payload: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json={"ok": True} if payload is None else payload, headers=headers)


def test_get_is_retried_on_transient_statuses_until_it_succeeds(make_client):
    """A GET answered 500, 502, 503, 504 is repeated and returns the first good answer."""
    handler, seen = scripted(
        httpx.Response(500), httpx.Response(502), httpx.Response(504), ok({"n": 1})
    )
    client = make_client(handler)
    reply = client.request("GET", "/things/1")
    assert reply.body == {"n": 1}
    assert len(seen) == 4
    assert [c.status for c in client.drain_calls()] == [500, 502, 504, 200]
    assert client.drain_calls() == []


def test_get_gives_up_after_the_attempts_with_one_clear_message(make_client):
    """A GET that keeps timing out raises RemoteUnavailable naming the attempts and the call."""
    handler, seen = scripted(httpx.ReadTimeout("slow"))
    client = make_client(handler, attempts=3)
    with pytest.raises(RemoteUnavailable) as caught:
        client.request("GET", "/rest/v1.1/requisitions/9001", params={"project_id": 101})
    assert str(caught.value) == (
        "Procore unavailable: timed out after 3 attempts "
        "(GET /rest/v1.1/requisitions/9001?project_id=101)"
    )
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert caught.value.system == "procore"
    assert len(seen) == 3
    assert [c.status for c in client.drain_calls()] == [None, None, None]


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("t"), httpx.ReadError("reset"),
                                     httpx.RemoteProtocolError("eof")])
def test_write_is_not_retried_once_the_request_may_have_been_sent(make_client, failure):
    """A POST that times out or loses its connection is tried once: it may have happened."""
    handler, seen = scripted(failure, ok())
    client = make_client(handler)
    with pytest.raises(RemoteUnavailable, match=r"not retried \(POST /things\)"):
        client.request("POST", "/things", json={"a": 1})
    assert len(seen) == 1


def test_write_is_not_retried_on_a_server_error(make_client):
    """A POST answered 500 is not repeated; checking the answer raises RemoteUnavailable."""
    handler, seen = scripted(httpx.Response(500), ok())
    client = make_client(handler)
    reply = client.request("POST", "/things", json={})
    assert reply.status == 500 and len(seen) == 1
    with pytest.raises(RemoteUnavailable, match=r"HTTP 500 \(POST /things\)"):
        client.check(reply)


@pytest.mark.parametrize("first", [httpx.ConnectError("refused"), httpx.Response(503),
                                   httpx.Response(429)])
def test_any_write_is_retried_when_nothing_was_processed(make_client, first):
    """A connect failure, 503 or 429 means nothing happened, so even a POST is repeated."""
    handler, seen = scripted(first, ok({"id": 5}))
    client = make_client(handler)
    assert client.request("POST", "/things", json={}).body == {"id": 5}
    assert len(seen) == 2
    assert seen[0].content == seen[1].content == b"{}"


def test_idempotent_write_is_retried_after_a_timeout(make_client):
    """A write marked idempotent (idempotency key, state checked) is repeated like a read."""
    handler, seen = scripted(httpx.ReadTimeout("t"), httpx.Response(502), ok())
    client = make_client(handler)
    assert client.request("POST", "/things", json={}, idempotent=True).ok
    assert len(seen) == 3


def test_unreadable_json_is_retried_on_reads_and_then_a_protocol_error(make_client):
    """A 200 whose body is not JSON is re-read, and finally raises RemoteProtocolError."""
    handler, seen = scripted(httpx.Response(200, content=b"<html>oops"))
    client = make_client(handler)
    with pytest.raises(RemoteProtocolError, match="answer is not JSON after 4 attempts"):
        client.request("GET", "/things")
    assert len(seen) == 4


def test_unreadable_json_after_a_write_is_a_protocol_error_at_once(make_client):
    """A POST whose 201 body is garbage is not repeated (the write happened)."""
    handler, seen = scripted(httpx.Response(201, content=b"{not json"))
    client = make_client(handler)
    with pytest.raises(RemoteProtocolError, match=r"answer is not JSON \(POST /things\)"):
        client.request("POST", "/things", json={})
    assert len(seen) == 1


def test_retry_after_seconds_is_honoured_before_the_next_attempt(make_client, clock):
    """A 503 with ``Retry-After: 7`` makes the client wait 7 s (on the injected clock)."""
    handler, _ = scripted(httpx.Response(503, headers={"Retry-After": "7"}), ok())
    client = make_client(handler)
    start = clock.now
    assert client.request("GET", "/things").ok
    assert clock.now - start == pytest.approx(7)


def test_retry_after_http_date_is_honoured(make_client, clock):
    """``Retry-After`` may be an HTTP date; the client waits until then."""
    when = formatdate(clock.now + 12, usegmt=True)
    handler, _ = scripted(httpx.Response(503, headers={"Retry-After": when}), ok())
    client = make_client(handler)
    start = clock.now
    client.request("GET", "/things")
    assert clock.now - start == pytest.approx(12, abs=1)


def test_429_waits_until_the_rate_limit_reset(make_client, clock):
    """On 429 the client waits until ``X-Rate-Limit-Reset`` (plus the margin) before retrying."""
    reset = clock.now + 20
    limited = httpx.Response(429, headers={"X-Rate-Limit-Remaining": "0",
                                           "X-Rate-Limit-Reset": str(int(reset))})
    handler, seen = scripted(limited, ok())
    client = make_client(handler, reset_margin=0.5)
    client.request("POST", "/things", json={})
    assert len(seen) == 2
    assert clock.now >= reset + 0.5
    assert clock.now <= reset + 1


def test_server_directed_waits_are_capped(make_client, clock):
    """A Retry-After of an hour is cut to ``max_wait``."""
    handler, _ = scripted(httpx.Response(503, headers={"Retry-After": "3600"}), ok())
    client = make_client(handler, max_wait=2.0)
    start = clock.now
    client.request("GET", "/things")
    assert clock.now - start == pytest.approx(2.0)


def budget_server(
    clock: FakeClock, limit: int, window: float, latency: float = 0.0
) -> tuple[Handler, dict[str, int]]:
    """A remote that allows ``limit`` calls per fixed ``window`` and answers 429 beyond.

    ``latency`` is real time spent answering, so that threads really overlap.
    """
    state = {"window_start": int(clock.time()), "used": 0, "served": 0, "limited": 0,
             "in_flight": 0, "overlap": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            now = clock.time()
            if now >= state["window_start"] + window:
                state["window_start"] += int((now - state["window_start"]) // window * window)
                state["used"] = 0
            reset = str(int(state["window_start"] + window))
            if state["used"] >= limit:
                state["limited"] += 1
                return httpx.Response(429, headers={"X-Rate-Limit-Remaining": "0",
                                                    "X-Rate-Limit-Reset": reset})
            state["used"] += 1
            state["served"] += 1
            state["in_flight"] += 1
            state["overlap"] = max(state["overlap"], state["in_flight"])
            headers = {"X-Rate-Limit-Limit": str(limit),
                       "X-Rate-Limit-Remaining": str(limit - state["used"]),
                       "X-Rate-Limit-Reset": reset}
        clock.sleep(0.01)  # each call takes a little time
        time.sleep(latency)
        with lock:
            state["in_flight"] -= 1
        return httpx.Response(200, json={"ok": True}, headers=headers)

    return handler, state


def test_pacing_never_receives_a_429(make_client, clock):
    """Spreading the last calls of each window over the time left means no call is ever refused."""
    handler, state = budget_server(clock, limit=12, window=10)
    client = make_client(handler, pace_below=5, reset_margin=0.1)
    start = clock.now
    for n in range(60):
        client.request("GET", f"/things/{n}")
    assert state["limited"] == 0
    assert state["served"] == 60
    assert clock.now - start <= 60 / 12 * 10 + 1  # no slower than the allowed rate (and a bit)


def test_pacing_holds_across_threads(make_client, clock):
    """Concurrent callers sharing one client never exceed the budget either."""
    handler, state = budget_server(clock, limit=8, window=10)
    client = make_client(handler, pace_below=8, reset_margin=0.1)

    def work(worker: int) -> None:
        for n in range(10):
            client.request("GET", f"/things/{worker}-{n}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["limited"] == 0
    assert state["served"] == 40


def test_more_threads_than_the_window_allows_never_receive_a_429(make_client, clock):
    """When a window ends, no more calls than its limit go out before an answer gives the budget."""
    handler, state = budget_server(clock, limit=3, window=10, latency=0.003)
    client = make_client(handler, pace_below=1, reset_margin=0.1)

    def work(worker: int) -> None:
        for n in range(5):
            client.request("GET", f"/things/{worker}-{n}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["limited"] == 0
    assert state["served"] == 30
    assert state["overlap"] > 1


def test_odd_rate_limit_headers_are_ignored(make_client, clock):
    """Unreadable, negative or absurd rate-limit headers neither crash nor stall the client."""
    handler, _ = scripted(
        ok(**{"X-Rate-Limit-Remaining": "lots", "X-Rate-Limit-Reset": "soon"}),
        ok(**{"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "1e300"}),
        ok(**{"X-Rate-Limit-Remaining": "-3", "X-Rate-Limit-Reset": "nan"}),
    )
    client = make_client(handler, max_wait=1.5)
    start = clock.now
    for _ in range(4):
        client.request("GET", "/things")
    assert clock.now - start <= 1.5 * 2


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, RemoteRejectedCredentials, "Procore rejected the credentials (HTTP 401)"),
        (403, RemoteForbidden, "You do not have access"),
        (404, RemoteNotFound, "You do not have access"),
        (409, RemoteRefused, "You do not have access"),
        (422, RemoteRefused, "You do not have access"),
        (418, RemoteRefused, "You do not have access"),
        (501, RemoteUnavailable, "Procore unavailable: HTTP 501 (GET /things)"),
        (302, RemoteProtocolError, "unexpected HTTP 302"),
    ],
)
def test_statuses_map_to_the_error_tree(make_client, status, error, words):
    """Each status maps to its RemoteError class, carrying the remote system's own words."""
    handler, _ = scripted(httpx.Response(status, json={"message": "You do not have access"}))
    client = make_client(handler)
    with pytest.raises(error) as caught:
        client.check(client.request("GET", "/things"))
    assert type(caught.value) is error
    assert words in caught.value.message
    assert caught.value.status == status


@pytest.mark.parametrize("declared", [True, False])
def test_huge_bodies_are_refused_unparsed(make_client, declared):
    """An answer larger than ``max_body_bytes`` raises RemoteProtocolError and is not retried."""
    body = b"[" + b"1," * 600 + b"1]"

    def handler(request: httpx.Request) -> httpx.Response:
        if declared:
            return httpx.Response(200, content=body)
        return httpx.Response(200, content=iter([body[:500], body[500:]]))

    client = make_client(handler, max_body_bytes=1000)
    with pytest.raises(RemoteProtocolError, match="larger than 1000 bytes"):
        client.request("GET", "/things")
    assert len(client.drain_calls()) == 1


def test_calls_record_path_query_status_and_request_id(make_client):
    """Each exchange becomes a Call with the API path (base path stripped), query and request id."""
    handler, _ = scripted(ok(**{"X-Request-Id": "req-42"}))
    client = make_client(handler)
    client.request("GET", "/rest/v1.1/requisitions", params={"filters[commitment_id]": 5501})
    (call,) = client.drain_calls()
    assert call.as_evidence() == {
        "system": "procore", "method": "GET",
        "path": "/rest/v1.1/requisitions?filters[commitment_id]=5501",
        "status": 200, "request_id": "req-42",
    }


def test_secrets_never_leak_into_messages_calls_or_logs(make_client, caplog):
    """A token echoed back by the server is masked; no Call, message, repr or log holds it."""
    echo = {"message": f"bad token {TOKEN}", "Authorization": f"Bearer {TOKEN}"}
    handler, seen = scripted(
        httpx.ReadTimeout(f"timeout for {TOKEN}"),
        httpx.Response(401, json=echo, headers={"X-Request-Id": TOKEN}),
    )
    client = make_client(handler)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RemoteRejectedCredentials) as caught:
        client.check(client.request("GET", "/things"))
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    exposed = [str(caught.value), caught.value.message, repr(caught.value), repr(client),
               caplog.text, json.dumps([c.as_evidence() for c in client.drain_calls()])]
    assert all(TOKEN not in text for text in exposed)
    assert "[redacted]" in caught.value.message


def test_procore_client_repr_and_errors_hide_the_token():
    """The Procore client's repr and its connection errors never show the bearer token."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach, token={TOKEN}")

    policy = RetryPolicy(attempts=2, backoff_initial=0, backoff_max=0, backoff_jitter=0)
    with ProcoreClient("http://remote.test", TOKEN, 4021, policy=policy,
                       transport=httpx.MockTransport(handler)) as procore:
        with pytest.raises(RemoteUnavailable) as caught:
            procore.me()
        assert TOKEN not in repr(procore)
    assert str(caught.value) == (
        "Procore unavailable: could not connect after 2 attempts"
        " (GET /rest/v1.0/me?company_id=4021)"
    )


def test_invalid_base_url_is_a_remote_error():
    """A base URL httpx cannot use is reported as RemoteUnavailable, not an httpx exception."""
    with pytest.raises(RemoteError):
        HttpClient(system="procore", label="Procore", base_url="http://[::1")
