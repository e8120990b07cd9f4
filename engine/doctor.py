"""`relink doctor`: is everything a correction needs in place? Each check says what it found and,
when something is amiss, how to fix it.

The checks, in order (a check whose premise failed is skipped):

* ``config``: the settings and config files load;
* ``database``: reachable, at the schema this relink expects (nothing is created or upgraded);
* ``procore``: the Procore API answers (``GET /rest/v1.0/me``);
* ``identity``: the token is accepted, and whose it is;
* ``permissions``: the levels and privileges relink checks, and which steps of the workflow they
  allow (project tools only with a project);
* ``erp``: the ERP is configured, answers and accepts the credentials (a read of something
  that does not exist: nothing is written; integrations.probe);
* ``unlink``: how links are cleared (the operator's click, or integrator mode's service token);
* ``clock``: this machine's clock against the ``Date`` of Procore's and the ERP's answers.

Nothing is written anywhere and nothing is audited. A failed check carries the engine error it
stands for; the CLI maps it to its exit code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import CredentialsRejected, EngineError, Refused, Unavailable, UsageError
from engine.settings import Settings
from integrations.errors import (
    RemoteError,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.waiting import WaitHook

CLOCK_WARN = 5.0  # seconds of skew worth a word (Date is in whole seconds)


@dataclass(frozen=True)
class Check:
    """One check: ``status`` is ``ok``, ``warn``, ``fail`` or ``skip``; ``error`` is what a
    failed one stands for."""

    name: str
    status: str
    detail: str
    fix: str = ""
    error: EngineError | None = None

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix or None}


def diagnose(
    load: Callable[[], Settings],
    *,
    workflow: str,
    project_id: int | None = None,
    env: Mapping[str, str] | None = None,
    on_wait: WaitHook | None = None,
) -> list[Check]:
    """Every check, in order; ``load`` reads the settings (a UsageError fails ``config``)."""
    env = os.environ if env is None else env
    checks = []
    try:
        settings = load()
    except EngineError as exc:
        fix = "fix the setting named (`relink config show` lists them and their sources)"
        return [Check("config", "fail", exc.message, fix, exc),
                *_skipped(("database", *_REMOTE_CHECKS), "the settings did not load")]
    files = ", ".join(str(path) for path in settings.config_files) or "no config file"
    checks.append(Check("config", "ok", f"settings loaded ({files})"))
    checks.append(_database(settings))
    skew: list[tuple[str, float]] = []
    checks += _procore(settings, env, workflow, project_id, on_wait, skew)
    checks.append(_erp(settings, env, on_wait, skew))
    checks.append(_unlink(settings, env))
    checks.append(clock_check(skew))
    return checks


_REMOTE_CHECKS = ("procore", "identity", "permissions", "erp", "unlink", "clock")


def _database(settings: Settings) -> Check:
    from engine.app import open_database
    from engine.db import SCHEMA_REVISION, redact

    where = redact(settings.database_url)
    try:
        db = open_database(settings)
    except EngineError as exc:
        fix = ("start the database server, or check --db/RELINK_DATABASE_URL"
               if isinstance(exc, Unavailable) else
               "run `relink init` (creates or upgrades the schema), or check"
               " --db/RELINK_DATABASE_URL")
        return Check("database", "fail", exc.message, fix, exc)
    db.dispose()
    return Check("database", "ok", f"{where}, schema {SCHEMA_REVISION}")


def _procore(
    settings: Settings, env: Mapping[str, str], workflow: str, project_id: int | None,
    on_wait: WaitHook | None, skew: list[tuple[str, float]],
) -> list[Check]:
    from engine.app import retry_policy
    from engine.credentials import procore_credentials
    from engine.identity import whoami
    from engine.remotes import Remotes
    from integrations.procore import ProcoreClient

    try:
        company = settings.require_company()
        token = procore_credentials(settings, env, policy=retry_policy(settings, on_wait))
        client = ProcoreClient(settings.procore_url, token, company,
                               policy=retry_policy(settings, on_wait))
    except UsageError as exc:
        return _procore_failed(exc, "set it (`relink config show`), or run `relink login`",
                               "no Procore client")
    except RemoteError as exc:
        return _procore_failed(UsageError(exc.message), "check RELINK_PROCORE_URL",
                               "no Procore client")
    try:
        doc = whoami(Remotes(client), settings, project_id, workflow=workflow)
    except Unavailable as exc:
        return _procore_failed(exc, "check RELINK_PROCORE_URL and the network; run again later"
                               " if Procore is down", "Procore did not answer")
    except Refused as exc:  # the token rejected (CredentialsRejected), or another refusal
        rejected = isinstance(exc, CredentialsRejected)
        fix = ("run `relink login` again, or set a valid RELINK_PROCORE_TOKEN" if rejected
               else "check RELINK_COMPANY_ID and the token's company")
        return [_answered(settings), Check("identity", "fail", exc.message, fix, exc),
                Check("permissions", "skip", "no identity")]
    finally:
        skew += [(call.system, call.clock_ahead) for call in client.drain_calls()
                 if call.clock_ahead is not None]
    who = Check("identity", "ok", f"{doc['name']} <{doc['login']}> (Procore user {doc['id']}),"
                f" company {doc['company_id']}")
    return [_answered(settings), who, _permissions(doc)]


def _procore_failed(error: EngineError, fix: str, why: str) -> list[Check]:
    return [Check("procore", "fail", error.message, fix, error),
            *_skipped(("identity", "permissions"), why)]


def _answered(settings: Settings) -> Check:
    return Check("procore", "ok", f"{settings.procore_url} answered")


def _permissions(doc: Mapping[str, Any]) -> Check:
    levels = ", ".join(f"{name.replace('_', ' ')}: {_shown(value)}"
                       for name, value in doc["permissions"].items())
    denied = [step for step in doc["steps"] if step["allowed"] is False]
    unknown = [step["step"] for step in doc["steps"] if step["allowed"] is None]
    if denied:
        steps = ", ".join(step["step"] for step in denied)
        lacks = "; ".join(dict.fromkeys(gap for step in denied for gap in step["missing"]))
        return Check("permissions", "warn", f"{levels}; may not run {steps}: lacks {lacks}",
                     "ask a Procore company admin for the levels named (`relink whoami`"
                     " shows each step's)")
    if unknown:
        return Check("permissions", "ok", f"{levels}; the project's levels decide"
                     f" {', '.join(unknown)}", "give --project to check them too")
    return Check("permissions", "ok", f"{levels}; every step of {doc['workflow']} allowed")


def _erp(
    settings: Settings, env: Mapping[str, str], on_wait: WaitHook | None,
    skew: list[tuple[str, float]],
) -> Check:
    from engine.app import _default_erp_url, retry_policy
    from engine.credentials import erp_credentials
    from integrations.erp import PRODUCTS, make_erp
    from integrations.factory import close
    from integrations.probe import check_access

    if settings.erp is None:
        error = UsageError("no ERP is configured")
        return Check("erp", "fail", error.message, "set RELINK_ERP (qbo, xero or intacct),"
                     " RELINK_ERP_COMPANY and RELINK_ERP_TOKEN (or run `relink login --erp`)",
                     error)
    product = PRODUCTS[settings.erp]
    url = settings.erp_url or _default_erp_url(settings.erp) or ""
    policy = retry_policy(settings, on_wait)
    try:
        token = erp_credentials(settings, env, api_url=url, policy=policy)
        if token is None:
            raise UsageError(f"no {product} credentials")
        connector = make_erp(settings.erp, base_url=url, token=token,
                             company=settings.erp_company or getattr(token, "company", None)
                             or "", policy=policy)
    except UsageError as exc:
        return Check("erp", "fail", exc.message, "set RELINK_ERP_TOKEN or run `relink login"
                     " --erp`", exc)
    except (ValueError, RemoteError) as exc:
        error = UsageError(f"ERP settings: {exc}")
        return Check("erp", "fail", error.message, "set RELINK_ERP_COMPANY (`relink config"
                     " show`)", error)
    company = f" company {connector.company}" if connector.company else ""
    try:
        check_access(connector)
    except RemoteRejectedCredentials as exc:
        return Check("erp", "fail", exc.message, "run `relink login --erp` again, or set a valid"
                     " RELINK_ERP_TOKEN", CredentialsRejected(exc.message))
    except RemoteUnavailable as exc:
        return Check("erp", "fail", exc.message, "check RELINK_ERP_URL and the network; run"
                     f" again later if {product} is down", Unavailable(exc.message))
    except RemoteError as exc:  # forbidden, refused: the company, the app's access
        return Check("erp", "fail", f"{product} refused{company}: {exc.message}",
                     "check RELINK_ERP_COMPANY and what the token may read there",
                     Refused(exc.message))
    finally:
        skew += [(call.system, call.clock_ahead) for call in connector.drain_calls()
                 if call.clock_ahead is not None]
        close(connector)
    return Check("erp", "ok", f"{product}{company} answered at {url}")


def _unlink(settings: Settings, env: Mapping[str, str]) -> Check:
    from engine.credentials import INTEGRATOR_TOKEN_ENV, integrator_token

    if settings.unlink_mode != "integrator":
        return Check("unlink", "ok", "procore mode: the operator clicks Unlink in Procore, relink"
                     f" waits up to {settings.unlink_wait_seconds:g} s for it")
    try:
        token = integrator_token(env)
    except UsageError as exc:
        return Check("unlink", "fail", exc.message, f"set {INTEGRATOR_TOKEN_ENV} again", exc)
    if token is None:
        error = UsageError(f"integrator mode needs {INTEGRATOR_TOKEN_ENV}")
        return Check("unlink", "fail", error.message, f"set {INTEGRATOR_TOKEN_ENV} (the"
                     " integration's service account), or use the default mode, procore", error)
    return Check("unlink", "ok", f"integrator mode: {INTEGRATOR_TOKEN_ENV} is set")


def clock_check(skew: list[tuple[str, float]]) -> Check:
    """The ``clock`` check from how far this machine's clock was ahead of each answer's
    ``Date`` (system, seconds)."""
    if not skew:
        return Check("clock", "skip", "no answer carried a Date header")
    system, ahead = max(skew, key=lambda found: abs(found[1] - 0.5))
    # Date has whole seconds: a clock in step reads 0 to 1 s ahead (plus the answer's way back)
    off = ahead - 0.5
    if abs(off) < CLOCK_WARN:
        return Check("clock", "ok", f"within {CLOCK_WARN:g} s of the remote systems' clocks")
    from integrations.erp import PRODUCTS

    direction = "ahead of" if off > 0 else "behind"
    name = "Procore" if system == "procore" else PRODUCTS.get(system, system)
    return Check("clock", "warn", f"this machine's clock is {abs(off):.0f} s {direction}"
                 f" {name}'s",
                 "synchronise the clock (e.g. `timedatectl set-ntp true`): leases, token expiry"
                 " and audit times rely on it")


def _shown(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _skipped(names: tuple[str, ...], why: str) -> list[Check]:
    return [Check(name, "skip", why) for name in names]
