"""Steps killed between their two transactions are settled by `relink resume`: the remote state
decides, and no remote change is ever made twice. Real `relink` processes, real SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.db import Database
from engine.store import WorkflowStore
from tests.conftest import INTEGRATOR_ENV, Relink, Sandbox

pytestmark = pytest.mark.slow  # leases run out, processes are killed: see `make test-fast`

RELINK = str(Path(sys.executable).with_name("relink"))


@pytest.fixture(name="slow_sandbox")
def fixture_slow_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose every API call takes 400 ms, so a kill can land inside a step."""
    from sandbox.server import SandboxServer

    with SandboxServer(erp="qbo", latency_ms=400) as server:
        yield Sandbox(url=server.url, erp="qbo", env=dict(server.env()))


@pytest.fixture(name="slow")
def fixture_slow(db_url: str, slow_sandbox: Sandbox) -> Relink:
    return Relink(db_url, {**slow_sandbox.env, **INTEGRATOR_ENV})


# Short timeouts keep the leases short: a lease covers the longest exchange it sends
# (connect + write + read timeouts) plus a margin, here about 3 s.
SHORT = {"RELINK_LEASE_SECONDS": "0.5", "RELINK_HTTP_CONNECT_TIMEOUT": "0.5",
         "RELINK_HTTP_READ_TIMEOUT": "1"}


