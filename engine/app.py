"""The composition root: settings in, ready-to-use services out. The CLI calls only this."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from engine.db import Database
from engine.errors import UsageError
from engine.remotes import Remotes
from engine.service import CorrectionService
from engine.settings import Settings
from integrations.errors import RemoteError
from integrations.waiting import WaitHook
from workflows.definition import Requirement, sets_requirement


def retry_policy(settings: Settings, on_wait: WaitHook | None = None) -> Any:
    """The clients' timeouts, retries and pacing; ``on_wait`` is told of every long wait
    (integrations.waiting), e.g. by the CLI to show a spinner."""
    from integrations.http import RetryPolicy

    return RetryPolicy(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        write_timeout=settings.read_timeout,
        attempts=settings.max_attempts,
        max_wait=settings.max_wait,
        backoff_initial=settings.backoff_initial,
        backoff_max=settings.backoff_max,
        pace_below=settings.pace_below,
        on_wait=on_wait,
    )


def connect_remotes(
    settings: Settings, env: Mapping[str, str] | None = None, *, transport: Any = None,
    on_wait: WaitHook | None = None,
) -> Remotes:
    """Procore and ERP clients for these settings and the operator's tokens."""
    from engine.credentials import erp_credentials, procore_credentials
    from integrations.factory import connect

    env = os.environ if env is None else env
    retry = retry_policy(settings, on_wait)
    erp_url = settings.erp_url or _default_erp_url(settings.erp)
    # RELINK_ERP_TOKEN as given, else the session `relink login --erp` stored (renewed as needed)
    erp_token = erp_credentials(settings, env, api_url=erp_url, policy=retry, transport=transport)
    try:
        procore, erp = connect(
            procore_url=settings.procore_url,
            token=procore_credentials(settings, env, policy=retry, transport=transport),
            company_id=settings.require_company(),
            erp_product=settings.erp,
            erp_url=erp_url,
            erp_token=erp_token,
            erp_company=settings.erp_company or getattr(erp_token, "company", None),
            policy=retry,
            transport=transport,
        )
    except ValueError as exc:  # unknown ERP product, missing realm or tenant
        raise UsageError(f"ERP settings: {exc}") from exc
    except RemoteError as exc:  # a client refused its settings as built; nothing was sent
        raise UsageError(f"cannot set up the clients: {exc.message}; check the settings") from exc
    return Remotes(procore, erp, unlinking=_unlinking(settings, env, retry, transport))


def _unlinking(settings: Settings, env: Mapping[str, str], retry: Any, transport: Any) -> Any:
    """The unlink mode of this ERP connection; in integrator mode, a Procore client of its own
    for the service account (never the operator's token, never the operator's identity)."""
    from engine.credentials import INTEGRATOR_TOKEN_ENV, integrator_token
    from integrations.procore import ProcoreClient
    from workflows.unlinking import Unlinking

    integrator = None
    if settings.unlink_mode == "integrator":
        token = integrator_token(env)
        if token is None:
            raise UsageError(
                f"unlink mode integrator needs the integration's service-account token:"
                f" set {INTEGRATOR_TOKEN_ENV} (or use the default unlink mode, procore)"
            )
        integrator = ProcoreClient(
            settings.procore_url, token, settings.require_company(), policy=retry,
            transport=transport,
        )
    return Unlinking(
        mode="integrator" if integrator is not None else "procore",
        integrator=integrator,
        poll_seconds=settings.unlink_poll_seconds,
        wait_seconds=settings.unlink_wait_seconds,
    )


def _default_erp_url(product: str | None) -> str | None:
    if product is None:
        return None
    from integrations.erp import DEFAULT_API_URLS

    return str(DEFAULT_API_URLS[product])


def policy(settings: Settings) -> dict[str, dict[str, Requirement]]:
    """Workflow -> step -> the requirement that replaces the definition's."""
    try:
        return {
            workflow: {
                step: Requirement.parse(rule) for step, rule in steps.items()
                if sets_requirement(rule)
            }
            for workflow, steps in settings.policy.items()
        }
    except ValueError as exc:
        raise UsageError(f"invalid permission policy: {exc}") from exc


def approval_rules(settings: Settings) -> dict[str, dict[str, Any]]:
    """Workflow -> step -> its four-eyes rule (engine.approvals), for the steps that have one."""
    from engine.approvals import ApprovalRule

    rules: dict[str, dict[str, Any]] = {}
    for workflow, steps in settings.policy.items():
        for step, rule in steps.items():
            if (approval := ApprovalRule.from_policy(rule)) is not None:
                rules.setdefault(workflow, {})[step] = approval
    return rules


def open_database(settings: Settings, *, check: bool = True, create: bool = False) -> Database:
    """The database, its schema checked; a missing SQLite file is created (0600) only when
    ``create`` (``init`` and the commands that start or advance corrections), else exit 5."""
    from engine.settings import default_database_url

    db = Database(settings.database_url)
    try:
        if create:
            db.create_file(default_location=settings.database_url == default_database_url())
        else:
            db.require_file()
        if check:
            db.check_schema(create_if_empty=create)
    except BaseException:
        db.dispose()
        raise
    return db


def correction_service(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    transport: Any = None,
    workflow: str,
    on_wait: WaitHook | None = None,
) -> CorrectionService:
    return CorrectionService(
        open_database(settings, create=True),
        lambda: connect_remotes(settings, env, transport=transport, on_wait=on_wait),
        workflow=workflow,
        policy=policy(settings),
        lease_seconds=settings.lease_seconds,
        policy_fingerprints=settings.policy_fingerprints,
        approvals=approval_rules(settings),
    )


def read_only_service(settings: Settings, *, workflow: str) -> CorrectionService:
    """For show and list: needs the database only, never credentials or a remote system."""

    def refuse() -> Remotes:
        raise RuntimeError("a read-only use case tried to reach a remote system")

    return CorrectionService(
        open_database(settings), refuse, workflow=workflow, policy=policy(settings),
        approvals=approval_rules(settings),
    )
