"""Steps killed between their two transactions are settled by `relink resume`: the remote state
decides, and no remote change is ever made twice. Real `relink` processes, real SIGKILL."""

from __future__ import annotations

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
from tests.conftest import Relink, Sandbox

RELINK = str(Path(sys.executable).with_name("relink"))


@pytest.fixture(name="slow_sandbox")
def fixture_slow_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose every API call takes 400 ms, so a kill can land inside a step."""
    from integrations.sandbox.server import SandboxServer

    with SandboxServer(erp="qbo", latency_ms=400) as server:
        yield Sandbox(url=server.url, erp="qbo", env=dict(server.env()))


@pytest.fixture(name="slow")
def fixture_slow(db_url: str, slow_sandbox: Sandbox) -> Relink:
    return Relink(db_url, slow_sandbox.env)


def spawn(relink: Relink, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **relink.env, "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_DATABASE_URL": relink.db_url, "RELINK_CONFIG": ""}
    return subprocess.Popen([RELINK, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def in_flight(db_url: str, wid: int) -> str | None:
    db = Database(db_url)
    try:
        with db.read() as conn:
            instance = WorkflowStore().get(conn, wid)
    finally:
        db.dispose()
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
    code, doc = slow.json("resume", str(wid))
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
    code, doc = slow.json("resume", str(wid))
    assert (code, doc["state"], doc["in_flight"]) == (0, "DeletedInERP", None), doc
    assert len(deletes(slow_sandbox)) == 1
    history = slow.json("show", str(wid))[1]["history"]
    assert [(e["action"], e["outcome"]) for e in history] == [
        ("start", "succeeded"), ("delete-in-erp", "in_flight"), ("resume", "succeeded")]
    assert slow("audit", "verify").exit_code == 0


def test_unlink_done_by_hand_meanwhile_is_completed(slow: Relink, slow_sandbox: Sandbox) -> None:
    """A killed unlink whose change landed is completed by resume, with no second sync call."""
    wid = started(slow)
    assert slow.json("advance", str(wid), "delete-in-erp")[0] == 0
    process = spawn(slow, "advance", str(wid), "unlink")
    syncs = lambda: [c for c in slow_sandbox.calls() if "external_data" in c["path"]]  # noqa: E731
    kill_when(process, lambda: bool(syncs()))
    code, doc = slow.json("resume", str(wid))
    assert (code, doc["state"]) == (0, "Unlinked"), doc
    assert len(syncs()) == 1


def test_resume_with_nothing_in_flight(relink: Relink) -> None:
    """resume on a settled correction changes nothing and says so."""
    wid = started(relink)
    code, doc = relink.json("resume", str(wid))
    assert (code, doc["state"]) == (0, "Exported")
    assert doc["message"] == f"Nothing in flight on correction {wid}."
