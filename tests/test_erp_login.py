"""`relink login --erp` and the stored ERP sessions (QuickBooks Online, Xero, Sage Intacct): OAuth
against the sandbox's ERP token endpoints over real HTTP, a temporary user config dir, refresh
before use and after a 401, RELINK_ERP_TOKEN winning, and (acceptance 5) a ten-correction run
with every Procore and ERP token expiring after a few seconds."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

import cli
from engine.credentials import CredentialStore, StoredSession
from engine.login import login_erp
from engine.settings import load_settings
from sandbox.server import SandboxServer
from sandbox.transport import in_process_transport
from sandbox.world import SandboxWorld
from tests.conftest import LOOPBACK_TLS, Outcome, Relink, Sandbox
from tests.test_login import edit
from tests.test_login import token_calls as calls

ERP_CLIENT = {
    "RELINK_ERP_CLIENT_ID": "sandbox-erp-client",
    "RELINK_ERP_REDIRECT_URI": "http://localhost/callback",
    "RELINK_ERP_TOKEN": "",  # the sandbox's fixed token would win over the stored session
}
ERP_SECRET = {"RELINK_ERP_CLIENT_SECRET": "sandbox-erp-secret"}
PROCORE_CLIENT = {"RELINK_PROCORE_CLIENT_ID": "sandbox-client"}
PROCORE_SECRET = {"RELINK_PROCORE_CLIENT_SECRET": "sandbox-secret"}
TOKEN_PATHS = {
    "qbo": "/erp/oauth2/v1/tokens/bearer",
    "xero": "/erp/connect/token",
    "intacct": "/erp/ia/api/v1/oauth2/token",
}
INTACCT_USER = {"RELINK_ERP_USERNAME": "relink-ws@summit-builders"}


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Credentials do not depend on the storage backend."""
    return sqlite_url


@pytest.fixture(name="erp", params=["qbo", "xero", "intacct"])
def fixture_erp(request: pytest.FixtureRequest) -> str:
    """Every ERP product relink signs in to."""
    return str(request.param)


@pytest.fixture(name="config_home")
def fixture_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user config dir of the test's own (platformdirs honours XDG_CONFIG_HOME)."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("RELINK_ERP_TOKEN", "RELINK_ERP_CLIENT_SECRET", "RELINK_PROCORE_TOKEN",
                 "RELINK_PROCORE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(name="stored")
def fixture_stored(config_home: Path, erp: str) -> CredentialStore:
    """The ERP credentials file relink uses in this test."""
    return CredentialStore(config_home / "relink" / f"erp-{erp}.json", system=erp)


def run(relink: Relink, *args: str, input: str | None = None, **env: str) -> Outcome:
    """`relink` with the stored ERP session (no RELINK_ERP_TOKEN), Procore as ana."""
    environment = {**relink.env, "RELINK_PROCORE_TOKEN": "sandbox-ana",
                   "RELINK_DATABASE_URL": relink.db_url, "RELINK_CONFIG": "", "NO_COLOR": "1",
                   "COLUMNS": "160", **ERP_CLIENT, **env}
    result = relink.runner.invoke(cli.app, list(args), env=environment, input=input,
                                  catch_exceptions=False, prog_name="relink")
    return Outcome(result.exit_code, result.stdout, result.stderr)


def login(relink: Relink, erp: str, *args: str) -> Outcome:
    extra = INTACCT_USER if erp == "intacct" else {}
    outcome = run(relink, "login", "--erp", *args, **ERP_SECRET, **extra)
    assert outcome.exit_code == 0, outcome
    return outcome


def grants(sandbox: Sandbox | str) -> list[dict[str, Any]]:
    url = sandbox if isinstance(sandbox, str) else sandbox.url
    with httpx.Client(verify=LOOPBACK_TLS, base_url=url, timeout=10) as client:
        return list(client.get("/_sandbox/token-grants").json())


