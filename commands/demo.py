"""`relink demo`: the sandbox in-process on a free loopback port, one complete correction and two
refusals, the resulting audit trail, and its verification; and `relink sandbox serve`.

This is the only production module that starts the simulator; it sits beside ``cli.py``, above the
engine, so that nothing in ``engine/`` depends on :mod:`sandbox`.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from commands.app import COLOURS
from commands.render import audit_table
from engine.app import connect_remotes
from engine.db import Database
from engine.errors import EngineError, Unavailable, UsageError
from engine.outcome import Outcome
from engine.reviews import AuditService
from engine.service import CorrectionService
from engine.settings import ERP_PRODUCTS, Settings
from engine.terminal import printable, rich_safe
from sandbox import server as sandbox_server
from sandbox.seed import SERVICE_ACCOUNT

INVOICE, PROJECT = 9001, 101
WORKFLOW = "subcontractor-invoice"
CORRECTION = {"invoice_number": "INV-1001-R1", "comment": "Re-entered with the right number"}


def sandbox_settings(
    env: dict[str, str], database_url: str, *, unlink_mode: str = "procore"
) -> Settings:
    """Settings pointing at a running sandbox (no config file, no environment)."""
    return Settings(
        unlink_mode=unlink_mode,
        unlink_poll_seconds=0.2,
        database_url=database_url,
        procore_url=env["RELINK_PROCORE_URL"],
        procore_login_url=env["RELINK_PROCORE_LOGIN_URL"],
        company_id=int(env["RELINK_COMPANY_ID"]),
        procore_client_id=None,
        erp=env["RELINK_ERP"],
        erp_url=env["RELINK_ERP_URL"],
        erp_company=env["RELINK_ERP_COMPANY"],
        connect_timeout=5.0,
        read_timeout=10.0,
        max_attempts=3,
        max_wait=10.0,
    )


def run_demo(
    *,
    erp: str,
    db_url: str | None,
    console: Console,
    as_json: bool,
    emit: Callable[[Any], None],
    unlink_mode: str = "procore",
) -> int:
    """Run the demo; returns the exit code (0 when everything went as the procedure says)."""
    _check_erp(erp)
    with tempfile.TemporaryDirectory(prefix="relink-demo-") as scratch:
        url = db_url or f"sqlite:///{Path(scratch) / 'demo.db'}"
        db = Database(url)
        db.upgrade()
        if next(AuditService(db).entries(_all(), limit=1), None) is not None:
            db.dispose()  # never mix the demo's entries into a real audit log
            raise UsageError(
                "the demo needs an empty database, and this one already holds audit entries:"
                " give --db a new file, or leave it out for a temporary one"
            )
        with sandbox_server.SandboxServer(erp=erp) as sandbox:
            env = sandbox.env() | {"RELINK_PROCORE_TOKEN": "sandbox-ana",
                                   "RELINK_INTEGRATOR_TOKEN": SERVICE_ACCOUNT.token}
            settings = sandbox_settings(env, url, unlink_mode=unlink_mode)
            service = CorrectionService(
                db, lambda: connect_remotes(settings, env), workflow=WORKFLOW
            )
            say = _Narrator(console, quiet=as_json)
            say.heading(f"relink demo against the sandbox at {sandbox.url} ({erp}), as ana;"
                        f" unlink mode {unlink_mode}")
            click = None
            if unlink_mode == "procore":
                def click() -> None:
                    say.note("# In Procore: ERP Integrations › Subcontractor Invoices › Synced"
                             f" with ERP › Unlink on invoice {INVOICE} (the sandbox plays the"
                             " operator's click)")
                    click_in_sandbox(sandbox.url, "requisition", INVOICE)
            try:
                steps = _scenario(service, say, click)
            finally:
                service.close()
        reviews = AuditService(db)
        trail = list(reviews.entries(_all()))
        verified = reviews.verify()
        db.dispose()
    expected = ["succeeded", "refused", "refused", "succeeded", "succeeded", "succeeded",
                "succeeded"]
    ok = [s["outcome"] for s in steps] == expected
    if as_json:
        emit({"ok": ok, "steps": steps, "audit": trail, "verify": verified})
    else:
        audit_table(console, trail, title="Audit trail")
        console.print(
            f"Audit log verified: {verified['entries']} entries, chain intact.", style="green"
        )
    return 0 if ok else 1


def serve_sandbox(
    *,
    host: str,
    port: int,
    erp: str,
    latency_ms: int,
    fault_rate: float,
    rate_limit: tuple[int, float] | None,
    echo: Callable[[str], None],
    token_lifetime: int | None = None,
    auto_unlink: bool = False,
    erp_rate_limit: str | None = None,
) -> None:
    """`relink sandbox serve`: the simulator on ``host:port`` until interrupted."""
    _check_erp(erp)
    if erp_rate_limit is not None:
        from sandbox.limits import erp_limits

        try:
            erp_limits(erp, erp_rate_limit)
        except ValueError as exc:
            raise UsageError(f"--erp-rate-limit: {exc}") from None
    try:
        sandbox_server.serve_forever(host=host, port=port, erp=erp, latency_ms=latency_ms,
                                     fault_rate=fault_rate, rate_limit=rate_limit, echo=echo,
                                     token_lifetime=token_lifetime, auto_unlink=auto_unlink,
                                     erp_rate_limit=erp_rate_limit)
    except OSError as exc:  # binding the port: busy, not this machine's address, privileged
        raise _bind_error(exc, host, port) from None


def _bind_error(exc: OSError, host: str, port: int) -> EngineError:
    """What a failed bind means, in one line: a busy port is exit 3 (free it or pick another),
    an address or port this user cannot listen on is exit 2 (a wrong --host or --port)."""
    import errno
    import socket

    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return Unavailable(f"port {port} on {host} is already in use (another sandbox?): stop"
                           " what listens there, or pick another --port (--port 0: any free one)")
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"cannot listen on {where}: --host {host} is not an address of this"
                          " machine (127.0.0.1 serves this machine only)")
    if exc.errno == errno.EACCES:
        return UsageError(f"cannot listen on {where}: port {port} needs privileges; pick a"
                          " --port above 1023")
    return Unavailable(f"cannot listen on {where}: {exc.strerror or exc}")


def click_in_sandbox(procore_url: str, item_type: str, item_id: int) -> dict[str, Any]:
    """`relink sandbox click-unlink`: ``POST /_sandbox/ui/unlink`` on the sandbox that
    RELINK_PROCORE_URL names; the ERP request detail it closed."""
    import httpx

    from integrations.http import tls_context

    if (httpx.URL(procore_url).host or "").endswith("procore.com"):
        raise UsageError("click-unlink plays a click in relink's sandbox, not in Procore:"
                         " RELINK_PROCORE_URL must point at `relink sandbox serve`")
    try:
        reply = httpx.post(f"{procore_url}/_sandbox/ui/unlink",
                           json={"item_type": item_type, "item_id": item_id}, timeout=10,
                           verify=tls_context(False))
    except httpx.HTTPError as exc:
        raise Unavailable(f"no sandbox answers at {procore_url}: {exc}") from None
    try:
        body = reply.json()
    except ValueError:
        body = None
    if reply.status_code == 404 and isinstance(body, dict) and "message" in body:
        raise UsageError(f"the sandbox has no {item_type} {item_id}")
    if reply.status_code != 200 or not isinstance(body, dict) or "status" not in body:
        raise UsageError(
            f"{procore_url} is not a relink sandbox (RELINK_PROCORE_URL must point at one)"
        )
    return body


def _check_erp(erp: str) -> None:
    if erp not in ERP_PRODUCTS:
        raise UsageError(f"unknown ERP {erp!r}: use {', '.join(ERP_PRODUCTS)}")


def _all() -> Any:
    from engine.reviews import Filters

    return Filters()


def _scenario(
    service: CorrectionService, say: _Narrator, click: Callable[[], None] | None
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    started = say.run(
        steps, f"relink start {INVOICE} --project {PROJECT} --reason 'Wrong invoice number'",
        lambda: service.start(str(INVOICE), PROJECT, "Wrong invoice number exported to the ERP"),
    )
    wid = started["id"]
    say.run(steps, f"relink advance {wid} delete-in-procore   # wrong order",
            lambda: service.advance(wid, "delete-in-procore"))
    say.run(steps, f"relink advance {wid} unlink   # the bill is still in the ERP",
            lambda: service.advance(wid, "unlink"))
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        if step == "unlink" and click is not None:
            click()
        say.run(steps, f"relink advance {wid} {step}",
                functools.partial(service.advance, wid, step, reason="demo"))
    say.run(steps, f"relink advance {wid} reenter --data corrected.json",
            lambda: service.advance(wid, "reenter", data=dict(CORRECTION), reason="demo"))
    return steps


class _Narrator:
    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet

    def heading(self, text: str) -> None:
        if not self.quiet:
            self.console.print(rich_safe(text), style="bold")

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(rich_safe(text), style="cyan")

    def run(
        self, steps: list[dict[str, Any]], command: str, call: Callable[[], Outcome]
    ) -> dict[str, Any]:
        try:
            outcome = call()
            doc, tone = outcome.document(), str(outcome.kind)
        except EngineError as exc:
            if exc.workflow is None:
                raise
            doc, tone = exc.workflow, "alert" if exc.alert else exc.outcome
        steps.append({"command": command, **doc})
        if not self.quiet:
            self.console.print(rich_safe(f"$ {command}"), style="dim")
            message = printable(doc["message"], newlines=True)
            self.console.print(Text(message, style=COLOURS.get(tone, "")))
            next_steps = ", ".join(doc["next"]) or "—"
            self.console.print(rich_safe(f"  state: {doc['state']}; next: {next_steps}"))
        return doc
