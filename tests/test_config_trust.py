"""Issue 8, defect 5: what a ./relink.toml may set without an allowance, `relink config allow`,
sessions tied to their host, tokens sent only where they were configured, and a looser policy
named by its fingerprint in whoami, show and audit log."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from engine.policy import fingerprint, policy_in_force
from engine.settings import load_settings
from integrations.errors import RemoteProtocolError
from integrations.procore import ProcoreClient
from tests.audit_support import append, opened
from tests.conftest import Relink, Sandbox
from workflows import registry

INVOICES = "subcontractor-invoice"
# settings as the CLI loads them: a bare [policy.<step>] names the default workflow's steps
load = functools.partial(load_settings, default_workflow=INVOICES)

FINGERPRINT = re.compile(r"policy:[0-9a-f]{16}")
# a read-only user may delete in the ERP: every check of delete-in-erp dropped
EMPTIED = ('[policy.delete-in-erp]\ncommitments = []\nerp_integrations = []\n'
           'can_push_to_accounting = false\n')
# unlink without Can Push to Accounting, for any ERP Integrations level
LOOSER_UNLINK = ('[policy.unlink]\ncommitments = ["Admin"]\n'
                 'erp_integrations = ["Read Only", "Standard", "Admin"]\n')


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Trust in config files does not depend on the storage backend."""
    return sqlite_url