def start(relink: Relink, **env: str) -> int:
    """Start correcting invoice 9001 (project 101); its id."""
    outcome = run(relink, "--json", "start", "9001", "--project", "101", "--reason", "sign-in",
                  **env)
    assert outcome.exit_code == 0, outcome
    return int(outcome.json()["id"])


def erp_step(relink: Relink, wid: int, *, fails: bool = False, **env: str) -> Outcome:
    """Run the first ERP step of correction ``wid`` (it reads the bill, then deletes it)."""
    outcome = run(relink, "advance", str(wid), "delete-in-erp", "--reason", "sign-in", **env)
    assert outcome.exit_code == (1 if fails else 0), outcome
    return outcome


def follow(url: str) -> str:
    """The operator's browser: open the authorize address, come back with where it redirects."""
    answer = httpx.get(url, follow_redirects=False, timeout=10, verify=LOOPBACK_TLS)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


# signing in ----------------------------------------------------------------------------------


def test_sign_in_with_the_redirected_address_stores_a_private_session(
    sandbox: Sandbox, erp: str, config_home: Path, stored: CredentialStore
) -> None:
    """The authorization code flow: the operator opens the authorize address (client, redirect
    URI, scope, state), pastes the address the browser was sent to; the session is stored 0600
    in a 0700 dir, with the token endpoint, the API it is for and (QuickBooks) the realm."""
    env = {**sandbox.env, **ERP_CLIENT, **ERP_SECRET}
    settings = load_settings(env=env)
    seen: list[str] = []

    def browser(url: str) -> str:
        seen.append(url)
        return follow(url)

    doc = login_erp(settings, env, ask_code=browser, ask_secret=lambda: pytest.fail("asked"))
    assert seen[0].startswith(env["RELINK_ERP_AUTHORIZE_URL"] + "?response_type=code")
    assert "redirect_uri=http://localhost/callback" in seen[0] and "&state=" in seen[0]
    assert (doc["erp"], doc["grant"], doc["refreshable"]) == (erp, "authorization_code", True)
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.path.parent.stat().st_mode) == 0o700
    session = stored.read()
    assert session is not None
    assert (session["system"], session["token_url"], session["api_url"]) == (
        erp, sandbox.url + TOKEN_PATHS[erp], sandbox.url + "/erp")
    assert session["company"] == ("9130357" if erp == "qbo" else None)
    assert session["refresh_token"] and session["expires_at"] > session["obtained_at"]
    assert [(g["system"], g["grant_type"]) for g in grants(sandbox)] == [
        (erp, "authorization_code")]


def test_the_realm_the_sign_in_names_is_the_company(
    relink: Relink, sandbox: Sandbox, erp: str, config_home: Path
) -> None:
    """QuickBooks Online's redirect names the realm: with RELINK_ERP_COMPANY unset, relink
    works in that company."""
    if erp != "qbo":
        pytest.skip("only QuickBooks Online's redirect names the company")
    env = {**sandbox.env, **ERP_CLIENT, **ERP_SECRET, "RELINK_ERP_COMPANY": ""}
    doc = login_erp(load_settings(env=env), env, ask_code=follow, ask_secret=lambda: "")
    assert doc["company"] == "9130357"
    wid = start(relink, RELINK_ERP_COMPANY="")
    erp_step(relink, wid, RELINK_ERP_COMPANY="")


