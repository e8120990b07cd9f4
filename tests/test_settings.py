"""relink.toml and the environment: every setting reachable both ways, precedence, the permission
policy overrides honoured end to end, [http] settings reaching the clients, `whoami`."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine.app import connect_remotes, retry_policy
from engine.errors import UsageError
from engine.identity import effective_policy
from engine.settings import KEYS, load_settings
from tests.conftest import Relink, Sandbox
from workflows import registry

INVOICES = "subcontractor-invoice"
# settings as the CLI loads them: a bare [policy.<step>] names the default workflow's steps
load = functools.partial(load_settings, default_workflow=INVOICES)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "relink.example.toml"
# The settings table of spec/cli.md: environment variable -> relink.toml key.
DOCUMENTED = {
    "RELINK_DATABASE_URL": "database.url",
    "RELINK_PROCORE_URL": "procore.api_url",
    "RELINK_PROCORE_LOGIN_URL": "procore.login_url",
    "RELINK_COMPANY_ID": "procore.company_id",
    "RELINK_ERP": "erp.product",
    "RELINK_ERP_URL": "erp.api_url",
    "RELINK_ERP_COMPANY": "erp.company",
}


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Settings do not depend on the storage backend."""
    return sqlite_url


@pytest.fixture(name="config")
def fixture_config(tmp_path: Path) -> Any:
    """Writes a relink.toml and returns its path."""

    def write(text: str) -> str:
        path = tmp_path / "relink.toml"
        path.write_text(text)
        return str(path)

    return write


def test_every_documented_setting_has_an_env_variable_and_a_toml_key() -> None:
    """Each setting of spec/cli.md is read from its environment variable and its toml key."""
    by_env = {env: f"{section}.{key}" for (section, key), (env, _) in KEYS.items()}
    assert {env: by_env.get(env) for env in DOCUMENTED} == DOCUMENTED
    assert all(env and env.startswith("RELINK_") for env, _ in KEYS.values())


def test_precedence_option_env_file_default(tmp_path: Path) -> None:
    """Command-line option > environment > config file > default."""
    path = tmp_path / "relink.toml"
    path.write_text('[database]\nurl = "sqlite:///file.db"\n[procore]\ncompany_id = 1\n'
                    '[http]\nread_timeout = 3.5\n')
    env = {"RELINK_CONFIG": str(path), "RELINK_DATABASE_URL": "sqlite:///env.db",
           "RELINK_COMPANY_ID": "2"}
    settings = load(db="sqlite:///option.db", env=env)
    assert settings.database_url == "sqlite:///option.db"
    assert settings.company_id == 2
    assert settings.read_timeout == 3.5
    assert settings.connect_timeout == 5.0
    assert load(env=env).database_url == "sqlite:///env.db"
    assert load(env={"RELINK_CONFIG": str(path)}).database_url == "sqlite:///file.db"


def test_example_config_is_valid_and_complete() -> None:
    """relink.example.toml loads, names every key and variable, and spells out the default
    permission policy exactly."""
    text = EXAMPLE.read_text()
    settings = load(env={"RELINK_CONFIG": str(EXAMPLE)})
    raw = tomllib.loads(text)
    for (section, key), (env, _) in KEYS.items():
        assert key in raw.get(section, {}), f"{section}.{key} missing from the example"
        assert env is not None and env in text, f"{env} not named in the example"
    invoices = registry.get("subcontractor-invoice")
    default = load(env={})
    assert effective_policy(settings, invoices) == effective_policy(default, invoices)
    assert settings.erp == "qbo" and settings.company_id == 4021


