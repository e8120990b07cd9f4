"""`relink doctor` checks the set-up against the real sandbox and database: each check with a
status and a fix; exit 0 when none failed, else the highest exit code among the failed ones
(issue 11, item 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.doctor import clock_check
from tests.conftest import POSTGRES_URL, Relink

CHECKS = ["config", "database", "procore", "identity", "permissions", "erp", "unlink", "clock"]


def checks(relink: Relink, *args: str, **env: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    code, doc = relink.json("doctor", *args, **env)
    assert [check["name"] for check in doc["checks"]] == CHECKS, doc
    assert doc["exit_code"] == code
    return code, {check["name"]: check for check in doc["checks"]}


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: check["status"] for name, check in found.items()}


def test_everything_in_place_passes(relink: Relink) -> None:
    """The sandbox and an initialised database: every check passes, exit 0; the identity and
    the clock (read from the answers' Date) are named."""
    code, found = checks(relink, "--project", "101")
    assert code == 0, found
    assert set(statuses(found).values()) == {"ok"}, found
    assert "Ana Alvarez <ana@summit.example>" in found["identity"]["detail"]
    assert "every step of subcontractor-invoice allowed" in found["permissions"]["detail"]
    assert "QuickBooks Online company 9130357 answered" in found["erp"]["detail"]
    assert found["clock"]["detail"].startswith("within")


def test_human_output_has_one_line_per_check_and_a_verdict(relink: Relink) -> None:
    """People read a status and a name per check, then the verdict."""
    outcome = relink("doctor", COLUMNS="80")
    assert outcome.exit_code == 0, outcome
    lines = outcome.stdout.splitlines()
    for name in CHECKS:
        assert any(line.split()[:2] == ["ok", name] for line in lines), (name, outcome.stdout)
    assert lines[-1] == "Every check passed."


def test_a_missing_database_fails_with_exit_5_and_the_rest_still_runs(
    relink: Relink, tmp_path: Path
) -> None:
    """No SQLite file: database fails (exit 5, `relink init`), nothing is created, the remote
    checks still run."""
    missing = tmp_path / "none.db"
    code, found = checks(relink, RELINK_DATABASE_URL=f"sqlite:///{missing}")
    assert code == 5
    assert found["database"]["status"] == "fail" and found["database"]["exit_code"] == 5
    assert "relink init" in found["database"]["fix"]
    assert statuses(found)["identity"] == statuses(found)["erp"] == "ok"
    assert not missing.exists()


def test_rejected_credentials_fail_identity_with_exit_1(relink: Relink) -> None:
    """A token Procore rejects: Procore answered, identity fails (exit 1), permissions skip."""
    code, found = checks(relink, token="not-a-token")
    assert code == 1
    assert statuses(found)["procore"] == "ok"
    assert (found["identity"]["status"], found["identity"]["exit_code"]) == ("fail", 1)
    assert "relink login" in found["identity"]["fix"]
    assert found["permissions"]["status"] == "skip"


def test_an_unreachable_procore_fails_with_exit_3(relink: Relink) -> None:
    """Nothing listens where Procore should: procore fails (exit 3), identity is skipped."""
    code, found = checks(relink, RELINK_PROCORE_URL="http://127.0.0.1:9",
                         RELINK_HTTP_MAX_ATTEMPTS="1")
    assert code == 3
    assert (found["procore"]["status"], found["procore"]["exit_code"]) == ("fail", 3)
    assert statuses(found)["identity"] == "skip"
    assert statuses(found)["erp"] == "ok"


def test_no_erp_configured_fails_with_exit_2(relink: Relink) -> None:
    """RELINK_ERP unset: the erp check fails with exit 2 and says what to set."""
    code, found = checks(relink, RELINK_ERP="")
    assert code == 2
    assert "RELINK_ERP" in found["erp"]["fix"]


def test_erp_credentials_rejected_fail_with_exit_1(relink: Relink) -> None:
    """An ERP token the ERP rejects: exit 1, a fix naming `relink login --erp`."""
    code, found = checks(relink, RELINK_ERP_TOKEN="bogus")
    assert code == 1
    assert found["erp"]["status"] == "fail" and "relink login --erp" in found["erp"]["fix"]


def test_the_worst_failure_decides_the_exit_code(relink: Relink, tmp_path: Path) -> None:
    """Several failures: the exit code is the highest of theirs (5 over 2 over 1)."""
    code, found = checks(relink, token="not-a-token", RELINK_ERP="",
                         RELINK_DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    assert sorted(check["exit_code"] for check in found.values()
                  if check["status"] == "fail") == [1, 2, 5]
    assert code == 5


def test_a_permission_gap_is_a_warning_not_a_failure(relink: Relink) -> None:
    """A read-only user: permissions warn with the gaps and a fix; exit stays 0."""
    code, found = checks(relink, "--project", "101", token="sandbox-rita")
    assert code == 0
    assert found["permissions"]["status"] == "warn"
    assert "may not run" in found["permissions"]["detail"]
    assert found["permissions"]["fix"]


def test_integrator_mode_without_its_token_fails_the_unlink_check(relink: Relink) -> None:
    """Integrator mode needs the service account's token: exit 2 without it."""
    code, found = checks(relink, RELINK_UNLINK_MODE="integrator", RELINK_INTEGRATOR_TOKEN="")
    assert code == 2 and found["unlink"]["status"] == "fail"


def test_a_broken_config_fails_config_and_skips_the_rest(relink: Relink, tmp_path: Path) -> None:
    """Settings that do not load: config fails (exit 2), every other check is skipped."""
    config = tmp_path / "relink.toml"
    config.write_text("[http]\nmax_wait = -1\n")
    code, found = checks(relink, "--project", "101", RELINK_CONFIG=str(config))
    assert code == 2
    assert found["config"]["status"] == "fail" and "max_wait" in found["config"]["detail"]
    assert {found[name]["status"] for name in CHECKS[1:]} == {"skip"}


@pytest.mark.postgres
def test_a_missing_postgres_database_fails_with_exit_3(relink: Relink) -> None:
    """A PostgreSQL database that does not exist: the database check fails (exit 3) with the
    server's words."""
    if not POSTGRES_URL:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/relink_no_such_database"
    code, found = checks(relink, RELINK_DATABASE_URL=url)
    assert code == 3 and found["database"]["exit_code"] == 3
    assert "relink_no_such_database" in found["database"]["detail"]


def test_clock_skew_is_a_warning_naming_the_system() -> None:
    """A clock a minute ahead of Procore's Date: a warning with the fix; in step: ok."""
    assert clock_check([("procore", 0.4), ("qbo", 0.9)]).status == "ok"
    ahead = clock_check([("procore", 60.5), ("qbo", 0.9)])
    assert ahead.status == "warn" and "60 s ahead of Procore's" in ahead.detail
    behind = clock_check([("xero", -30.0)])
    assert behind.status == "warn" and "behind Xero's" in behind.detail
    assert clock_check([]).status == "skip"
