"""The commands around the corrections: init, demo, sandbox serve, workflows, and the real
installed `relink` script."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from engine.db import SCHEMA_REVISION
from tests.conftest import LOOPBACK_TLS, Relink

RELINK = str(Path(sys.executable).with_name("relink"))


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """These commands behave the same on every backend; SQLite is enough."""
    return sqlite_url


@pytest.mark.parametrize("erp", ["qbo", "xero", "intacct"])
def test_demo(relink: Relink, erp: str) -> None:
    """relink demo runs a full correction and two refusals, then verifies the trail."""
    outcome = relink("demo", "--erp", erp, "--db", "")
    assert outcome.exit_code == 0, outcome
    products = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}
    assert f"The requisition is still in {products[erp]}." in outcome.stdout
    assert "Successfully Unlinked" in outcome.stdout
    assert "Audit log verified: 11 entries, chain intact." in outcome.stdout


def test_demo_json(relink: Relink) -> None:
    """relink --json demo prints one document with every step and the verified trail."""
    code, doc = relink.json("demo")
    assert code == 0 and doc["ok"] is True
    assert [s["outcome"] for s in doc["steps"]].count("refused") == 2
    assert doc["verify"]["entries"] == len(doc["audit"]) == 11


def test_init_is_idempotent(tmp_path: Path) -> None:
    """relink init creates the schema once and is safe to run again (real script)."""
    env = {**os.environ, "RELINK_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "RELINK_CONFIG": ""}
    first = subprocess.run([RELINK, "init"], env=env, capture_output=True, text=True)
    second = subprocess.run([RELINK, "init"], env=env, capture_output=True, text=True)
    assert first.returncode == second.returncode == 0
    assert first.stdout.startswith(f"Schema created at {SCHEMA_REVISION}")
    assert second.stdout.startswith(f"Schema already at {SCHEMA_REVISION}")


def test_sandbox_serve(tmp_path: Path) -> None:
    """relink sandbox serve prints the export lines and answers on the port it was given."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [RELINK, "sandbox", "serve", "--port", str(port), "--erp", "xero"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        exported = " ".join(lines)
        assert f"RELINK_PROCORE_URL=http://127.0.0.1:{port}" in exported
        assert "RELINK_ERP=xero" in exported
        health = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=5,
                           verify=LOOPBACK_TLS)
        assert health.json()["product_name"] == "Xero"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert "Traceback" not in stderr


def test_workflows_list_and_show(relink: Relink) -> None:
    """The definitions are listed and shown with their steps and permission policy."""
    code, doc = relink.json("workflows", "list")
    assert code == 0 and doc["workflows"][0]["name"] == "subcontractor-invoice"
    code, doc = relink.json("workflows", "show", "subcontractor-invoice")
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["unlink"]["requires"] == {
        "commitments": ["Admin"], "erp_integrations": ["Standard", "Admin"],
        "can_push_to_accounting": True}
    assert steps["reenter"]["from"] == ["DeletedInProcore"]
    human = relink("workflows", "show", "subcontractor-invoice")
    assert "Can Push to Accounting" in human.stdout


def test_real_script_refusal_exit_code(relink: Relink) -> None:
    """The installed script exits 2 with one line for an unknown id (no traceback)."""
    env = {**os.environ, **relink.env, "RELINK_DATABASE_URL": relink.db_url,
           "RELINK_CONFIG": "", "RELINK_PROCORE_TOKEN": "sandbox-ana"}
    result = subprocess.run([RELINK, "advance", "42", "unlink"], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr == "Error: no correction with id 42\n"