def test_http_settings_reach_the_clients(sandbox: Sandbox, config: Any) -> None:
    """[http] values from the file, and their variables, end up in the clients' retry policy."""
    path = config("[http]\nconnect_timeout = 1.5\nread_timeout = 2.5\nmax_attempts = 7\n"
                  "max_wait = 9.0\nbackoff_initial = 0.01\nbackoff_max = 0.5\npace_below = 3\n")
    env = {**sandbox.env, "RELINK_CONFIG": path, "RELINK_PROCORE_TOKEN": "sandbox-ana",
           "RELINK_HTTP_PACE_BELOW": "4"}
    settings = load(env=env)
    remotes = connect_remotes(settings, env)
    try:
        for client in (remotes.procore, remotes.erp):
            policy = client._http.policy  # type: ignore[attr-defined]
            assert policy == retry_policy(settings)
    finally:
        remotes.close()
    policy = retry_policy(settings)
    assert (policy.connect_timeout, policy.read_timeout, policy.attempts, policy.max_wait) == (
        1.5, 2.5, 7, 9.0)
    assert (policy.backoff_initial, policy.backoff_max, policy.pace_below) == (0.01, 0.5, 4)


def test_max_attempts_from_the_file_bounds_the_retries(
    relink: Relink, sandbox: Sandbox, config: Any
) -> None:
    """With http.max_attempts = 2 a failing read is tried exactly twice, then exit 3."""
    path = config("[http]\nmax_attempts = 2\nbackoff_initial = 0.01\nbackoff_max = 0.02\n")
    sandbox.control("POST", "faults", {"rate": 1.0, "kinds": ["500"], "seed": 1})
    outcome = relink("--config", path, "start", "9001", "--project", "101", "--reason", "x")
    sandbox.control("POST", "faults", {"rate": 0})
    assert outcome.exit_code == 3
    assert [c["path"] for c in sandbox.calls()] == ["/rest/v1.0/me?company_id=4021"] * 2
    assert "after 2 attempts" in outcome.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[policy.unlink]\ncommitments = "Admin"\n', "commitments must be a list"),
        ('[policy.unlink]\ncommitments = ["Owner"]\n', "commitments must be a list"),
        ('[policy.unlink]\ncan_push_to_accounting = "yes"\n', "must be true or false"),
        ('[policy.unlink]\nsuperuser = true\n', "unknown key(s) superuser"),
        ('[policy.teleport]\ncommitments = []\n', "unknown step 'teleport'"),
        ('[http]\nmax_attempts = 0\n', "max_attempts must be between 1 and 20"),
        ('[http]\npace_below = -1\n', "pace_below must not be negative"),
        ('[http]\nretries = 3\n', "unknown setting 'http.retries'"),
        ('[procore]\ntoken = "abc"\n', "is a secret"),
        ('[procore]\nclient_secret = "abc"\n', "RELINK_PROCORE_CLIENT_SECRET"),
        ('[erp]\ntoken = "abc"\n', "RELINK_ERP_TOKEN"),
    ],
)
def test_invalid_config_is_refused_with_one_line(
    relink: Relink, config: Any, text: str, message: str
) -> None:
    """An invalid relink.toml exits 2 with one line naming the file and the problem."""
    path = config(text)
    outcome = relink("--config", path, "list")
    assert outcome.exit_code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and path in lines[0], lines
    with pytest.raises(UsageError):
        load(config=path, env={})


def start(relink: Relink, *extra: str, token: str = "sandbox-ana") -> tuple[int, Any]:
    return relink.json(*extra, "start", "9001", "--project", "101", "--reason", "x", token=token)


def test_policy_override_lets_ben_delete_in_erp(relink: Relink, config: Any) -> None:
    """Without Can Push to Accounting ben may not delete-in-erp; a [policy.delete-in-erp]
    override that drops the privilege lets him, and the audit records the policy applied."""
    code, doc = start(relink)
    assert code == 0
    wid = str(doc["id"])
    code, doc = relink.json("advance", wid, "delete-in-erp", token="sandbox-ben")
    assert (code, doc["outcome"]) == (1, "refused")
    assert "Can Push to Accounting" in doc["message"]
    path = config('[policy.delete-in-erp]\ncommitments = ["Admin"]\n'
                  'erp_integrations = ["Standard", "Admin"]\ncan_push_to_accounting = false\n')
    code, doc = relink.json("--config", path, "advance", wid, "delete-in-erp", token="sandbox-ben")
    assert (code, doc["outcome"], doc["state"]) == (0, "succeeded", "DeletedInERP")
    entries = relink.json("audit", "log", "--workflow", wid, "--format", "json")[1]["entries"]
    done = entries[-1]
    assert (done["actor_login"], done["outcome"]) == ("ben@summit.example", "succeeded")
    assert done["evidence"]["required"] == {
        "commitments": ["Admin"], "erp_integrations": ["Standard", "Admin"],
        "can_push_to_accounting": False}


