"""The CLI as a newcomer meets it (issue "The CLI as a newcomer meets it"), items 1-8: right
answers first, configuration and local conflicts before anything is recorded, the ERP pinned at
start, no stray databases, Ctrl-C that says what next, safe re-entry and a way out."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.db import Database
from tests.conftest import Relink, Sandbox

RELINK = str(Path(sys.executable).parent / "relink")


def started(relink: Relink, invoice: int = 9001, project: int = 101) -> int:
    code, doc = relink.json("start", str(invoice), "--project", str(project), "--reason", "fix")
    assert code == 0, doc
    return int(doc["id"])


def entries(relink: Relink, wid: int) -> list[dict[str, Any]]:
    code, doc = relink.json("audit", "log", "--workflow", str(wid), "--format", "json")
    assert code == 0
    return list(doc["entries"])


def to_deleted_in_procore(relink: Relink, wid: int) -> None:
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        code, doc = relink.json("advance", str(wid), step)
        assert code == 0, doc


# 1. a final state answers before any remote check ------------------------------------------------


def test_unlink_on_a_finished_correction_is_out_of_order_not_red(
    relink: Relink, sandbox: Sandbox
) -> None:
    wid = started(relink)
    assert relink.json("advance", str(wid), "cancel")[0] == 0
    calls = len(sandbox.calls())
    code, doc = relink.json("advance", str(wid), "unlink")
    assert code == 1
    assert doc["message"] == (
        "Refused: unlink is not allowed in state Cancelled. Next: none (the correction is"
        " finished).")
    erp_reads = [c for c in sandbox.calls()[calls:] if c["path"].startswith("/erp")]
    assert erp_reads == []  # no remote check for a step that can no longer come
    # early, the red message stays: the bill is still in the ERP
    other = started(relink, 9101, 102)
    code, doc = relink.json("advance", str(other), "unlink")
    assert code == 1 and "is still in QuickBooks Online" in doc["message"]


# 2. configuration and local conflicts before anything is recorded --------------------------------


def test_missing_erp_configuration_records_nothing(relink: Relink, sandbox: Sandbox) -> None:
    wid = started(relink)
    before = entries(relink, wid)
    calls = len(sandbox.calls())
    for unset in ({"RELINK_ERP_TOKEN": ""}, {"RELINK_ERP": ""}):
        outcome = relink("advance", str(wid), "delete-in-erp", **unset)
        assert outcome.exit_code == 2, outcome.stderr
    assert entries(relink, wid) == before
    assert len(sandbox.calls()) == calls
    code, doc = relink.json("advance", str(wid), "delete-in-erp")  # no conflict left behind
    assert (code, doc["state"]) == (0, "DeletedInERP"), doc


# 3. the ERP product and company are pinned at start -----------------------------------------------


@pytest.mark.parametrize("override", [{"RELINK_ERP_COMPANY": "1111"}, {"RELINK_ERP": "xero"}])
def test_another_erp_company_or_product_is_refused(
    relink: Relink, sandbox: Sandbox, override: dict[str, str]
) -> None:
    wid = started(relink)
    calls = len(sandbox.calls())
    env = dict(override)
    if "RELINK_ERP" in override:
        env["RELINK_ERP_COMPANY"] = "a3f6c1de-0000-4000-8000-000000004021"
    outcome = relink("advance", str(wid), "delete-in-erp", **env)
    assert outcome.exit_code == 2
    assert "QuickBooks Online company 9130357" in outcome.stderr
    assert len(sandbox.calls()) == calls


# 4. no stray databases ----------------------------------------------------------------------------


def test_read_only_commands_refuse_a_missing_database(relink: Relink, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for args in (("audit", "verify"), ("list",), ("show", "1"), ("audit", "log")):
        outcome = relink("--db", f"sqlite:///{missing}", *args)
        assert outcome.exit_code == 5, (args, outcome.stderr)
        assert "run `relink init`" in outcome.stderr
    assert not missing.exists()


def test_init_creates_a_private_file_but_no_folder_it_was_not_given(
    relink: Relink, tmp_path: Path
) -> None:
    nested = tmp_path / "no-such-folder" / "relink.db"
    outcome = relink("--db", f"sqlite:///{nested}", "init")
    assert outcome.exit_code == 2 and "does not exist" in outcome.stderr
    assert not nested.parent.exists()
    path = tmp_path / "fresh.db"
    assert relink("--db", f"sqlite:///{path}", "init").exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_init_creates_the_default_data_folder_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "RELINK_CONFIG": ""}
    env.pop("RELINK_DATABASE_URL", None)
    result = subprocess.run([RELINK, "init"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    folder = home / "data" / "relink"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "relink.db").stat().st_mode) == 0o600


# 5. Ctrl-C says what state the correction is in and what to run -----------------------------------


def test_ctrl_c_while_waiting_for_the_click(relink: Relink, sandbox: Sandbox) -> None:
    sandbox.control("POST", "ui/auto-unlink", {"enabled": False})
    wid = started(relink)
    assert relink.json("advance", str(wid), "delete-in-erp")[0] == 0
    env = {**os.environ, **relink.env, "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_DATABASE_URL": relink.db_url, "RELINK_CONFIG": "",
           "RELINK_UNLINK_POLL_SECONDS": "0.1"}
    process = subprocess.Popen([RELINK, "advance", str(wid), "unlink"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = "/rest/v1.1/requisitions/9001?"
    deadline = time.monotonic() + 30
    while sum(1 for c in sandbox.calls() if c["path"].startswith(path)) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, (out, err)
    said = out + err
    assert "Interrupted: unlink was not sent; nothing changed." in said
    assert f"still in DeletedInERP: run `relink advance {wid} unlink`" in said
    code, shown = relink.json("show", str(wid))
    assert code == 0
    assert (shown["state"], shown["in_flight"]) == ("DeletedInERP", None)
    assert entries(relink, wid)[-1]["message"].startswith("Interrupted:")


# 7. re-entry: validated, shown, confirmed ---------------------------------------------------------


@pytest.mark.parametrize("amount", ["abc", "1e3", "NaN", "1.234", "-"])
def test_bad_amounts_are_refused_locally(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, amount: str
) -> None:
    wid = started(relink)
    to_deleted_in_procore(relink, wid)
    before = entries(relink, wid)
    data = tmp_path / "bad.json"
    data.write_text(json.dumps({"items": [
        {"line_item_id": 55011, "work_completed_this_period": amount}]}))
    posts = [c for c in sandbox.calls() if c["method"] == "POST"]
    outcome = relink("advance", str(wid), "reenter", "--data", str(data))
    assert outcome.exit_code == 2, outcome.stderr
    assert entries(relink, wid) == before
    assert [c for c in sandbox.calls() if c["method"] == "POST"] == posts


def test_a_reentry_that_changes_nothing_needs_as_is(
    relink: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    wid = started(relink)
    to_deleted_in_procore(relink, wid)
    data = tmp_path / "nothing.json"
    data.write_text(json.dumps({"items": []}))
    outcome = relink("advance", str(wid), "reenter", "--data", str(data))
    assert outcome.exit_code == 2 and "--as-is" in outcome.stderr
    code, doc = relink.json("advance", str(wid), "reenter", "--as-is")
    assert (code, doc["state"]) == (0, "Reentered"), doc
    new = {r["id"]: r for r in sandbox.requisitions(101)}[doc["new_invoice_id"]]
    assert new["invoice_number"] == "INV-1001"
    assert [i["work_completed_this_period"] for i in new["items"]] == ["10000.00", "2500.00"]


def test_dry_run_shows_the_difference_and_sends_nothing(
    relink: Relink, sandbox: Sandbox, tmp_path: Path
) -> None:
    wid = started(relink)
    to_deleted_in_procore(relink, wid)
    data = tmp_path / "fix.json"
    data.write_text(json.dumps({"invoice_number": "INV-1001-C", "items": [
        {"line_item_id": 55011, "work_completed_this_period": "-20000.00"}]}))
    posts = [c for c in sandbox.calls() if c["method"] == "POST"]
    code, doc = relink.json("advance", str(wid), "reenter", "--data", str(data), "--dry-run")
    assert code == 0 and doc["dry_run"] is True
    assert {"field": "invoice_number", "before": "INV-1001", "after": "INV-1001-C"} in doc[
        "changes"]
    assert {"field": "items[0].work_completed_this_period", "before": "10000.00",
            "after": "-20000.00"} in doc["changes"]
    assert doc["warnings"] == ["the invoice total changes sign: 12500.00 before, -17500.00 after"]
    human = relink("advance", str(wid), "reenter", "--data", str(data), "--dry-run")
    assert "INV-1001-C" in human.stdout and "changes sign" in human.stdout
    assert [c for c in sandbox.calls() if c["method"] == "POST"] == posts
    assert relink.json("show", str(wid))[1]["state"] == "DeletedInProcore"


# 8. a way out: abandon ----------------------------------------------------------------------------


def test_a_correction_procore_will_not_delete_names_the_way_out_and_can_be_abandoned(
    relink: Relink, sandbox: Sandbox
) -> None:
    """9005 has payments recorded: Procore refuses the delete; the refusal says what to do, and
    abandon ends the correction, recording the remote state as it stands."""
    wid = started(relink, 9005)
    for step in ("delete-in-erp", "unlink"):
        assert relink.json("advance", str(wid), step)[0] == 0
    code, doc = relink.json("advance", str(wid), "delete-in-procore")
    assert code == 1
    assert "payments have been recorded" in doc["message"]
    assert f"`relink abandon {wid} --reason ...`" in doc["message"]
    assert relink("abandon", str(wid)).exit_code == 2  # the reason is required
    code, doc = relink.json("abandon", str(wid), "--reason", "Procore keeps it: payments")
    assert (code, doc["state"], doc["next"]) == (0, "Abandoned", []), doc
    evidence = entries(relink, wid)[-1]["evidence"]
    assert evidence["remote_state"] == {
        "invoice": {"origin_id": None, "erp_status": None}, "invoice_in_procore": True,
        "erp_bill_id": sandbox.bill_id(186), "bill_in_erp": False,
    }
    code, doc = relink.json("advance", str(wid), "delete-in-procore")
    assert code == 1 and "Abandoned" in doc["message"]


def test_a_version_1_correction_runs_under_version_2(relink: Relink, sandbox: Sandbox) -> None:
    """Corrections started before `abandon` existed gain it: version 2 supersedes version 1."""
    wid = started(relink)
    db = Database(relink.db_url)
    try:
        with db.write() as conn:
            conn.exec_driver_sql(f"UPDATE workflow SET version = 1 WHERE id = {wid}")
    finally:
        db.dispose()
    code, doc = relink.json("abandon", str(wid), "--reason", "started in error")
    assert (code, doc["state"], doc["version"]) == (0, "Abandoned", 2), doc
    assert entries(relink, wid)[-1]["workflow_version"] == 2


# 6. verify checks the stored states against the audited history ---------------------------------


def test_verify_finds_a_state_edited_by_hand(relink: Relink, sandbox: Sandbox) -> None:
    wid = started(relink)
    assert relink.json("advance", str(wid), "delete-in-erp")[0] == 0
    code, doc = relink.json("audit", "verify")
    assert code == 0 and doc["states"]["corrections"] == 1, doc
    assert "1 corrections in the state their history leads to" in relink("audit", "verify").stdout
    db = Database(relink.db_url)
    try:
        with db.write() as conn:
            conn.exec_driver_sql(f"UPDATE workflow SET state = 'Reentered' WHERE id = {wid}")
    finally:
        db.dispose()
    outcome = relink("audit", "verify")
    assert outcome.exit_code == 5
    assert (f"correction {wid} is stored in state Reentered, but its audited history leads to"
            " DeletedInERP") in outcome.stderr
