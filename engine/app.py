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
from workflows.definition import Requirement


def retry_policy(settings: Settings) -> Any:
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
    )


def connect_remotes(
    settings: Settings, env: Mapping[str, str] | None = None, *, transport: Any = None
) -> Remotes:
    """Procore and ERP clients for these settings and the operator's tokens."""
    from engine.credentials import erp_token, procore_credentials
    from integrations.factory import connect

    env = os.environ if env is None else env
    retry = retry_policy(settings)
    try:
        procore, erp = connect(
            procore_url=settings.procore_url,
            token=procore_credentials(settings, env, policy=retry, transport=transport),
            company_id=settings.require_company(),
            erp_product=settings.erp,
            erp_url=settings.erp_url or _default_erp_url(settings.erp),
            erp_token=erp_token(env),
            erp_company=settings.erp_company,
            policy=retry,
            transport=transport,
        )
    except ValueError as exc:  # unknown ERP product, missing realm or tenant
        raise UsageError(f"ERP settings: {exc}") from exc
    except RemoteError as exc:  # a client refused its settings as built; nothing was sent
        raise UsageError(f"cannot set up the clients: {exc.message}; check the settings") from exc
    return Remotes(procore, erp)


def _default_erp_url(product: str | None) -> str | None:
    if product is None:
        return None
    from integrations.erp import DEFAULT_API_URLS

    return str(DEFAULT_API_URLS[product])


def policy(settings: Settings) -> dict[str, dict[str, Requirement]]:
    """Workflow -> step -> the requirement that replaces the definition's."""
    try:
        return {
            workflow: {step: Requirement.parse(rule) for step, rule in steps.items()}
            for workflow, steps in settings.policy.items()
        }
    except ValueError as exc:
        raise UsageError(f"invalid permission policy: {exc}") from exc


def open_database(settings: Settings, *, check: bool = True) -> Database:
    db = Database(settings.database_url)
    if check:
        try:
            db.check_schema(create_if_empty=True)
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
) -> CorrectionService:
    return CorrectionService(
        open_database(settings),
        lambda: connect_remotes(settings, env, transport=transport),
        workflow=workflow,
        policy=policy(settings),
        lease_seconds=settings.lease_seconds,
        policy_fingerprints=settings.policy_fingerprints,
    )


def read_only_service(settings: Settings, *, workflow: str) -> CorrectionService:
    """For show and list: needs the database only, never credentials or a remote system."""

    def refuse() -> Remotes:
        raise RuntimeError("a read-only use case tried to reach a remote system")

    return CorrectionService(
        open_database(settings), refuse, workflow=workflow, policy=policy(settings)
    )