def test_policy_override_forbids_ana(relink: Relink, config: Any) -> None:
    """A [policy.start] override ana does not meet refuses her start (audited, exit 1)."""
    path = config('[policy.start]\ncommitments = ["Admin"]\nerp_integrations = ["Standard"]\n')
    code, doc = start(relink, "--config", path)
    assert (code, doc["outcome"]) == (1, "refused")
    assert "ERP Integrations Standard (has Admin)" in doc["message"]
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    assert [(e["action"], e["outcome"], e["actor_login"]) for e in entries] == [
        ("start", "refused", "ana@summit.example")]
    assert relink.json("list")[1]["items"] == []


def test_whoami_shows_the_permissions_relink_checks(relink: Relink) -> None:
    """whoami --project lists the levels read from Procore and, per step, what relink requires
    and whether this user passes."""
    code, doc = relink.json("whoami", "--project", "101", token="sandbox-ben")
    assert code == 0
    assert (doc["id"], doc["login"], doc["company_id"], doc["project_id"]) == (
        7002, "ben@summit.example", 4021, 101)
    assert doc["permissions"] == {"commitments": "Admin", "erp_integrations": "Standard",
                                  "can_push_to_accounting": False}
    verdicts = {s["step"]: (s["allowed"], s["missing"]) for s in doc["steps"]}
    assert verdicts == {
        "start": (True, []), "cancel": (True, []), "delete-in-procore": (True, []),
        "reenter": (True, []),
        "delete-in-erp": (False, ["Can Push to Accounting"]),
        "confirm-erp-deletion": (False, ["Can Push to Accounting"]),
        "unlink": (False, ["Can Push to Accounting"]),
        "abandon": (True, []),
    }
    unlink = next(s for s in doc["steps"] if s["step"] == "unlink")
    assert unlink["requires"] == {"commitments": ["Admin"],
                                  "erp_integrations": ["Standard", "Admin"],
                                  "can_push_to_accounting": True}
    human = relink("whoami", "--project", "101", token="sandbox-ben")
    assert human.exit_code == 0
    assert "Ben Brooks <ben@summit.example> (Procore user 7002)" in human.stdout
    assert "not allowed: lacks Can Push to Accounting" in human.stdout


def test_whoami_without_project_and_with_an_override(relink: Relink, config: Any) -> None:
    """Without --project, steps that only a project level decides are left open (None); an
    override in the config file changes the verdicts whoami shows."""
    code, doc = relink.json("whoami", token="sandbox-cara")
    assert code == 0 and "commitments" not in doc["permissions"]
    verdicts = {s["step"]: s["allowed"] for s in doc["steps"]}
    assert verdicts["start"] is None and verdicts["unlink"] is False
    path = config('[policy.unlink]\ncommitments = []\nerp_integrations = ["Read Only"]\n')
    code, doc = relink.json("--config", path, "whoami", token="sandbox-cara")
    assert {s["step"]: s["allowed"] for s in doc["steps"]}["unlink"] is True


def test_whoami_with_a_rejected_token(relink: Relink) -> None:
    """whoami with a token Procore rejects: exit 1, one line."""
    outcome = relink("whoami", token="not-a-token")
    assert outcome.exit_code == 1
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Procore rejected the credentials (HTTP 401): ")