@pytest.fixture(name="workdir", autouse=True)
def fixture_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home, a user config dir (platformdirs honours XDG_CONFIG_HOME) and a working directory
    of the test's own: nothing is read or written outside tmp_path."""
    for name in ("home", "config", "work"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("RELINK_CONFIG", "RELINK_PROCORE_TOKEN", "RELINK_PROCORE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture(name="user_config")
def fixture_user_config(tmp_path: Path) -> Path:
    """The user config dir relink uses in this test."""
    return tmp_path / "config" / "relink"


@dataclass
class Listener:
    """A loopback HTTP server that records every request and answers with ``answer``."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    answer: Callable[[str], tuple[int, dict[str, str], Any]] = (
        lambda path: (200, {}, {"id": 1, "login": "eve@elsewhere.example", "name": "Eve"})
    )


@pytest.fixture(name="listen")
def fixture_listen() -> Iterator[Callable[[], Listener]]:
    """Starts loopback listeners on free ports; stops them after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> Listener:
        listener = Listener()

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                listener.requests.append({"method": self.command, "path": self.path,
                                          "authorization": self.headers.get("Authorization")})
                status, headers, body = listener.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        listener.url = f"http://127.0.0.1:{server.server_address[1]}"
        return listener

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def start(relink: Relink) -> str:
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "x")
    assert code == 0, doc
    return str(doc["id"])


# ./relink.toml without an allowance ---------------------------------------------------------------


def test_working_directory_file_may_not_empty_the_policy(
    relink: Relink, sandbox: Sandbox, workdir: Path
) -> None:
    """A ./relink.toml emptying delete-in-erp's policy is refused (exit 2, the key and
    `relink config allow` named): the read-only user deletes nothing, nothing is audited."""
    wid = start(relink)
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    bills = sandbox.bills()
    before = len(sandbox.calls())
    (workdir / "relink.toml").write_text(EMPTIED)
    outcome = relink("advance", wid, "delete-in-erp", token="sandbox-rita")
    assert outcome.exit_code == 2, outcome
    line = one_line(outcome.stderr)
    assert "policy.delete-in-erp" in line and "relink config allow" in line
    assert len(sandbox.calls()) == before and sandbox.bills() == bills
    (workdir / "relink.toml").unlink()
    assert relink.json("audit", "log", "--format", "json")[1]["entries"] == entries
    assert relink.json("show", wid)[1]["state"] == "Exported"


def test_working_directory_file_may_not_move_an_endpoint(
    relink: Relink, sandbox: Sandbox, workdir: Path, listen: Callable[[], Listener]
) -> None:
    """A ./relink.toml pointing procore.api_url (or another endpoint, or the database) elsewhere
    is refused before anything is sent: the other host never sees the token."""
    elsewhere = listen()
    (workdir / "relink.toml").write_text(f'[procore]\napi_url = "{elsewhere.url}"\n')
    outcome = relink("whoami", token="sandbox-ana-secret", RELINK_PROCORE_URL="")
    assert outcome.exit_code == 2
    assert "procore.api_url" in one_line(outcome.stderr)
    assert elsewhere.requests == []
    for text, key in [(f'[procore]\nlogin_url = "{elsewhere.url}"\n', "procore.login_url"),
                      (f'[erp]\napi_url = "{elsewhere.url}/erp"\n', "erp.api_url"),
                      ('[erp]\nproduct = "xero"\n', "erp.product"),
                      ('[database]\nurl = "sqlite:///other.db"\n', "database.url")]:
        (workdir / "relink.toml").write_text(text)
        outcome = relink("whoami", token="sandbox-ana-secret")
        assert outcome.exit_code == 2 and key in one_line(outcome.stderr), (key, outcome)
    assert elsewhere.requests == [] and not (workdir / "other.db").exists()


def test_working_directory_file_may_tune_http_and_does_not_hide_the_user_config(
    workdir: Path, user_config: Path
) -> None:
    """[http] needs no allowance, and a ./relink.toml overlays the user config dir's file
    instead of replacing it (its database, endpoints and policy stay in force)."""
    user_config.mkdir(parents=True)
    (user_config / "relink.toml").write_text(
        '[database]\nurl = "sqlite:///team.db"\n[procore]\napi_url = "http://127.0.0.1:9"\n'
        '[http]\nread_timeout = 7.0\nmax_attempts = 5\n' + LOOSER_UNLINK)
    (workdir / "relink.toml").write_text("[http]\nmax_attempts = 2\n")
    settings = load(env={})
    assert (settings.database_url, settings.procore_url) == ("sqlite:///team.db",
                                                             "http://127.0.0.1:9")
    assert (settings.read_timeout, settings.max_attempts) == (7.0, 2)
    assert settings.config_files == (user_config / "relink.toml", workdir / "relink.toml")
    assert settings.policy_fingerprints.get(INVOICES) is not None
    assert "unlink" in settings.policy_loosened.get(INVOICES, {})


# relink config allow / deny -----------------------------------------------------------------------


def test_allowed_file_is_trusted_until_it_changes(
    relink: Relink, sandbox: Sandbox, workdir: Path, user_config: Path
) -> None:
    """`relink config allow` records the file's path and SHA-256 (allowed.json, mode 0600); the
    allowed file is then used; any edit voids the allowance; `config deny` withdraws it."""
    path = workdir / "relink.toml"
    path.write_text(f'[procore]\napi_url = "{sandbox.url}"\n' + LOOSER_UNLINK)
    assert relink("whoami", RELINK_PROCORE_URL="").exit_code == 2
    outcome = relink("config", "allow")
    assert outcome.exit_code == 0, outcome
    assert "procore.api_url" in outcome.stdout and "policy.unlink" in outcome.stdout
    allowed = user_config / "allowed.json"
    assert stat.S_IMODE(allowed.stat().st_mode) == 0o600
    files = json.loads(allowed.read_text())["files"]
    assert files[str(path.resolve())]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    code, doc = relink.json("whoami", RELINK_PROCORE_URL="")
    assert code == 0 and FINGERPRINT.fullmatch(doc["policy_fingerprint"])
    path.write_text(path.read_text() + "# an innocent comment\n")
    outcome = relink("whoami", RELINK_PROCORE_URL="")
    assert outcome.exit_code == 2
    assert "changed since it was allowed" in one_line(outcome.stderr)
    assert relink("config", "allow", str(path)).exit_code == 0
    assert relink("whoami", RELINK_PROCORE_URL="").exit_code == 0
    code, doc = relink.json("config", "deny")
    assert (code, doc["removed"]) == (0, True)
    assert relink("whoami", RELINK_PROCORE_URL="").exit_code == 2
    assert relink.json("config", "deny")[1]["removed"] is False


def test_allow_refuses_an_invalid_or_missing_file_and_a_shared_allowances_file(
    relink: Relink, workdir: Path, user_config: Path
) -> None:
    """`config allow` validates the file first; an allowed.json others may change is refused."""
    outcome = relink("config", "allow")
    assert outcome.exit_code == 2 and "not found" in one_line(outcome.stderr)
    (workdir / "relink.toml").write_text('[procore]\ntoken = "abc"\n')
    outcome = relink("config", "allow")
    assert outcome.exit_code == 2 and "is a secret" in one_line(outcome.stderr)
    assert not (user_config / "allowed.json").exists()
    (workdir / "relink.toml").write_text(EMPTIED)
    assert relink("config", "allow").exit_code == 0
    os.chmod(user_config / "allowed.json", 0o666)
    outcome = relink("list")
    assert outcome.exit_code == 2 and "other users" in one_line(outcome.stderr)


# a looser policy from a trusted file --------------------------------------------------------------


def test_looser_policy_from_config_is_accepted_and_flagged_by_whoami(
    relink: Relink, tmp_path: Path
) -> None:
    """A looser policy given with --config is used, and whoami shows its fingerprint and what
    each loosened step now accepts (JSON and human)."""
    path = tmp_path / "looser.toml"
    path.write_text(LOOSER_UNLINK)
    code, doc = relink.json("--config", str(path), "whoami", token="sandbox-cara")
    assert code == 0
    assert FINGERPRINT.fullmatch(doc["policy_fingerprint"])
    assert doc["config_files"] == [str(path)]
    unlink = next(s for s in doc["steps"] if s["step"] == "unlink")
    assert unlink["loosened"] == ["ERP Integrations Read Only", "no Can Push to Accounting"]
    assert all(s["loosened"] == [] for s in doc["steps"] if s["step"] != "unlink")
    human = relink("--config", str(path), "whoami", token="sandbox-cara")
    assert human.exit_code == 0
    assert f"policy: loosened {doc['policy_fingerprint']}" in human.stdout
    assert relink.json("whoami", token="sandbox-cara")[1]["policy_fingerprint"] is None


def test_fingerprint_names_the_policy_in_force_only_when_looser(tmp_path: Path) -> None:
    """The default spelled out, or a stricter policy, has no fingerprint; a looser one has
    `policy:` + 16 hex digits of the policy in force, whatever the order of the file."""
    example = Path(__file__).resolve().parent.parent / "relink.example.toml"
    assert load(config=str(example), env={}).policy_fingerprints == {}
    stricter = tmp_path / "stricter.toml"
    stricter.write_text('[policy.reenter]\ncommitments = ["Admin"]\n'
                        '[policy.start]\ncommitments = ["Admin"]\nerp_integrations = ["Admin"]\n')
    assert load(config=str(stricter), env={}).policy_fingerprints == {}
    one, other = tmp_path / "one.toml", tmp_path / "other.toml"
    one.write_text(LOOSER_UNLINK + EMPTIED)
    other.write_text(EMPTIED + LOOSER_UNLINK.replace('"Read Only", "Standard"',
                                                     '"Standard", "Read Only"'))
    settings = load(config=str(one), env={})
    same = load(config=str(other), env={})
    assert settings.policy_fingerprints == same.policy_fingerprints
    invoices = registry.get("subcontractor-invoice")
    in_force = policy_in_force(invoices, settings.policy["subcontractor-invoice"])
    assert settings.policy_fingerprints["subcontractor-invoice"] == fingerprint(invoices, in_force)
    assert sorted(settings.policy_loosened.get(INVOICES, {})) == ["delete-in-erp", "unlink"]


def test_show_and_audit_log_mark_entries_a_loosened_policy_governed(
    relink: Relink, db_url: str
) -> None:
    """An entry whose evidence holds policy_fingerprint is marked in `show` and `audit log`;
    others are not."""
    wid = start(relink)
    with opened(db_url) as db:
        last = relink.json("audit", "log", "--format", "json")[1]["entries"][-1]
        fields = {k: last[k] for k in last if k not in ("seq", "recorded_at", "prev_hash", "hash")}
        append(db, [fields | {"action": "cancel", "outcome": "refused", "message": "no",
                              "evidence": {"policy_fingerprint": "policy:0123456789abcdef"}}])
    for args in (("show", wid), ("audit", "log")):
        outcome = relink(*args)
        assert outcome.exit_code == 0, outcome
        assert outcome.stdout.count("policy: loosened policy:0123456789abcdef") == 1
    from commands.render import audit_table

    out = io.StringIO()
    audit_table(Console(file=out, width=160, no_color=True),
                [{**last, "evidence": {}}])
    assert "loosened" not in out.getvalue()


# sessions and tokens stay with their host ---------------------------------------------------------


def test_stored_session_is_used_only_with_its_own_procore(
    relink: Relink, sandbox: Sandbox, workdir: Path, listen: Callable[[], Listener]
) -> None:
    """A session from `relink login` is not sent to another Procore API URL, whether from the
    environment or from an allowed ./relink.toml: exit 2 naming `relink login`."""
    client = {"RELINK_PROCORE_CLIENT_ID": "sandbox-client",
              "RELINK_PROCORE_CLIENT_SECRET": "sandbox-secret"}
    assert relink("login", "--client-credentials", token="", **client).exit_code == 0
    assert relink("whoami", token="").exit_code == 0
    elsewhere = listen()
    outcome = relink("whoami", token="", RELINK_PROCORE_URL=elsewhere.url)
    assert outcome.exit_code == 2 and "relink login" in one_line(outcome.stderr)
    (workdir / "relink.toml").write_text(f'[procore]\napi_url = "{elsewhere.url}"\n')
    assert relink("config", "allow").exit_code == 0
    outcome = relink("whoami", token="", RELINK_PROCORE_URL="")
    assert outcome.exit_code == 2 and "relink login" in one_line(outcome.stderr)
    assert elsewhere.requests == []


def test_a_redirect_is_not_followed_with_the_token(
    relink: Relink, listen: Callable[[], Listener]
) -> None:
    """Procore answering with a redirect to another host: exit 3, that host gets nothing."""
    elsewhere, procore = listen(), listen()
    procore.answer = lambda path: (307, {"Location": f"{elsewhere.url}{path}"}, {})
    outcome = relink("whoami", token="sandbox-ana-secret", RELINK_PROCORE_URL=procore.url)
    assert outcome.exit_code == 3
    assert "redirect" in one_line(outcome.stderr)
    assert [r["authorization"] for r in procore.requests] == ["Bearer sandbox-ana-secret"]
    assert elsewhere.requests == []


def test_the_token_never_goes_to_an_absolute_url_or_a_link_header(
    listen: Callable[[], Listener],
) -> None:
    """A request for another host's URL is refused before it leaves, and a pagination Link to
    another host only says there is a next page: the next page comes from the configured host."""
    elsewhere, procore = listen(), listen()
    requisition = {"id": 5, "project_id": 101, "commitment_id": 7, "status": "approved"}
    procore.answer = lambda path: (
        (200, {"Link": f'<{elsewhere.url}/rest/v1.1/requisitions?page=2>; rel="next"'},
         [requisition])
        if "page=1" in path else (200, {}, [])
    )
    with ProcoreClient(procore.url, "tok-secret", 4021) as client:
        with pytest.raises(RemoteProtocolError, match="refused to send"):
            client._http.request("GET", f"{elsewhere.url}/rest/v1.0/me")
        assert [r.id for r in client.find_requisitions(101)] == [5]
    assert elsewhere.requests == []
    assert [("page=2" in r["path"], r["authorization"]) for r in procore.requests] == [
        (False, "Bearer tok-secret"), (True, "Bearer tok-secret")]
