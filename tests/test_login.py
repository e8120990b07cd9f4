"""`relink login` and the stored Procore session: OAuth against the sandbox's /oauth/token over
real HTTP, a temporary user config dir, refresh before use and after a 401, and a refresh that
fails half-way never losing the session."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cli
from engine.credentials import CredentialStore, StoredSession
from integrations.errors import RemoteUnavailable
from sandbox.transport import in_process_transport
from sandbox.world import SandboxWorld
from tests.conftest import Outcome, Relink, Sandbox

CLIENT = {"RELINK_PROCORE_CLIENT_ID": "sandbox-client"}
SECRET = {"RELINK_PROCORE_CLIENT_SECRET": "sandbox-secret"}


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Credentials do not depend on the storage backend."""
    return sqlite_url


@pytest.fixture(name="config_home")
def fixture_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user config dir of the test's own (platformdirs honours XDG_CONFIG_HOME)."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("RELINK_PROCORE_TOKEN", raising=False)
    monkeypatch.delenv("RELINK_PROCORE_CLIENT_SECRET", raising=False)
    return home


@pytest.fixture(name="stored")
def fixture_stored(config_home: Path) -> CredentialStore:
    """The credentials file relink uses in this test."""
    return CredentialStore(config_home / "relink" / "credentials.json")


def run(relink: Relink, *args: str, input: str | None = None, **env: str) -> Outcome:
    """`relink` with the stored session (no RELINK_PROCORE_TOKEN)."""
    if input is None:
        return relink(*args, token="", **(CLIENT | env))
    environment = {**relink.env, "RELINK_PROCORE_TOKEN": "", "RELINK_DATABASE_URL": relink.db_url,
                   "NO_COLOR": "1", **(CLIENT | env)}
    result = relink.runner.invoke(
        cli.app, list(args), env=environment, input=input,
        catch_exceptions=False, prog_name="relink",
    )
    return Outcome(result.exit_code, result.stdout, result.stderr)


def login(relink: Relink, *args: str) -> Outcome:
    outcome = run(relink, "login", *args, **SECRET)
    assert outcome.exit_code == 0, outcome
    return outcome