def test_cli_sign_in_through_a_real_process(
    sandbox: Sandbox, erp: str, config_home: Path, tmp_path: Path
) -> None:
    """The installed `relink login --erp` prints the authorize address on stderr, reads the
    redirected address from stdin and stores the session; nothing secret is printed."""
    env = {**os.environ, **sandbox.env, **ERP_CLIENT, **ERP_SECRET, "NO_COLOR": "1",
           "RELINK_CONFIG": "", "RELINK_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    relink = Path(sys.executable).parent / "relink"
    with subprocess.Popen([str(relink), "login", "--erp"], env=env, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None and process.stdin is not None
        url = ""
        while not url:
            text = process.stderr.readline()
            assert text, "relink ended before printing the authorize address"
            url = text.strip() if text.strip().startswith("http") else ""
        out, err = process.communicate(follow(url) + "\n", timeout=60)
    assert process.returncode == 0, err
    product = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}[erp]
    assert out.startswith(f"Signed in to {product} (company {sandbox.env['RELINK_ERP_COMPANY']})")
    assert "sandbox-erp-secret" not in out + err and "sandbox-erp-code" not in out + err
    assert (config_home / "relink" / f"erp-{erp}.json").exists()


def test_sign_in_with_a_bare_code(relink: Relink, erp: str, stored: CredentialStore) -> None:
    """--code takes the bare code too; --json prints one document without a token."""
    extra = INTACCT_USER if erp == "intacct" else {}
    outcome = run(relink, "--json", "login", "--erp", "--code", "sandbox-erp-code",
                  **ERP_SECRET, **extra)
    assert outcome.exit_code == 0, outcome
    doc = outcome.json()
    assert (doc["erp"], doc["grant"], doc["credentials_file"]) == (
        erp, "authorization_code", str(stored.path))
    session = stored.read()
    assert session is not None
    assert session["access_token"] not in outcome.stdout
    assert session["refresh_token"] not in outcome.stdout


def test_an_address_from_another_sign_in_is_refused(
    relink: Relink, stored: CredentialStore
) -> None:
    """A pasted address whose state is not this sign-in's: exit 2, nothing sent, no file."""
    before = len(relink_calls(relink))
    address = "http://localhost/callback?code=sandbox-erp-code&state=forged&realmId=9130357"
    outcome = run(relink, "login", "--erp", "--code", address, **ERP_SECRET)
    assert outcome.exit_code == 2
    assert "state does not match" in outcome.stderr
    assert not stored.path.exists()
    assert len(relink_calls(relink)) == before


def relink_calls(relink: Relink) -> list[Any]:
    with httpx.Client(
            verify=LOOPBACK_TLS, base_url=relink.env["RELINK_PROCORE_URL"], timeout=10) as client:
        return list(client.get("/_sandbox/calls").json())


def test_a_refused_consent_is_a_refusal(relink: Relink, stored: CredentialStore) -> None:
    """The redirect carries error=access_denied: exit 1 in the ERP's words, no file."""
    outcome = run(relink, "login", "--erp", "--code",
                  "http://localhost/callback?error=access_denied&state=x", **ERP_SECRET)
    assert outcome.exit_code == 1
    assert "did not allow relink: access_denied" in outcome.stderr
    assert not stored.path.exists()


def test_wrong_client_secret_is_rejected(relink: Relink, erp: str, stored: CredentialStore) -> None:
    """A wrong client secret: exit 1 in one line, the secret echoed nowhere, no file."""
    outcome = run(relink, "login", "--erp", "--code", "sandbox-erp-code",
                  RELINK_ERP_CLIENT_SECRET="not-the-secret-4711")
    assert outcome.exit_code == 1
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert "rejected the credentials" in outcome.stderr
    assert "not-the-secret-4711" not in outcome.stdout + outcome.stderr
    assert not stored.path.exists()


@pytest.mark.parametrize(("missing", "named"), [
    ("RELINK_ERP_CLIENT_ID", "RELINK_ERP_CLIENT_ID"),
    ("RELINK_ERP_REDIRECT_URI", "RELINK_ERP_REDIRECT_URI"),
    ("RELINK_ERP", "RELINK_ERP"),
])
def test_missing_settings_are_named(
    relink: Relink, stored: CredentialStore, missing: str, named: str
) -> None:
    """No client id, redirect URI or ERP product: exit 2 naming the setting."""
    outcome = run(relink, "login", "--erp", "--code", "x", **ERP_SECRET, **{missing: ""})
    assert outcome.exit_code == 2
    assert named in outcome.stderr and "Traceback" not in outcome.stderr


def test_the_token_endpoint_unreachable_exits_3(relink: Relink, stored: CredentialStore) -> None:
    """The token endpoint cannot be reached: exit 3, nothing stored."""
    outcome = run(relink, "login", "--erp", "--code", "sandbox-erp-code", **ERP_SECRET,
                  RELINK_ERP_TOKEN_URL="http://127.0.0.1:9/token", RELINK_HTTP_MAX_ATTEMPTS="1")
    assert outcome.exit_code == 3
    assert "relink login --erp" in outcome.stderr
    assert not stored.path.exists()


# client credentials ---------------------------------------------------------------------------


def test_client_credentials_where_the_product_has_them(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """Xero (custom connections) and Sage Intacct (naming the Web Services user) sign in with
    client credentials, without a refresh token; QuickBooks Online has no such grant: exit 2."""
    extra = INTACCT_USER if erp == "intacct" else {}
    outcome = run(relink, "login", "--erp", "--client-credentials", **ERP_SECRET, **extra)
    if erp == "qbo":
        assert outcome.exit_code == 2
        assert "QuickBooks Online has no client-credentials grant" in outcome.stderr
        assert grants(sandbox) == [] and not stored.path.exists()
        return
    assert outcome.exit_code == 0, outcome
    doc = stored.read()
    assert doc is not None and doc["grant"] == "client_credentials"
    assert doc["refresh_token"] is None
    subject = INTACCT_USER["RELINK_ERP_USERNAME"] if erp == "intacct" else sandbox.env[
        "RELINK_ERP_COMPANY"]
    assert grants(sandbox) == [{"system": erp, "grant_type": "client_credentials",
                                "subject": subject, "expires_in": grants(sandbox)[0]["expires_in"]}]


def test_intacct_client_credentials_need_the_user(relink: Relink, sandbox: Sandbox) -> None:
    """Sage Intacct's client credentials without RELINK_ERP_USERNAME: exit 2 naming it."""
    if sandbox.erp != "intacct":
        pytest.skip("Sage Intacct only")
    outcome = run(relink, "login", "--erp", "--client-credentials", **ERP_SECRET)
    assert outcome.exit_code == 2
    assert "RELINK_ERP_USERNAME" in outcome.stderr


def test_client_credentials_session_renews_with_its_grant(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """An expired client-credentials session is renewed with that grant (and, for Intacct, the
    user stored at sign-in: RELINK_ERP_USERNAME is not needed any more)."""
    if erp == "qbo":
        pytest.skip("QuickBooks Online has no client credentials")
    login(relink, erp, "--client-credentials")
    wid = start(relink)
    edit(stored, expires_at=1.0)
    erp_step(relink, wid)
    log = grants(sandbox)
    assert [g["grant_type"] for g in log] == ["client_credentials"] * 2
    assert log[0]["subject"] == log[1]["subject"]


# the stored session at work -------------------------------------------------------------------


def test_an_erp_step_uses_the_stored_session(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """With no RELINK_ERP_TOKEN, ERP calls carry the stored token and succeed."""
    login(relink, erp, "--code", "sandbox-erp-code")
    erp_step(relink, start(relink))
    assert not [c for c in calls(sandbox) if c[1].startswith("/erp") and c[2] == 401]


def test_expired_erp_token_is_refreshed_before_use(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """An ERP access token past expires_at is refreshed (rotating, single-use refresh token)
    before the first ERP call, and the new pair replaces the old one in the file."""
    login(relink, erp, "--code", "sandbox-erp-code")
    wid = start(relink)
    old = edit(stored, expires_at=1.0)
    before = len(sandbox.calls())
    erp_step(relink, wid)
    erp_calls = [c for c in calls(sandbox)[before:] if c[1].startswith("/erp")]
    assert erp_calls[0] == ("POST", TOKEN_PATHS[erp], 200)
    assert erp_calls[1][0] == "GET" and erp_calls[1][2] == 200
    new = stored.read()
    assert new is not None
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > new["obtained_at"] and new["refresh_started_at"] is None
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    assert [g["grant_type"] for g in grants(sandbox)] == ["authorization_code", "refresh_token"]


def test_rejected_erp_token_gets_one_refresh(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """A 401 from the ERP on the stored token: one refresh, the call sent again, the pair kept."""
    login(relink, erp, "--code", "sandbox-erp-code")
    wid = start(relink)
    edit(stored, access_token="revoked-erp-token-0000")
    before = len(sandbox.calls())
    erp_step(relink, wid)
    erp_calls = [c for c in calls(sandbox)[before:] if c[1].startswith("/erp")]
    assert [c[2] for c in erp_calls[:3]] == [401, 200, 200]
    assert erp_calls[1][:2] == ("POST", TOKEN_PATHS[erp])
    doc = stored.read()
    assert doc is not None and doc["access_token"] != "revoked-erp-token-0000"


def test_rejected_erp_refresh_says_to_sign_in_again(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """A 401, then a refresh token the ERP refuses: exit 1 saying to run `relink login --erp`
    again; one refresh only."""
    login(relink, erp, "--code", "sandbox-erp-code")
    wid = start(relink)
    edit(stored, access_token="revoked-erp-token-0000", refresh_token="used-refresh-0000")
    before = len(sandbox.calls())
    outcome = erp_step(relink, wid, fails=True)
    assert "no longer accepts the stored refresh token (used or revoked); run `relink login" \
        " --erp` again" in outcome.stdout + outcome.stderr
    erp_calls = [c for c in calls(sandbox)[before:] if c[1].startswith("/erp")]
    assert [c[:2] for c in erp_calls][1:] == [("POST", TOKEN_PATHS[erp])]


def test_environment_erp_token_wins(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """RELINK_ERP_TOKEN is used as given: the stored (expired) session is not touched."""
    login(relink, erp, "--code", "sandbox-erp-code")
    wid = start(relink)
    doc = edit(stored, expires_at=1.0)
    erp_step(relink, wid, RELINK_ERP_TOKEN="sandbox-erp")
    assert [g["grant_type"] for g in grants(sandbox)] == ["authorization_code"]
    assert stored.read() == doc


def test_session_for_another_erp_api_is_not_sent(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """A session stored for another ERP API host is never sent elsewhere: exit 2, no call."""
    login(relink, erp, "--code", "sandbox-erp-code")
    edit(stored, api_url="https://api.example.invalid")
    before = len(sandbox.calls())
    outcome = run(relink, "start", "9001", "--project", "101", "--reason", "x")
    assert outcome.exit_code == 2
    assert "is for https://api.example.invalid" in outcome.stderr
    assert len(sandbox.calls()) == before


def test_erp_credentials_readable_by_others_are_refused(
    relink: Relink, erp: str, stored: CredentialStore
) -> None:
    """An ERP credentials file other users may read is refused (exit 2) until fixed."""
    login(relink, erp, "--code", "sandbox-erp-code")
    os.chmod(stored.path, 0o644)
    outcome = run(relink, "start", "9001", "--project", "101", "--reason", "x")
    assert outcome.exit_code == 2
    assert "chmod 600" in outcome.stderr and "relink login --erp" in outcome.stderr


def test_concurrent_erp_refreshes_use_the_refresh_token_once(
    relink: Relink, sandbox: Sandbox, erp: str, stored: CredentialStore
) -> None:
    """Four sessions (as four processes) finding the ERP token expired refresh once: the file's
    lock makes the others adopt the pair the first stored."""
    login(relink, erp, "--code", "sandbox-erp-code")
    doc = edit(stored, expires_at=1.0)
    sessions = [StoredSession(CredentialStore(stored.path, system=erp), dict(doc))
                for _ in range(4)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda s=s: tokens.append(s.token())) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 4 and len(set(tokens)) == 1
    assert [g["grant_type"] for g in grants(sandbox)] == ["authorization_code", "refresh_token"]
    assert sorted(os.listdir(stored.path.parent)) == [f"erp-{erp}.json", f"erp-{erp}.lock"]


def test_a_short_lived_token_is_not_refreshed_at_every_call(
    relink: Relink, erp: str, stored: CredentialStore
) -> None:
    """The refresh margin is a quarter of the lifetime when that is shorter than a minute: a
    20-second token 5 seconds old is used as it is, at 16 seconds it is refreshed."""
    login(relink, erp, "--code", "sandbox-erp-code")
    now = time.time()
    doc = edit(stored, obtained_at=now - 5, expires_at=now + 15)
    assert StoredSession(stored, dict(doc)).token() == doc["access_token"]
    doc = edit(stored, obtained_at=now - 16, expires_at=now + 4)
    assert StoredSession(stored, dict(doc)).token() != doc["access_token"]


# the sandbox's token endpoints ----------------------------------------------------------------


def test_sandbox_erp_tokens_expire_and_rotate(erp: str) -> None:
    """An issued ERP token works until its (compressed) lifetime is over, then the ERP answers
    401; a refresh token works once; every grant is logged without a token."""
    world = SandboxWorld(erp, token_lifetime=1)
    auth = ("sandbox-erp-client", "sandbox-erp-secret")
    form = {"grant_type": "authorization_code", "code": "sandbox-erp-code",
            "redirect_uri": "http://localhost/callback"}
    with httpx.Client(transport=in_process_transport(world), base_url="http://sandbox") as client:

        def token(fields: dict[str, str]) -> httpx.Response:
            if erp == "intacct":
                return client.post(TOKEN_PATHS[erp], data={**fields, "client_id": auth[0],
                                                           "client_secret": auth[1]})
            return client.post(TOKEN_PATHS[erp], data=fields, auth=auth)

        issued = token(form).json()
        assert issued["expires_in"] == 1 and issued["token_type"].lower() == "bearer"
        assert _read(client, world, issued["access_token"]) == 200
        time.sleep(1.05)  # the lifetime passes (not a measurement: the token must be stale)
        assert _read(client, world, issued["access_token"]) == 401
        refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        renewed = token(refresh)
        assert renewed.status_code == 200
        assert _read(client, world, renewed.json()["access_token"]) == 200
        assert token(refresh).json()["error"] == "invalid_grant"
    log = world.token_grants()
    assert [g["grant_type"] for g in log] == ["authorization_code", "refresh_token"]
    assert {g["system"] for g in log} == {erp}
    assert issued["access_token"] not in json.dumps(log)


def test_sandbox_wants_each_products_client_authentication(erp: str) -> None:
    """Intuit and Xero take the client in a Basic header only; Intacct in the form only."""
    world = SandboxWorld(erp)
    client_fields = {"client_id": "sandbox-erp-client", "client_secret": "sandbox-erp-secret"}
    form = {"grant_type": "authorization_code", "code": "sandbox-erp-code",
            "redirect_uri": "http://localhost/callback"}
    with httpx.Client(transport=in_process_transport(world), base_url="http://sandbox") as client:
        in_form = client.post(TOKEN_PATHS[erp], data=form | client_fields).status_code
        basic = client.post(TOKEN_PATHS[erp], data=form,
                            auth=("sandbox-erp-client", "sandbox-erp-secret")).status_code
    assert (in_form, basic) == ((401, 200) if erp in ("qbo", "xero") else (200, 401))


def _read(client: httpx.Client, world: SandboxWorld, token: str) -> int:
    """The status of reading a seeded bill with ``token``, in the product's own call."""
    bearer = {"Authorization": f"Bearer {token}"}
    if world.erp == "qbo":
        return client.get("/erp/v3/company/9130357/bill/183", headers=bearer).status_code
    if world.erp == "xero":
        return client.get(
            "/erp/api.xro/2.0/Invoices/00000000-0000-4000-8000-000000000183",
            headers=bearer | {"xero-tenant-id": world.erp_company},
        ).status_code
    return client.get("/erp/ia/api/v1/objects/accounts-payable/bill/50183",
                      headers=bearer).status_code


# acceptance 5: a long run with compressed token lifetimes -------------------------------------

LIFETIME = 5  # seconds: every access token, Procore's and the ERP's
STEPS = ("delete-in-erp", "unlink", "delete-in-procore")


@pytest.mark.slow
def test_ten_corrections_with_tokens_expiring_every_few_seconds(
    erp: str, config_home: Path, sqlite_url: str, tmp_path: Path
) -> None:
    """Acceptance 5: the sandbox compresses every token's lifetime to a few seconds; ten full
    corrections through the CLI, signed in to Procore and the ERP by `relink login`: no step
    fails, no call is sent with a stale token, and the grant log shows the Procore and the ERP
    tokens refreshed (at least twice each: the run outlives them twice)."""
    with SandboxServer(erp, token_lifetime=LIFETIME) as server:
        relink = Relink(sqlite_url, {**server.env(), **ERP_CLIENT})
        with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as control:
            control.post("/_sandbox/ui/auto-unlink", json={"enabled": True})  # the click, played
            invoices = _correctable(control, 10)

        def cli_run(*args: str) -> Outcome:
            outcome = relink(*args, token="", **PROCORE_CLIENT)
            assert outcome.exit_code == 0, (args, outcome)
            return outcome

        assert relink("login", "--code", "sandbox-code-ana", token="", **PROCORE_CLIENT,
                      **PROCORE_SECRET).exit_code == 0
        extra = INTACCT_USER if erp == "intacct" else {}
        assert relink("login", "--erp", "--code", "sandbox-erp-code", token="",
                      **ERP_SECRET, **extra).exit_code == 0
        data = tmp_path / "fix.json"
        for position, (invoice, project) in enumerate(invoices):
            if position in (3, 7):  # and maybe more often, if this machine is slow
                _outlive_the_tokens(config_home, erp)
            data.write_text(json.dumps({"invoice_number": f"C-{invoice}"}))
            wid = cli_run("--json", "start", str(invoice), "--project", str(project),
                          "--reason", "long run").json()["id"]
            for step in STEPS:
                cli_run("advance", str(wid), step, "--reason", "long run")
            assert cli_run("--json", "advance", str(wid), "reenter", "--data",
                           str(data)).json()["outcome"] == "succeeded"
        log = grants(server.url)
        with httpx.Client(verify=LOOPBACK_TLS, base_url=server.url, timeout=10) as control:
            rejected = [c for c in control.get("/_sandbox/calls").json() if c["status"] == 401]
    refreshed = Counter(g["system"] for g in log if g["grant_type"] == "refresh_token")
    assert set(refreshed) == {"procore", erp} and min(refreshed.values()) >= 2, log
    assert {g["expires_in"] for g in log} == {LIFETIME}
    assert rejected == []  # renewed before expiry, never sent stale


def _correctable(control: httpx.Client, count: int) -> list[tuple[int, int]]:
    """``count`` synced, approved, deletable invoices whose ERP bill is open and unpaid, each the
    most recent on its commitment (Procore deletes only those), as (invoice, project)."""
    bills = {b["id"]: b for b in control.get("/_sandbox/state/bills").json()}
    invoices = [r for r in control.get("/_sandbox/state/requisitions").json()
                if not r["deleted"]]
    latest: dict[int, int] = {}
    for record in invoices:
        latest[record["commitment_id"]] = max(latest.get(record["commitment_id"], 0),
                                              record["number"])
    found = [
        (r["id"], r["project_id"]) for r in invoices
        if r["status"] == "approved" and r["deletable"] and r["origin_id"] in bills
        and bills[r["origin_id"]]["state"] == "open"
        and latest[r["commitment_id"]] == r["number"]
    ]
    assert len(found) >= count, f"the seed has only {len(found)} correctable invoices"
    return found[:count]


def _outlive_the_tokens(config_home: Path, erp: str) -> None:
    """Wait until both stored access tokens are past their expiry, so that the second half of
    the run cannot finish on the tokens of the first (however fast this machine is)."""
    files = [config_home / "relink" / name for name in ("credentials.json", f"erp-{erp}.json")]
    latest = max(json.loads(path.read_text())["expires_at"] for path in files)
    time.sleep(max(0.0, latest - time.time() + 0.1))