def spawn(relink: Relink, *args: str, token: str = "sandbox-ana",
          lease: float = 0.5) -> subprocess.Popen[bytes]:
    env = {**os.environ, **relink.env, **SHORT, "RELINK_PROCORE_TOKEN": token,
           "RELINK_DATABASE_URL": relink.db_url, "RELINK_CONFIG": "",
           "RELINK_LEASE_SECONDS": str(lease)}
    return subprocess.Popen([RELINK, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stored(db_url: str, wid: int) -> Any:
    db = Database(db_url)
    try:
        with db.read() as conn:
            return WorkflowStore().get(conn, wid)
    finally:
        db.dispose()


def lease_ends(db_url: str, wid: int) -> float:
    """Seconds until the lease of the step in flight ends (0 when none or over)."""
    until = stored(db_url, wid).in_flight_lease_until
    if until is None:
        return 0.0
    left = dt.datetime.fromisoformat(until) - dt.datetime.now(dt.UTC)
    return max(0.0, left.total_seconds())


def resume_after_lease(relink: Relink, wid: int, **kwargs: Any) -> tuple[int, Any]:
    """`relink resume` refused while the lease is live (exit 4, naming its holder), then run
    once it has ended."""
    if lease_ends(relink.db_url, wid) > 0.3:
        code, doc = relink.json("resume", str(wid), **kwargs)
        assert code == 4 and "held by" in doc["message"], doc
    time.sleep(lease_ends(relink.db_url, wid) + 0.05)
    return relink.json("resume", str(wid), **kwargs)


def in_flight(db_url: str, wid: int) -> str | None:
    instance = stored(db_url, wid)
    return instance.in_flight_step if instance else None


def kill_when(process: subprocess.Popen[bytes], ready: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the step never got in flight"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()


def started(relink: Relink) -> int:
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "kill test")
    assert code == 0, doc
    return int(doc["id"])


def deletes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls() if c["method"] == "POST" and "operation=delete" in c["path"]]


def test_killed_before_the_remote_change_is_released(slow: Relink, slow_sandbox: Sandbox) -> None:
    """Killed while in flight but before the ERP delete: resume releases; the rerun deletes once."""
    wid = started(slow)
    process = spawn(slow, "advance", str(wid), "delete-in-erp")
    kill_when(process, lambda: in_flight(slow.db_url, wid) == "delete-in-erp")
    assert deletes(slow_sandbox) == []
    code, doc = slow.json("advance", str(wid), "delete-in-erp")
    assert code == 4 and "relink resume" in doc["message"]
    code, doc = resume_after_lease(slow, wid)
    assert (code, doc["state"], doc["in_flight"]) == (0, "Exported", None), doc
    assert doc["message"].startswith("Released delete-in-erp")
    code, doc = slow.json("advance", str(wid), "delete-in-erp")
    assert (code, doc["state"]) == (0, "DeletedInERP")
    assert len(deletes(slow_sandbox)) == 1
    assert slow("audit", "verify").exit_code == 0


def test_killed_after_the_remote_change_is_completed(slow: Relink, slow_sandbox: Sandbox) -> None:
    """Killed after the ERP received the delete: resume completes the step without a 2nd delete."""
    wid = started(slow)
    process = spawn(slow, "advance", str(wid), "delete-in-erp")
    kill_when(process, lambda: bool(deletes(slow_sandbox)))
    assert in_flight(slow.db_url, wid) == "delete-in-erp"
    code, doc = resume_after_lease(slow, wid)
    assert (code, doc["state"], doc["in_flight"]) == (0, "DeletedInERP", None), doc
    assert len(deletes(slow_sandbox)) == 1
    history = slow.json("show", str(wid))[1]["history"]
    assert [(e["action"], e["outcome"]) for e in history] == [
        ("start", "succeeded"), ("delete-in-erp", "in_flight"), ("resume", "refused"),
        ("resume", "succeeded")]
    assert slow("audit", "verify").exit_code == 0


def test_unlink_done_by_hand_meanwhile_is_completed(slow: Relink, slow_sandbox: Sandbox) -> None:
    """A killed unlink whose change landed is completed by resume, with no second sync call."""
    wid = started(slow)
    assert slow.json("advance", str(wid), "delete-in-erp")[0] == 0
    process = spawn(slow, "advance", str(wid), "unlink")
    syncs = lambda: [c for c in slow_sandbox.calls() if "external_data" in c["path"]]  # noqa: E731
    kill_when(process, lambda: bool(syncs()))
    code, doc = resume_after_lease(slow, wid)
    assert (code, doc["state"]) == (0, "Unlinked"), doc
    assert len(syncs()) == 1


def test_resume_with_nothing_in_flight(relink: Relink) -> None:
    """resume on a settled correction changes nothing and says so."""
    wid = started(relink)
    code, doc = relink.json("resume", str(wid))
    assert (code, doc["state"]) == (0, "Exported")
    assert doc["message"] == f"Nothing in flight on correction {wid}."


# A step in flight is released only by a probe that proves it did not happen -----------------


def killed_after_the_erp_delete(slow: Relink, slow_sandbox: Sandbox) -> int:
    wid = started(slow)
    process = spawn(slow, "advance", str(wid), "delete-in-erp")
    kill_when(process, lambda: bool(deletes(slow_sandbox)))
    assert in_flight(slow.db_url, wid) == "delete-in-erp"
    time.sleep(lease_ends(slow.db_url, wid) + 0.05)
    return wid


def closed_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_refused_resume_keeps_the_step_in_flight(slow: Relink, slow_sandbox: Sandbox) -> None:
    """A resume by a user without the permission exits 1 and leaves the step in flight, so a
    cancel cannot hide the bill's deletion; ana's resume then completes it, all audited."""
    wid = killed_after_the_erp_delete(slow, slow_sandbox)
    code, doc = slow.json("resume", str(wid), token="sandbox-rita")
    assert code == 1 and doc["in_flight"]["step"] == "delete-in-erp", doc
    code, doc = slow.json("advance", str(wid), "cancel")
    assert code == 4 and f"relink resume {wid}" in doc["message"], doc
    code, doc = slow.json("resume", str(wid))
    assert (code, doc["state"], doc["in_flight"]) == (0, "DeletedInERP", None), doc
    assert len(deletes(slow_sandbox)) == 1
    history = slow.json("show", str(wid))[1]["history"]
    assert [(e["action"], e["outcome"]) for e in history][2:] == [
        ("resume", "refused"), ("cancel", "refused"), ("resume", "succeeded")]
    assert slow("audit", "verify").exit_code == 0


@pytest.mark.parametrize("down", ["RELINK_PROCORE_URL", "RELINK_ERP_URL"])
def test_unavailable_resume_keeps_the_step_in_flight(
    slow: Relink, slow_sandbox: Sandbox, down: str
) -> None:
    """A resume that cannot reach Procore or the ERP exits 3 naming `relink resume`, audited as
    failed, and leaves the step in flight; a later resume settles it."""
    wid = killed_after_the_erp_delete(slow, slow_sandbox)
    url = closed_port() + ("/erp" if down == "RELINK_ERP_URL" else "")
    outcome = slow("--json", "resume", str(wid), **{down: url, **SHORT})
    assert outcome.exit_code == 3, outcome
    assert f"relink resume {wid}" in outcome.stdout + outcome.stderr
    assert "safe to run again" not in outcome.stdout + outcome.stderr
    assert in_flight(slow.db_url, wid) == "delete-in-erp"
    last = slow.json("show", str(wid))[1]["history"][-1]
    assert (last["action"], last["outcome"]) == ("resume", "failed")
    code, doc = slow.json("resume", str(wid))
    assert (code, doc["state"]) == (0, "DeletedInERP"), doc
    assert len(deletes(slow_sandbox)) == 1


def test_resume_cannot_take_a_step_from_a_live_process(
    slow: Relink, slow_sandbox: Sandbox, tmp_path: Path
) -> None:
    """SIGSTOP the owner of reenter: resume is refused while its lease lives (exit 4, naming the
    holder); after it, resume releases the step; SIGCONT: the owner finds its lease lost, sends
    nothing and says so (audited); the re-run creates exactly one invoice."""
    wid = started(slow)
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert slow.json("advance", str(wid), step)[0] == 0
    path = tmp_path / "corrected.json"
    path.write_text('{"invoice_number": "INV-1001-C"}')
    # A lease long enough to outlive a resume's start-up on a loaded machine: the stopped
    # owner cannot renew it, so resume must arrive while it still lives.
    process = spawn(slow, "advance", str(wid), "reenter", "--data", str(path), lease=5)
    deadline = time.monotonic() + 20
    while in_flight(slow.db_url, wid) != "reenter":
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    process.send_signal(signal.SIGSTOP)
    try:
        code, doc = slow.json("resume", str(wid))
        assert code == 4, doc
        assert f"pid {process.pid}" in doc["message"] and "held by ana" in doc["message"], doc
        time.sleep(lease_ends(slow.db_url, wid) + 0.05)
        code, doc = slow.json("resume", str(wid))
        assert (code, doc["state"], doc["in_flight"]) == (0, "DeletedInProcore", None), doc
        assert doc["message"].startswith("Released reenter"), doc
    finally:
        process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 4, (out, err)
    assert b"Overtaken" in out + err and b"Traceback" not in err
    assert created(slow_sandbox) == []
    code, doc = slow.json("advance", str(wid), "reenter", "--data", str(path))
    assert (code, doc["state"]) == (0, "Reentered"), doc
    assert len(created(slow_sandbox)) == 1
    actions = [(e["action"], e["outcome"]) for e in slow.json("show", str(wid))[1]["history"]]
    assert ("reenter", "refused") in actions  # the overtaken owner's entry
    assert slow("audit", "verify").exit_code == 0


def created(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls()
            if c["method"] == "POST" and c["path"].endswith("/requisitions")]


def test_concurrent_resumes_settle_once(slow: Relink, slow_sandbox: Sandbox) -> None:
    """Three `relink resume` at once: one settles the step; the others exit 4 (or find nothing
    in flight) with one clean line each, never a traceback; every attempt is audited."""
    wid = killed_after_the_erp_delete(slow, slow_sandbox)
    racers = [spawn(slow, "--json", "resume", str(wid)) for _ in range(3)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in results)
    for code, out, err in results:
        assert b"Traceback" not in err and len(err.strip().splitlines()) <= 1, err
        assert code in (0, 4), (code, out, err)
    settled = [json.loads(out) for code, out, _ in results if code == 0]
    assert sum(doc["message"] != f"Nothing in flight on correction {wid}." for doc in settled) == 1
    assert codes[0] == 0
    assert stored(slow.db_url, wid).state == "DeletedInERP"
    assert len(deletes(slow_sandbox)) == 1
    history = slow.json("show", str(wid))[1]["history"]
    refused = [e for e in history if (e["action"], e["outcome"]) == ("resume", "refused")]
    assert len(refused) == codes.count(4)
    assert slow("audit", "verify").exit_code == 0
