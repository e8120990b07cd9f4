"""What any CLI user expects around the commands (issue 11, item 15): shell completion of ids and
next steps, `relink config show`, `relink logout`. (`relink doctor`: tests/test_doctor.py.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Relink
from tests.terminal_support import RELINK

NO_DETECTION = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed script, as a shell runs it."""
    environment = {**os.environ, "RELINK_CONFIG": "", **env}
    return subprocess.run([RELINK, *args], env=environment, capture_output=True, text=True,
                          timeout=120)


def started(relink: Relink, invoice: int = 9001) -> str:
    code, doc = relink.json("start", str(invoice), "--project", "101", "--reason", "typo")
    assert code == 0, doc
    return str(doc["id"])


def complete(shell: str, line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What ``relink`` answers the completion request of ``shell`` for the typed ``line``."""
    request = {"_RELINK_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        words = line.split(" ")
        request |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    else:
        request |= {"_TYPER_COMPLETE_ARGS": line}
        if shell == "fish":
            request["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return run([], {**env, **request})


def database(relink: Relink) -> dict[str, str]:
    return {"RELINK_DATABASE_URL": relink.db_url}


# completion ------------------------------------------------------------------------------


def test_bash_completes_correction_ids_through_the_installed_script(
    relink: Relink, tmp_path: Path
) -> None:
    """The script `--show-completion bash` prints, sourced in a real bash: Tab after
    `relink advance ` offers the corrections' ids, newest first."""
    first, second = started(relink, 9001), started(relink, 9003)
    script = run(["--show-completion", "bash"], NO_DETECTION)
    assert script.returncode == 0, script.stderr
    assert "_RELINK_COMPLETE=complete_bash" in script.stdout
    (tmp_path / "relink.bash").write_text(script.stdout)
    probe = (f"source {tmp_path / 'relink.bash'}; COMP_WORDS=(relink advance ''); COMP_CWORD=2;"
             " _relink_completion relink; printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = {**os.environ, **database(relink), "RELINK_CONFIG": "",
           "PATH": f"{Path(RELINK).parent}{os.pathsep}{os.environ['PATH']}"}
    shell = subprocess.run(["bash", "--norc", "-c", probe], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [second, first]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_get_ids_with_their_state(relink: Relink, shell: str) -> None:
    """zsh and fish are offered each id with what it is (its state and subject)."""
    wid = started(relink)
    answer = complete(shell, "relink show ", database(relink))
    assert answer.returncode == 0 and answer.stderr == ""
    assert wid in answer.stdout
    assert "Exported" in answer.stdout and "requisition 9001" in answer.stdout


def test_steps_complete_to_the_next_allowed_ones(relink: Relink) -> None:
    """`relink advance ID <Tab>` offers the steps allowed from the correction's state, and
    follows it as it moves."""
    wid = started(relink)
    offered = complete("bash", f"relink advance {wid} ", database(relink))
    assert offered.stdout.split() == ["delete-in-erp", "confirm-erp-deletion", "cancel"]
    assert complete("bash", f"relink advance {wid} c", database(relink)).stdout.split() == [
        "confirm-erp-deletion", "cancel"]
    assert relink("advance", wid, "delete-in-erp").exit_code == 0
    assert complete("bash", f"relink advance {wid} ", database(relink)).stdout.split() == [
        "unlink"]
    assert complete("bash", "relink advance 999999 ", database(relink)).stdout.split() == []


def test_the_db_option_before_the_command_is_honoured(relink: Relink, tmp_path: Path) -> None:
    """`relink --db URL advance <Tab>` completes from that database, not the environment's."""
    wid = started(relink)
    elsewhere = {"RELINK_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    line = f"relink --db {relink.db_url} advance "
    assert complete("bash", line, elsewhere).stdout.split() == [wid]
    assert complete("bash", "relink advance ", elsewhere).stdout.split() == []


@pytest.mark.parametrize("trouble", ["missing database", "broken config file"])
def test_completion_never_prints_an_error(tmp_path: Path, trouble: str) -> None:
    """A missing database (not created by the attempt) or an unreadable config file completes
    nothing, silently, with exit 0."""
    db = tmp_path / "absent.db"
    env = {"RELINK_DATABASE_URL": f"sqlite:///{db}"}
    if trouble == "broken config file":
        (tmp_path / "relink.toml").write_text("this is = = not toml")
        env["RELINK_CONFIG"] = str(tmp_path / "relink.toml")
    for line in ("relink advance ", "relink advance 1 ", "relink show "):
        answer = complete("bash", line, env)
        assert (answer.returncode, answer.stdout.strip(), answer.stderr) == (0, "", ""), line
    assert not db.exists()


def test_install_completion_writes_the_shell_script(tmp_path: Path) -> None:
    """`relink --install-completion bash` installs the script for bash under HOME."""
    installed = run(["--install-completion", "bash"], {**NO_DETECTION, "HOME": str(tmp_path)})
    assert installed.returncode == 0, installed.stderr
    scripts = list(tmp_path.rglob("relink.sh"))
    assert len(scripts) == 1 and "_RELINK_COMPLETE=complete_bash" in scripts[0].read_text()
    assert str(scripts[0].relative_to(tmp_path)) in (tmp_path / ".bashrc").read_text()


# config show -----------------------------------------------------------------------------


def setting(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(item for item in doc["settings"] if item["key"] == key)


def test_config_show_says_where_each_value_came_from(relink: Relink, tmp_path: Path) -> None:
    """Option, environment, config file and default are each named as the source."""
    config = tmp_path / "relink.toml"
    config.write_text("[http]\nmax_wait = 9\n[procore]\ncompany_id = 4021\n")
    db = f"sqlite:///{tmp_path / 'given.db'}"
    code, doc = relink.json("--config", str(config), "--db", db, "config", "show",
                            RELINK_COMPANY_ID="", RELINK_HTTP_READ_TIMEOUT="7")
    assert code == 0, doc
    assert doc["config_files"] == [{"path": str(config), "trust": "trusted"}]
    assert setting(doc, "database.url") | {"env": None} == {
        "key": "database.url", "env": None, "value": db, "source": "option", "from": "--db"}
    assert (setting(doc, "http.max_wait")["value"], setting(doc, "http.max_wait")["source"],
            setting(doc, "http.max_wait")["from"]) == (9.0, "file", str(config))
    assert setting(doc, "procore.company_id")["source"] == "file"
    assert (setting(doc, "http.read_timeout")["source"],
            setting(doc, "http.read_timeout")["from"]) == ("env", "RELINK_HTTP_READ_TIMEOUT")
    assert (setting(doc, "http.connect_timeout")["source"],
            setting(doc, "http.connect_timeout")["value"]) == ("default", 5.0)
    assert setting(doc, "erp.username")["source"] == "unset"


def test_config_show_names_secrets_but_never_their_values(relink: Relink) -> None:
    """Secrets are set or unset, nothing more: the token is in no output, a database password
    neither."""
    token = "sandbox-ana-0123456789-secret"
    url = "postgresql://relink:hunter2-secret@db.example:5432/relink"
    for args in (["--json", "--db", url, "config", "show"], ["--db", url, "config", "show"]):
        outcome = relink(*args, token=token, RELINK_ERP_TOKEN="erp-secret-value",
                         COLUMNS="80")
        assert outcome.exit_code == 0, outcome
        for secret in (token, "hunter2-secret", "erp-secret-value"):
            assert secret not in outcome.stdout + outcome.stderr
    doc = json.loads(relink("--json", "config", "show", token=token).stdout)
    told = {item["name"]: item["set"] for item in doc["secrets"]}
    assert told["RELINK_PROCORE_TOKEN"] is True
    assert told["RELINK_INTEGRATOR_TOKEN"] is False


def test_config_show_shows_the_policy_in_force(relink: Relink, tmp_path: Path) -> None:
    """A looser step set by a config file: its requirement, the file and the fingerprint."""
    config = tmp_path / "relink.toml"
    config.write_text('[policy.unlink]\ncommitments = ["Admin"]\n'
                      'erp_integrations = ["Read Only", "Standard", "Admin"]\n')
    code, doc = relink.json("--config", str(config), "config", "show")
    assert code == 0, doc
    invoices = doc["policy"]["subcontractor-invoice"]
    assert invoices["fingerprint"].startswith("policy:")
    unlink = next(step for step in invoices["steps"] if step["step"] == "unlink")
    assert unlink["source"] == str(config) and unlink["loosened"]
    assert unlink["requires"]["erp_integrations"] == ["Read Only", "Standard", "Admin"]
    start = next(step for step in invoices["steps"] if step["step"] == "start")
    assert start["source"] == "default" and not start["loosened"]
    assert doc["policy"]["commitment"]["fingerprint"] is None
    text = relink("--config", str(config), "config", "show", COLUMNS="80").stdout
    assert "looser than product.md's, policy:" in text and "loosened:" in text


# logout ----------------------------------------------------------------------------------


def test_logout_removes_the_stored_session(relink: Relink, tmp_path: Path) -> None:
    """`relink logout` removes the Procore session `relink login` stored; a second logout has
    nothing to remove; `--erp` removes the configured ERP's only."""
    config_home = tmp_path / "config"
    folder = config_home / "relink"
    folder.mkdir(parents=True)
    session = {"version": 1, "login_url": "http://x", "api_url": "http://x", "client_id": "c",
               "grant": "client_credentials", "access_token": "t"}
    (folder / "credentials.json").write_text(json.dumps(session))
    (folder / "erp-qbo.json").write_text("{}")
    env = {"XDG_CONFIG_HOME": str(config_home)}
    first = relink("logout", token="", **env)
    assert first.exit_code == 0, first
    assert "Logged out of Procore" in first.stdout
    assert not (folder / "credentials.json").exists()
    assert (folder / "erp-qbo.json").exists()
    code, doc = relink.json("logout", token="", **env)
    assert (code, doc["removed"], doc["system"]) == (0, False, "procore")
    out = relink("logout", "--erp", token="", **env)
    assert out.exit_code == 0 and "Logged out of QuickBooks Online" in out.stdout
    assert not (folder / "erp-qbo.json").exists()


def test_logout_warns_of_a_token_still_in_the_environment(relink: Relink, tmp_path: Path) -> None:
    """A token variable goes on being used after logout: the answer says so."""
    outcome = relink("logout", XDG_CONFIG_HOME=str(tmp_path))
    assert outcome.exit_code == 0
    assert "RELINK_PROCORE_TOKEN is still set" in outcome.stderr


def test_logout_erp_without_an_erp_is_a_usage_error(relink: Relink, tmp_path: Path) -> None:
    """`--erp` with no RELINK_ERP names no session: exit 2, one line."""
    outcome = relink("logout", "--erp", RELINK_ERP="", XDG_CONFIG_HOME=str(tmp_path))
    assert outcome.exit_code == 2
    assert outcome.stderr.count("\n") == 1 and "RELINK_ERP" in outcome.stderr
