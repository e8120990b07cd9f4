"""Four-eyes approval (issue "For compliance reviewers", acceptance 2): a policy puts
delete-in-erp under four eyes; the operator's attempt is the request; her own approval is
refused; a second user's lets her run it once; a refused remote attempt consumes it; an expired
one is refused; everything is in the audit log. The CLI against the sandbox over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Relink

POLICY = """
[policy.subcontractor-invoice.delete-in-erp]
require_approval = true
approver = {{ erp_integrations = ["Standard", "Admin"] }}
approval_minutes = {minutes}
"""


@pytest.fixture(name="config")
def fixture_config(tmp_path: Path) -> Path:
    path = tmp_path / "four-eyes.toml"
    path.write_text(POLICY.format(minutes=60))
    return path


def run(relink: Relink, config: Path, *args: str, token: str = "sandbox-ana") -> tuple[int, Any]:
    return relink.json(*args, token=token, RELINK_CONFIG=str(config))


def started(relink: Relink, config: Path, invoice: int) -> int:
    code, doc = run(relink, config, "start", str(invoice), "--project", "101", "--reason", "fix")
    assert code == 0, doc
    return int(doc["id"])


def approvals_of(relink: Relink, wid: int) -> list[tuple[str, str, str | None]]:
    code, doc = relink.json("audit", "log", "--workflow", str(wid), "--format", "json")
    assert code == 0
    return [
        (e["action"], e["outcome"], (e["evidence"].get("approval") or {}).get("status"))
        for e in doc["entries"] if e["evidence"].get("approval")
    ]


def test_four_eyes(relink: Relink, config: Path) -> None:
    wid = started(relink, config, 9001)
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert code == 1 and "needs a second person's approval" in doc["message"], doc
    assert doc["state"] == "Exported"

    code, pending = run(relink, config, "approvals")
    assert [(p["id"], p["step"], p["status"], p["requested_by"]) for p in pending["approvals"]] \
        == [(wid, "delete-in-erp", "requested", "ana@summit.example")]

    code, doc = run(relink, config, "approve", str(wid), "delete-in-erp", "--reason", "mine")
    assert code == 1 and "may not approve it too" in doc["message"], doc
    code, doc = run(relink, config, "approve", str(wid), "delete-in-erp", "--reason", "looks ok",
                    token="sandbox-cara")  # ERP Integrations Read Only: not an approver
    assert code == 1 and "ERP Integrations" in doc["message"], doc
    code, doc = run(relink, config, "approve", str(wid), "delete-in-erp", "--reason", "checked",
                    token="sandbox-ben")
    assert code == 0 and "for ana@summit.example" in doc["message"], doc
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert (code, doc["state"]) == (0, "DeletedInERP"), doc
    assert approvals_of(relink, wid) == [
        ("delete-in-erp", "refused", "requested"),
        ("approve", "refused", "refused"),
        ("approve", "succeeded", "granted"),
        ("delete-in-erp", "in_flight", "consumed"),
        ("delete-in-erp", "succeeded", "consumed"),
    ]
    code, doc = run(relink, config, "show", str(wid))
    approver = [e for e in doc["history"] if e["action"] == "approve" and e["outcome"] ==
                "succeeded"]
    assert approver[0]["actor_login"] == "ben@summit.example"


def test_a_refused_remote_attempt_consumes_the_approval(relink: Relink, config: Path) -> None:
    """9002's bill is paid: the ERP refuses; that attempt used the approval up."""
    wid = started(relink, config, 9002)
    assert run(relink, config, "advance", str(wid), "delete-in-erp")[0] == 1
    assert run(relink, config, "approve", str(wid), "delete-in-erp", "--reason", "ok",
               token="sandbox-ben")[0] == 0
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert code == 1 and doc["message"].startswith("Refused by QuickBooks Online"), doc
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert code == 1 and "needs a second person's approval" in doc["message"], doc
    statuses = [status for _, _, status in approvals_of(relink, wid)]
    # the in-flight entry and the refusal both name the approval they used
    assert statuses == ["requested", "granted", "consumed", "consumed", "requested"]


def test_an_expired_approval_is_refused(relink: Relink, tmp_path: Path) -> None:
    config = tmp_path / "short.toml"
    config.write_text(POLICY.format(minutes=0.002))  # 120 ms
    wid = started(relink, config, 9001)
    assert run(relink, config, "advance", str(wid), "delete-in-erp")[0] == 1
    assert run(relink, config, "approve", str(wid), "delete-in-erp", "--reason", "ok",
               token="sandbox-ben")[0] == 0
    time.sleep(1.1)  # expiry times are whole seconds
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert code == 1 and "expired" in doc["message"], doc
    assert [s for _, _, s in approvals_of(relink, wid)] == ["requested", "granted", "expired"]
    code, doc = run(relink, config, "advance", str(wid), "delete-in-erp")
    assert code == 1 and "needs a second person's approval" in doc["message"]


def test_approval_settings_are_checked(relink: Relink, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[policy.subcontractor-invoice.delete-in-erp]\napproval_minutes = 5\n")
    outcome = relink("list", RELINK_CONFIG=str(config))
    assert outcome.exit_code == 2 and "need require_approval = true" in outcome.stderr
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "x")
    assert code == 0, doc
    outcome = relink("approve", str(doc["id"]), "delete-in-erp", "--reason", "x")
    assert outcome.exit_code == 2 and "needs no approval" in outcome.stderr


def test_whoami_names_the_four_eyes_steps(relink: Relink, config: Path) -> None:
    code, doc = run(relink, config, "whoami", "--project", "101")
    assert code == 0
    steps = {step["step"]: step for step in doc["steps"]}
    assert steps["delete-in-erp"]["approval"]["minutes"] == 60
    assert steps["delete-in-erp"]["approval"]["approver"]["erp_integrations"] == [
        "Standard", "Admin"]
    assert steps["unlink"]["approval"] is None
    human = relink("whoami", "--project", "101", RELINK_CONFIG=str(config))
    assert "a second person's approval" in human.stdout
