"""Running the sandbox: uvicorn in a background thread on a loopback port.

``SandboxServer`` is what tests, ``relink demo`` and the benchmarks start; ``serve_forever`` is
``relink sandbox serve``.
"""

from __future__ import annotations

import copy
import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from integrations.http import tls_context
from sandbox import erp_oauth
from sandbox.app import create_app
from sandbox.faults import DEFAULT_TIMEOUT_SECONDS
from sandbox.seed import ERP_TOKEN, OPERATORS, SERVICE_ACCOUNT
from sandbox.world import ERP_PREFIX, SandboxWorld

START_TIMEOUT_SECONDS = 10.0


class _DeliberateResetFilter(logging.Filter):
    """Hides uvicorn's complaint about the answers a ``reset`` fault breaks off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"deliberate_resets": {"()": _DeliberateResetFilter}}
    config["loggers"]["uvicorn.error"]["filters"] = ["deliberate_resets"]
    return config


class SandboxServer:
    """The sandbox served over HTTP in a background thread; a context manager.

    ``port=0`` picks a free port. ``rate_limit`` is Procore's: ``"N/H"`` (N calls per H hours)
    or ``(N, window_seconds)``; ``erp_rate_limit`` the ERP's, in its product's dialect
    (``"60/min,5000/day"``, see :mod:`sandbox.limits`); each a generous default when None.
    Faults start as given here and change with ``POST /_sandbox/faults``.
    """

    def __init__(
        self,
        erp: str = "qbo",
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        rate_limit: str | tuple[int, float] | None = None,
        *,
        fault_kinds: Iterable[str] | None = None,
        fault_seed: int | None = None,
        fault_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        auto_unlink: bool = False,
        token_lifetime: int | None = None,
        erp_rate_limit: str | None = None,
    ) -> None:
        self.world = SandboxWorld(erp, auto_unlink=auto_unlink, token_lifetime=token_lifetime)
        self.host = host
        self.port = port
        self._app = create_app(
            self.world,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            fault_seed=fault_seed,
            rate_limit=rate_limit,
            fault_timeout_seconds=fault_timeout_seconds,
            erp_rate_limit=erp_rate_limit,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def env(self) -> dict[str, str]:
        """The settings that point relink at this sandbox (no Procore token: pick a user's)."""
        return {
            "RELINK_PROCORE_URL": self.url,
            "RELINK_PROCORE_LOGIN_URL": self.url,
            "RELINK_ERP_URL": self.url + ERP_PREFIX,
            "RELINK_COMPANY_ID": "4021",
            "RELINK_ERP": self.world.erp,
            "RELINK_ERP_COMPANY": self.world.erp_company,
            "RELINK_ERP_TOKEN": ERP_TOKEN,
            "RELINK_ERP_TOKEN_URL": self.url + ERP_PREFIX + erp_oauth.TOKEN_PATHS[self.world.erp],
            "RELINK_ERP_AUTHORIZE_URL": (
                self.url + ERP_PREFIX + erp_oauth.AUTHORIZE_PATHS[self.world.erp]
            ),
        }

    def start(self) -> SandboxServer:
        """Bind, serve in a background thread, and return once ``/_sandbox/health`` answers."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on accepted connections (no 40 ms stalls)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            log_config=_log_config(),
            lifespan="off",
            http="h11",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="relink-sandbox", daemon=True
        )
        self._thread.start()
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with httpx.Client(verify=tls_context(False), base_url=self.url, timeout=1.0) as client:
            while True:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the sandbox server stopped while starting")
                if self._server is not None and self._server.started:
                    try:
                        if client.get("/_sandbox/health").status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the sandbox server did not start on {self.url}")
                time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def integrator_env() -> dict[str, str]:
    """The settings of integrator unlink mode with the seeded service account (tests and
    benchmarks that need the link cleared without an operator's click)."""
    return {"RELINK_UNLINK_MODE": "integrator", "RELINK_INTEGRATOR_TOKEN": SERVICE_ACCOUNT.token}


def export_lines(server: SandboxServer) -> list[str]:
    """The shell lines that point relink at ``server``."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in server.env().items()]
    tokens = ", ".join(user.token for user in OPERATORS)
    lines.append(f"# export RELINK_PROCORE_TOKEN=sandbox-ana   (seeded users' tokens: {tokens})")
    lines.append(
        f"# integrator mode: export RELINK_UNLINK_MODE=integrator"
        f" RELINK_INTEGRATOR_TOKEN={SERVICE_ACCOUNT.token}"
    )
    lines.append(
        "# relink login --erp: unset RELINK_ERP_TOKEN; export"
        f" RELINK_ERP_CLIENT_ID={erp_oauth.CLIENT_ID}"
        " RELINK_ERP_REDIRECT_URI=http://localhost/callback"
        f" RELINK_ERP_CLIENT_SECRET={erp_oauth.CLIENT_SECRET}"
    )
    return lines


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8765,
    erp: str = "qbo",
    latency_ms: float = 0,
    fault_rate: float = 0.0,
    rate_limit: str | tuple[int, float] | None = None,
    echo: Callable[[str], object] = print,
    *,
    auto_unlink: bool = False,
    token_lifetime: int | None = None,
    erp_rate_limit: str | None = None,
) -> None:
    """``relink sandbox serve``: print the ``export`` lines, then serve until Ctrl-C."""
    server = SandboxServer(erp, host, port, latency_ms, fault_rate, rate_limit,
                           auto_unlink=auto_unlink, token_lifetime=token_lifetime,
                           erp_rate_limit=erp_rate_limit)
    with server:
        for line in export_lines(server):
            echo(line)
        if token_lifetime is not None:
            echo(f"# issued Procore and ERP access tokens expire after {token_lifetime} s"
                 " (GET /_sandbox/token-grants lists every grant)")
        if auto_unlink:
            echo("# auto-unlink: an invoice whose bill is gone is unlinked when next read,"
                 " as if an operator had clicked Unlink in Procore")
        else:
            echo("# unlink waits for the Unlink click: `relink sandbox click-unlink INVOICE_ID`"
                 " plays it (or serve with --auto-unlink)")
        echo(f"# {server.world.product_name} sandbox listening on {server.url}; Ctrl-C stops it")
        try:
            while server.running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            echo("# stopping the sandbox")
