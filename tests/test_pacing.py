"""Pacing in each product's dialect: a run that needs more calls than one rate-limit window
allows, of Procore (read from its X-Rate-Limit-* headers) and of QuickBooks Online (no headers:
its documented rate, counted by the client), gets no 429 at all, and does not sleep longer than
the limit requires (+25%)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from engine.app import correction_service
from engine.settings import load_settings
from integrations.http import RetryPolicy
from integrations.pacing import Limits
from sandbox.server import SandboxServer
from tests.conftest import LOOPBACK_TLS

# 30 calls per 3-second window for Procore and, separately, for QuickBooks Online (its 500 a
# minute, compressed): 10 calls a second. The run below makes over 30 Procore and 30 ERP calls,
# so both need pacing (a client that bursts gets 429s), while what the limit requires stays a
# few seconds.
WINDOW_CALLS, WINDOW_SECONDS = 30, 3.0
INVOICES = range(9200, 9210)  # start + delete-in-erp + unlink on each: 30 steps


@pytest.fixture(name="limited_sandbox")
def fixture_limited_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of this test's own (QuickBooks Online), rate-limited to WINDOW_CALLS per
    WINDOW_SECONDS on both sides; it plays the operator's Unlink click."""
    with SandboxServer(rate_limit=(WINDOW_CALLS, WINDOW_SECONDS), auto_unlink=True,
                       erp_rate_limit=f"{WINDOW_CALLS}/{WINDOW_SECONDS:g}s") as server:
        yield server


@pytest.fixture(name="compressed_qbo")
def fixture_compressed_qbo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients built from settings know QuickBooks Online's documented rate as the
    sandbox's compressed one (it sends no header that could tell them)."""
    import engine.app

    settings_policy = engine.app.retry_policy
    limits = Limits(qbo_calls=WINDOW_CALLS, qbo_window_seconds=WINDOW_SECONDS)

    def policy(*args: Any, **kwargs: Any) -> RetryPolicy:
        built: RetryPolicy = settings_policy(*args, **kwargs)
        return replace(built, limits=limits)

    monkeypatch.setattr(engine.app, "retry_policy", policy)


def required_seconds(calls: int) -> float:
    """What the limit requires for ``calls`` at its allowed rate (the P4 bound of targets.md)."""
    return calls / (WINDOW_CALLS / WINDOW_SECONDS)


def burst_minimum_seconds(calls: int) -> float:
    """The least any client can take: all it may send at each window start, none in between."""
    return (math.ceil(calls / WINDOW_CALLS) - 1) * WINDOW_SECONDS


@pytest.mark.usefixtures("compressed_qbo")
def test_thirty_paced_steps_get_no_429_and_do_not_oversleep(
    sqlite_url: str, limited_sandbox: SandboxServer
) -> None:
    """30 steps through the service layer: zero 429 answers in the sandbox's call log, and a
    wall time within 1.25x of what the configured limit requires for the calls made."""
    env = {**limited_sandbox.env(), "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_DATABASE_URL": sqlite_url, "RELINK_CONFIG": ""}
    service = correction_service(load_settings(env=env), env, workflow="subcontractor-invoice")
    outcomes: list[str] = []
    started = time.perf_counter()
    try:
        for invoice in INVOICES:
            doc = service.start(invoice, 102, "pacing")
            assert doc.id is not None, doc
            outcomes.append(doc.kind)
            for step in ("delete-in-erp", "unlink"):
                outcomes.append(service.advance(doc.id, step).kind)
    finally:
        service.close()
    elapsed = time.perf_counter() - started
    assert outcomes == ["succeeded"] * 30

    calls: list[dict[str, Any]] = httpx.get(f"{limited_sandbox.url}/_sandbox/calls",
                                            verify=LOOPBACK_TLS).json()
    assert [c for c in calls if c["status"] == 429] == []
    per_system = Counter("erp" if c["path"].startswith("/erp") else "procore" for c in calls)
    busiest = max(per_system.values())
    assert min(per_system.values()) > WINDOW_CALLS, per_system  # both systems needed pacing
    assert elapsed >= burst_minimum_seconds(busiest)  # (faster would have meant 429s)
    assert elapsed <= 1.25 * required_seconds(busiest), (elapsed, per_system)
