"""R6: tokens and secrets never appear in the database, exports, logs, error messages or `--debug`
output; the credentials files are mode 0600. One full scenario with recognisable secrets: the
Procore and ERP client secrets and authorization codes, the ERP token, an environment token, and
every Procore and ERP access and refresh token the sandbox issues along the way."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import cli
from engine.credentials import CredentialStore
from tests.conftest import Outcome, Relink, Sandbox

FIXED_SECRETS = {"sandbox-secret", "sandbox-code-ana", "sandbox-erp", "sandbox-ana",
                 "sandbox-erp-secret", "sandbox-erp-code"}
ERP_CLIENT = {"RELINK_ERP_CLIENT_ID": "sandbox-erp-client",
              "RELINK_ERP_REDIRECT_URI": "http://localhost/callback"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Scenario:
    """Runs commands with the stored session, keeping every output and every token issued."""

    def __init__(self, relink: Relink, store: CredentialStore, erp_store: CredentialStore) -> None:
        self.relink = relink
        self.store = store
        self.erp_store = erp_store
        self.outputs: list[str] = []
        self.secrets = set(FIXED_SECRETS)

    def __call__(self, *args: str, expect: int = 0, input: str | None = None,
                 token: str = "", **env: str) -> Outcome:
        environment = {**self.relink.env, "RELINK_PROCORE_TOKEN": token,
                       "RELINK_DATABASE_URL": self.relink.db_url, "RELINK_CONFIG": "",
                       "NO_COLOR": "1", "COLUMNS": "160",
                       "RELINK_PROCORE_CLIENT_ID": "sandbox-client", **ERP_CLIENT,
                       "RELINK_ERP_TOKEN": "", **env}
        result = self.relink.runner.invoke(cli.app, list(args), env=environment, input=input,
                                           catch_exceptions=False, prog_name="relink")
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        self.outputs.append(outcome.stdout + outcome.stderr)
        self.collect()
        assert outcome.exit_code == expect, (args, outcome)
        return outcome

    def collect(self) -> None:
        """Remember the tokens currently stored (each is a secret from now on)."""
        for store in (self.store, self.erp_store):
            doc = store.read() if store.path.exists() else None
            if doc:
                self.secrets |= {doc[k] for k in ("access_token", "refresh_token") if doc.get(k)}

    def edit(self, store: CredentialStore | None = None, **changes: Any) -> None:
        store = store or self.store
        doc = store.read()
        assert doc is not None
        store.write(doc | changes)


def dump_database(url: str) -> str:
    """Every row of every table, as text."""
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            assert {"workflow", "audit_entry"} <= set(names)
            rows = [f"{name}: {list(conn.execute(sa.text(f'SELECT * FROM {name}')))}"
                    for name in names]
    finally:
        engine.dispose()
    return "\n".join(rows)


def test_no_secret_leaks_anywhere(
    relink: Relink, sandbox: Sandbox, db_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Login, a full correction, refreshes, refusals, failures (also with --debug), an unexpected
    error with --debug, exports: no secret in any output, log record, export, database row or
    database file; the credentials file is 0600 in a 0700 directory."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "stamina", "relink", "uvicorn"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    config_home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    store = CredentialStore(config_home / "relink" / "credentials.json")
    erp_store = CredentialStore(config_home / "relink" / "erp-qbo.json", system="qbo")
    run = Scenario(relink, store, erp_store)
    sandbox.control("POST", "ui/auto-unlink", {"enabled": True})  # the operator's click, played

    # log in: the secret typed at the hidden prompt, the code given as a flag; the same for the ERP
    run("login", "--code", "sandbox-code-ana", input="sandbox-secret\n")
    run("login", "--erp", "--code", "sandbox-erp-code", input="sandbox-erp-secret\n")
    # a full correction with the stored sessions
    data = tmp_path / "fix.json"
    data.write_text(json.dumps({"invoice_number": "INV-1001-C"}))
    wid = json.loads(run("--json", "start", "9001", "--project", "101", "--reason", "r6").stdout)[
        "id"]
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        run("advance", str(wid), step, "--reason", "r6")
    run("advance", str(wid), "reenter", "--data", str(data))
    # the token expires: refreshed before use; then revoked: renewed after the 401
    run.edit(expires_at=1.0)
    other = json.loads(run("--json", "start", "9003", "--project", "101", "--reason", "r6")
                       .stdout)["id"]
    run.edit(access_token="revoked-access-token-1")
    run.secrets.add("revoked-access-token-1")
    run.edit(erp_store, expires_at=1.0)  # the ERP's too: refreshed before use...
    run("advance", str(other), "confirm-erp-deletion")
    run.edit(erp_store, access_token="revoked-erp-access-token-1")  # ...and renewed after a 401
    run.secrets.add("revoked-erp-access-token-1")
    # refusals: wrong order (red), the ERP's business rule, a policy the user does not meet
    third = json.loads(run("--json", "start", "9101", "--project", "102", "--reason", "r6")
                       .stdout)["id"]
    run("advance", str(third), "unlink", expect=1)
    run("advance", str(third), "unlink", expect=1, RELINK_ERP_TOKEN="sandbox-erp")
    paid = json.loads(run("--json", "start", "9002", "--project", "101", "--reason", "r6")
                      .stdout)["id"]
    run("advance", str(paid), "delete-in-erp", expect=1)
    policy = tmp_path / "relink.toml"
    policy.write_text('[policy.cancel]\ncommitments = ["Admin"]\nerp_integrations = ["None"]\n')
    run("--config", str(policy), "advance", str(paid), "cancel", expect=1)
    run("advance", str(third), "unlink", token="not-a-valid-token-9", expect=1)
    run.secrets.add("not-a-valid-token-9")
    # failures: the ERP unreachable (also with --debug), Procore unreachable with an env token
    down = {"RELINK_ERP_URL": f"http://127.0.0.1:{closed_port()}/erp",
            "RELINK_HTTP_MAX_ATTEMPTS": "2", "RELINK_ERP_TOKEN": "sandbox-erp"}
    # nothing was sent (the first read failed): released, not left in flight
    run("advance", str(third), "delete-in-erp", expect=3, **down)
    run("--debug", "advance", str(third), "delete-in-erp", expect=3, **down)
    run("resume", str(third))
    run("--debug", "start", "9005", "--project", "101", "--reason", "r6", expect=3,
        token="sandbox-ana", RELINK_PROCORE_URL=f"http://127.0.0.1:{closed_port()}",
        RELINK_HTTP_MAX_ATTEMPTS="2")
    # an unexpected error deep in a Procore call, with --debug (traceback shown)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated bug in the Procore client")

    with monkeypatch.context() as patch:
        patch.setattr("integrations.procore.ProcoreClient.get_requisition", broken)
        debug = run("--debug", "start", "9005", "--project", "101", "--reason", "r6", expect=70)
    assert "Traceback" in debug.stderr  # --debug does show it, and it holds no secret
    # client credentials, then everything a reviewer can read
    run("login", "--client-credentials", RELINK_PROCORE_CLIENT_SECRET="sandbox-secret")
    run("whoami", "--project", "101")
    run("show", str(wid))
    run("audit", "log", "--format", "json")
    run("audit", "log")
    exports = []
    for fmt in ("jsonl", "csv", "ocsf"):
        out = tmp_path / f"export.{fmt}"
        run("audit", "export", "--format", fmt, "--out", str(out))
        exports.append(out.read_text())
    run("audit", "verify")

    erp_grants = [g["grant_type"] for g in sandbox.control("GET", "token-grants")
                  if g["system"] == "qbo"]
    assert erp_grants == ["authorization_code", "refresh_token", "refresh_token"]
    # tokens from 2 logins and 2 renewals of Procore's, 1 login and 2 renewals of the ERP's
    assert len(run.secrets) >= len(FIXED_SECRETS) + 14
    for path in (store.path, erp_store.path):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    haystacks = {
        "output": "\n".join(run.outputs),
        "exports": "\n".join(exports),
        "logs": "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}"
            for r in caplog.records),
        "database rows": dump_database(db_url),
    }
    assert caplog.records, "nothing was logged: the log check would prove nothing"
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        haystacks["database file"] = raw.decode("latin-1")
    for where, text in haystacks.items():
        leaked = sorted(secret for secret in run.secrets if secret in text)
        assert not leaked, f"secret(s) found in {where}: {[s[:6] + '…' for s in leaked]}"
    assert sorted(os.listdir(store.path.parent)) == [
        "credentials.json", "credentials.lock", "erp-qbo.json", "erp-qbo.lock"]