def token_calls(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    """(method, path without its query, status) of every call the sandbox logged."""
    return [(c["method"], c["path"].partition("?")[0], c["status"]) for c in sandbox.calls()]


def edit(store: CredentialStore, **changes: Any) -> dict[str, Any]:
    doc = store.read()
    assert doc is not None
    store.write(doc | changes)
    return doc | changes


def test_login_with_authorization_code_prompts_for_secret_and_code(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore, config_home: Path
) -> None:
    """Without flags, login prints the authorize URL, asks for the secret (hidden) and the code,
    and stores the session in <config dir>/relink/credentials.json, mode 0600 in a 0700 dir."""
    outcome = run(relink, "login", input="sandbox-secret\nsandbox-code-ben\n")
    assert outcome.exit_code == 0, outcome
    url = (f"{sandbox.url}/oauth/authorize?response_type=code&client_id=sandbox-client"
           "&redirect_uri=urn:ietf:wg:oauth:2.0:oob")
    assert url in outcome.stderr
    assert "sandbox-secret" not in outcome.stdout + outcome.stderr
    last = outcome.stdout.strip().splitlines()[-1]  # (CliRunner echoes typed visible input)
    assert last.startswith("Logged in to Ben Brooks <ben@summit.example>")
    path = config_home / "relink" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    doc = stored.read()
    assert doc is not None
    assert (doc["grant"], doc["client_id"], doc["api_url"]) == (
        "authorization_code", "sandbox-client", sandbox.url)
    assert doc["refresh_token"] and doc["expires_at"] > doc["obtained_at"]
    assert [f for f in os.listdir(path.parent) if f.endswith(".tmp")] == []
    code, me = relink.json("whoami", token="")
    assert (code, me["login"]) == (0, "ben@summit.example")


def test_login_with_code_flag_and_env_secret(relink: Relink, stored: CredentialStore) -> None:
    """--code and RELINK_PROCORE_CLIENT_SECRET need no prompt; --json prints one document."""
    outcome = run(relink, "--json", "login", "--code", "sandbox-code-cara", **SECRET)
    assert outcome.exit_code == 0, outcome
    doc = json.loads(outcome.stdout)
    assert (doc["login"], doc["grant"], doc["refreshable"]) == (
        "cara@summit.example", "authorization_code", True)
    assert "access_token" not in outcome.stdout and "refresh" not in json.dumps(
        {k: v for k, v in doc.items() if k != "refreshable"})


def test_login_with_client_credentials(relink: Relink, stored: CredentialStore) -> None:
    """--client-credentials stores a session of the service account (ana in the sandbox)."""
    outcome = login(relink, "--client-credentials")
    assert "ana@summit.example" in outcome.stdout
    doc = stored.read()
    assert doc is not None and doc["grant"] == "client_credentials"


def test_rejected_code_stores_nothing(relink: Relink, stored: CredentialStore) -> None:
    """An authorization code Procore rejects: exit 1, one line, no credentials file."""
    outcome = run(relink, "login", "--code", "sandbox-code-nobody", **SECRET)
    assert outcome.exit_code == 1
    assert outcome.stderr.strip().splitlines() == [
        "Error: Procore rejected the credentials: The authorization code is invalid."]
    assert not stored.path.exists()


def test_wrong_client_secret_is_rejected(relink: Relink, stored: CredentialStore) -> None:
    """A wrong client secret: exit 1 and the secret is not echoed anywhere."""
    outcome = run(relink, "login", "--client-credentials",
                  RELINK_PROCORE_CLIENT_SECRET="not-the-secret-4711")
    assert outcome.exit_code == 1
    assert "not-the-secret-4711" not in outcome.stdout + outcome.stderr
    assert not stored.path.exists()


def test_login_needs_a_client_id(relink: Relink, stored: CredentialStore) -> None:
    """No client id configured: exit 2 naming the setting."""
    outcome = run(relink, "login", "--code", "x", RELINK_PROCORE_CLIENT_ID="", **SECRET)
    assert outcome.exit_code == 2
    assert "RELINK_PROCORE_CLIENT_ID" in outcome.stderr


def test_login_unavailable_exits_3(relink: Relink, stored: CredentialStore) -> None:
    """The login host unreachable: exit 3, nothing stored."""
    outcome = run(relink, "login", "--client-credentials", **SECRET,
                  RELINK_PROCORE_LOGIN_URL="http://127.0.0.1:9", RELINK_HTTP_MAX_ATTEMPTS="1")
    assert outcome.exit_code == 3
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert not stored.path.exists()


def test_expired_token_is_refreshed_before_use(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """An access token past expires_at is refreshed (single-use refresh token) before the first
    API call, and the new pair replaces the old one in the file."""
    login(relink, "--code", "sandbox-code-ana")
    old = edit(stored, expires_at=1.0)
    before = len(sandbox.calls())
    code, me = relink.json("whoami", token="")
    assert (code, me["login"]) == (0, "ana@summit.example")
    calls = token_calls(sandbox)[before:]
    assert calls[0] == ("POST", "/oauth/token", 200)
    assert calls[1] == ("GET", "/rest/v1.0/me", 200)
    new = stored.read()
    assert new is not None
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > new["obtained_at"] and new["refresh_started_at"] is None
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    code, _ = relink.json("whoami", token="")  # the fresh token is used as it is
    assert code == 0
    assert ("POST", "/oauth/token", 200) not in token_calls(sandbox)[before + 2:]


def test_rejected_stored_token_gets_one_refresh(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """A 401 on the stored token: one refresh, the call is sent again, and the new pair kept."""
    login(relink, "--code", "sandbox-code-ana")
    edit(stored, access_token="revoked-token-0000")
    before = len(sandbox.calls())
    code, me = relink.json("whoami", token="")
    assert (code, me["login"]) == (0, "ana@summit.example")
    assert token_calls(sandbox)[before:before + 3] == [
        ("GET", "/rest/v1.0/me", 401), ("POST", "/oauth/token", 200),
        ("GET", "/rest/v1.0/me", 200)]
    doc = stored.read()
    assert doc is not None and doc["access_token"] != "revoked-token-0000"


def test_rejected_refresh_says_to_log_in_again(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """A 401, then a refresh token Procore refuses: exit 1 saying to run `relink login` again;
    only one refresh is tried."""
    login(relink, "--code", "sandbox-code-ana")
    edit(stored, access_token="revoked-token-0000", refresh_token="used-refresh-0000")
    before = len(sandbox.calls())
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 1
    assert "run `relink login` again" in outcome.stderr
    assert [c[1] for c in token_calls(sandbox)[before:]] == ["/rest/v1.0/me", "/oauth/token"]


def test_refresh_that_cannot_reach_procore_keeps_the_session(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """A refresh failing on the network: exit 3, the stored pair is untouched, and the next run
    (Procore reachable again) refreshes with the same refresh token."""
    login(relink, "--code", "sandbox-code-ana")
    good = edit(stored, expires_at=1.0, login_url="http://127.0.0.1:9")
    outcome = relink("whoami", token="", RELINK_HTTP_MAX_ATTEMPTS="1")
    assert outcome.exit_code == 3
    assert "the stored session is kept" in outcome.stderr
    kept = stored.read()
    assert kept is not None
    assert (kept["access_token"], kept["refresh_token"]) == (
        good["access_token"], good["refresh_token"])
    edit(stored, login_url=sandbox.url)
    code, me = relink.json("whoami", token="")
    assert (code, me["login"]) == (0, "ana@summit.example")


class LosingTransport(httpx.BaseTransport):
    """Delivers the request to the real server, then loses its answer (a read timeout)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        response.read()
        response.close()
        raise httpx.ReadTimeout("answer lost", request=request)

    def close(self) -> None:
        self._inner.close()


def test_refresh_whose_answer_was_lost(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """Procore used the refresh token but its answer never arrived: the old file is kept (the
    failure says so), and the next run, refused by Procore, says clearly to log in again."""
    login(relink, "--code", "sandbox-code-ana")
    doc = edit(stored, expires_at=1.0)
    with LosingTransport() as transport:
        session = StoredSession(stored, doc, transport=transport)
        with pytest.raises(RemoteUnavailable, match="the stored session is kept"):
            session.token()
    kept = stored.read()
    assert kept is not None and kept["refresh_token"] == doc["refresh_token"]
    assert kept["refresh_started_at"] is not None
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 1
    message = outcome.stderr.strip()
    assert "an earlier refresh got no answer" in message
    assert message.endswith("run `relink login` again")


def test_concurrent_refreshes_use_the_refresh_token_once(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """Two sessions (as two processes) finding the token expired refresh once: the file lock
    makes the second adopt the pair the first stored."""
    login(relink, "--code", "sandbox-code-ana")
    doc = edit(stored, expires_at=1.0)
    before = len(sandbox.calls())
    sessions = [StoredSession(CredentialStore(stored.path), dict(doc)) for _ in range(4)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda s=s: tokens.append(s.token())) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 4 and len(set(tokens)) == 1
    assert [c[1] for c in token_calls(sandbox)[before:]] == ["/oauth/token"]


def test_client_credentials_session_renews_with_its_grant(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """An expired client-credentials session is renewed with that grant, even with no refresh
    token stored."""
    login(relink, "--client-credentials")
    edit(stored, expires_at=1.0, refresh_token=None)
    code, me = relink.json("whoami", token="")
    assert (code, me["login"]) == (0, "ana@summit.example")


def test_environment_token_wins_over_the_stored_session(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """RELINK_PROCORE_TOKEN is used as given: the stored (expired) session is not touched."""
    login(relink, "--code", "sandbox-code-ana")
    edit(stored, expires_at=1.0)
    before = len(sandbox.calls())
    code, me = relink.json("whoami", token="sandbox-rita")
    assert (code, me["login"]) == (0, "rita@summit.example")
    assert "/oauth/token" not in [c[1] for c in token_calls(sandbox)[before:]]


def test_session_for_another_procore_is_not_sent(
    relink: Relink, sandbox: Sandbox, stored: CredentialStore
) -> None:
    """A session stored for another API host is never sent elsewhere: exit 2, no call."""
    login(relink, "--code", "sandbox-code-ana")
    edit(stored, api_url="https://api.procore.com")
    before = len(sandbox.calls())
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 2
    assert "is for https://api.procore.com" in outcome.stderr
    assert len(sandbox.calls()) == before


def test_credentials_readable_by_others_are_refused(
    relink: Relink, stored: CredentialStore
) -> None:
    """A credentials file other users may read is refused (exit 2) until fixed."""
    login(relink, "--client-credentials")
    os.chmod(stored.path, 0o644)
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 2
    assert "chmod 600" in outcome.stderr


def test_garbled_credentials_file(relink: Relink, stored: CredentialStore) -> None:
    """An unreadable credentials file: exit 2 saying to log in again, no traceback."""
    stored.path.parent.mkdir(parents=True)
    fd = os.open(stored.path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"version": 1, "access_token": 5')
    os.close(fd)
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 2
    assert "run `relink login` again" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_no_credentials_at_all(relink: Relink, stored: CredentialStore) -> None:
    """Neither a token nor a stored session: exit 2 pointing at both."""
    outcome = relink("whoami", token="")
    assert outcome.exit_code == 2
    assert "RELINK_PROCORE_TOKEN" in outcome.stderr and "relink login" in outcome.stderr


@pytest.fixture(name="no_leftovers")
def fixture_no_leftovers(stored: CredentialStore) -> Iterator[None]:
    yield
    if stored.path.parent.exists():
        assert not [f for f in os.listdir(stored.path.parent) if f.endswith(".tmp")]


def test_writes_are_atomic_and_private(stored: CredentialStore, no_leftovers: None) -> None:
    """Every write goes through a 0600 temporary file renamed over the old one."""
    doc = {"version": 1, "login_url": "http://l", "api_url": "http://a", "client_id": "c",
           "access_token": "t", "grant": "client_credentials"}
    stored.write(doc)
    stored.write(doc | {"access_token": "u"})
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    read = stored.read()
    assert read is not None and read["access_token"] == "u"


def test_sandbox_procore_tokens_expire_and_are_logged() -> None:
    """With a compressed lifetime, an issued Procore token works until it expires, then gets
    401; the grant log names each grant's user, never a token."""
    world = SandboxWorld("qbo", token_lifetime=1)
    form = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    with httpx.Client(transport=in_process_transport(world), base_url="http://sandbox") as client:
        issued = client.post("/oauth/token", data=form | {
            "grant_type": "authorization_code", "code": "sandbox-code-ben"}).json()
        me = {"Authorization": f"Bearer {issued['access_token']}"}
        assert issued["expires_in"] == 1
        assert client.get("/rest/v1.0/me", headers=me).status_code == 200
        time.sleep(1.05)  # the lifetime passes (not a measurement: the token must be stale)
        assert client.get("/rest/v1.0/me", headers=me).status_code == 401
        renewed = client.post("/oauth/token", data=form | {
            "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
        assert renewed.status_code == 200
    assert world.token_grants() == [
        {"system": "procore", "grant_type": "authorization_code", "subject": "ben@summit.example",
         "expires_in": 1},
        {"system": "procore", "grant_type": "refresh_token", "subject": "ben@summit.example",
         "expires_in": 1},
    ]


def test_sandbox_tokens_keep_their_lifetime_without_one(relink: Relink, sandbox: Sandbox) -> None:
    """Without --token-lifetime the sandbox issues Procore's own 5400 s, and the grant log reads
    at GET /_sandbox/token-grants (emptied by a reset)."""
    login(relink, "--client-credentials")
    assert sandbox.control("GET", "token-grants") == [
        {"system": "procore", "grant_type": "client_credentials", "subject": "ana@summit.example",
         "expires_in": 5400}]
    sandbox.control("POST", "reset")
    assert sandbox.control("GET", "token-grants") == []


def test_sandbox_serve_takes_a_token_lifetime(relink: Relink) -> None:
    """`relink sandbox serve --token-lifetime SECONDS` is documented; 0 is a usage error."""
    help_text = relink("sandbox", "serve", "--help").stdout
    assert "--token-lifetime" in help_text
    outcome = relink("sandbox", "serve", "--token-lifetime", "0", "--port", "0")
    assert outcome.exit_code == 2
