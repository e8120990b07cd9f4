"""Shared fixtures: databases on every backend, the sandbox over real loopback HTTP, and a CLI
runner wired to both."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import cli
from engine.db import Database
from integrations.http import tls_context

POSTGRES_URL = os.environ.get("RELINK_TEST_POSTGRES_URL")


def _built_once() -> None:
    """Typer builds the click command tree of an app on every CliRunner.invoke (~40 ms for
    relink's, most of an in-process command's time); `relink` builds it once per process.
    Tests invoke the same tree over and over, so it is built once per test process too."""
    import typer.testing

    build = typer.testing._get_command
    built: dict[int, Any] = {}

    def get_command(app: Any) -> Any:
        if id(app) not in built:
            built[id(app)] = (app, build(app))  # the app kept: its id stays its own
        return built[id(app)][1]

    typer.testing._get_command = get_command


_built_once()
LOOPBACK_TLS = tls_context(False)  # the sandbox speaks plain HTTP: no CA bundle to load
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_schema_url(base: str, schema: str) -> str:
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"



def _fresh_postgres() -> Iterator[str]:
    """A PostgreSQL schema of its own for one test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa

    schema = f"relink_t_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(name="db_url", params=BACKENDS)
def fixture_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised, empty relink database: a real SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relink.db'}"
        urls: Iterator[str] = iter([url])
        cleanup = None
    else:
        cleanup = _fresh_postgres()
        urls = cleanup
    url = next(urls)
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    if cleanup is not None:
        next(cleanup, None)


@pytest.fixture(name="sqlite_url")
def fixture_sqlite_url(tmp_path: Path) -> str:
    """An initialised SQLite file database."""
    url = f"sqlite:///{tmp_path / 'relink.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    return url


# the sandbox -------------------------------------------------------------------------------

# Unlink through External Data Sync with the seeded service account (integrator mode), for the
# tests that need the link cleared without the operator's click (processes killed mid-step...).
INTEGRATOR_ENV = {"RELINK_UNLINK_MODE": "integrator", "RELINK_INTEGRATOR_TOKEN": "sandbox-service"}

_SERVERS: dict[str, Any] = {}


def sandbox_server(erp: str) -> Any:
    """One sandbox server per ERP for the whole session (reset before each test)."""
    from sandbox.server import SandboxServer

    if erp not in _SERVERS:
        server = SandboxServer(erp=erp)
        server.start()
        _SERVERS[erp] = server
    return _SERVERS[erp]


@pytest.fixture(name="stop_sandboxes", scope="session", autouse=True)
def fixture_stop_sandboxes() -> Iterator[None]:
    yield
    for server in _SERVERS.values():
        server.stop()
    _SERVERS.clear()


@dataclass
class Sandbox:
    """A running sandbox and a control client for it."""

    url: str
    erp: str
    env: dict[str, str]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with httpx.Client(verify=LOOPBACK_TLS, base_url=self.url, timeout=10) as client:
            response = client.request(method, f"/_sandbox/{path}", json=body)
            response.raise_for_status()
            return response.json() if response.content else None

    def calls(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "calls"))

    def mutating_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.calls() if c["method"] != "GET"]

    def requisitions(self, project_id: int) -> list[dict[str, Any]]:
        return list(self.control("GET", f"state/requisitions?project_id={project_id}"))

    def bills(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "state/bills"))

    def bill_id(self, qbo_id: int) -> str:
        """The id of a seeded bill in this ERP's format."""
        from sandbox.seed import erp_bill_id

        return erp_bill_id(self.erp, qbo_id)


@pytest.fixture(name="erp", params=["qbo"])
def fixture_erp(request: pytest.FixtureRequest) -> str:
    """The ERP product the sandbox plays (QuickBooks Online unless a test widens it)."""
    return str(request.param)


@pytest.fixture(name="sandbox")
def fixture_sandbox(erp: str) -> Sandbox:
    """The sandbox over real HTTP on loopback, back at its seed."""
    server = sandbox_server(erp)
    sandbox = Sandbox(url=server.url, erp=erp, env=dict(server.env()))
    sandbox.control("POST", "faults", {"rate": 0})
    sandbox.control("POST", "reset")
    # The everyday paths run in the default unlink mode (procore) with the operator's click
    # played by the sandbox; tests of the click itself, or of integrator mode, turn it off.
    sandbox.control("POST", "ui/auto-unlink", {"enabled": True})
    return sandbox


# the CLI -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Relink:
    """Runs `relink` commands in-process (CliRunner) against one database and sandbox."""

    def __init__(self, db_url: str, env: dict[str, str]) -> None:
        self.db_url = db_url
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, token: str = "sandbox-ana", **env: str) -> Outcome:
        environment = {
            **self.env,
            "RELINK_PROCORE_TOKEN": token,
            "RELINK_DATABASE_URL": self.db_url,
            "RELINK_CONFIG": "",
            "NO_COLOR": "1",
            "COLUMNS": "160",
            # a wait for an Unlink click that never comes ends fast
            "RELINK_UNLINK_POLL_SECONDS": "0.1",
            "RELINK_UNLINK_WAIT_SECONDS": "5",
            **env,
        }
        result = self.runner.invoke(
            cli.app, list(args), env=environment, catch_exceptions=False, prog_name="relink"
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def json(self, *args: str, **kwargs: Any) -> Any:
        outcome = self("--json", *args, **kwargs)
        return outcome.exit_code, outcome.json()


@pytest.fixture(name="relink")
def fixture_relink(db_url: str, sandbox: Sandbox) -> Relink:
    """`relink` against a fresh database (every backend) and the seeded sandbox."""
    return Relink(db_url, sandbox.env)
