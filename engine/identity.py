"""`whoami`: the Procore user behind the token and the permissions relink will check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.errors import CredentialsRejected, Refused, Unavailable, UsageError
from engine.permissions import PermissionReader
from engine.remotes import Remotes
from engine.settings import Settings
from integrations.errors import (
    RemoteError,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from workflows.definition import Requirement, WorkflowDefinition


def whoami(remotes: Remotes, settings: Settings, project_id: int | None = None) -> dict[str, Any]:
    """Identity, permission levels (company-wide, and per project when given), and for each step
    what the effective policy (defaults plus ``[policy.<step>]`` overrides) requires and whether
    this user passes (``allowed`` is None when only a project's level, not read, decides)."""
    requirements = effective_policy(settings)
    reader = PermissionReader(remotes.procore)
    try:
        actor = reader.actor()
        granted = reader.everything(project_id)
    except RemoteRejectedCredentials as exc:
        raise CredentialsRejected(exc.message) from exc
    except RemoteUnavailable as exc:
        raise Unavailable(exc.message) from exc
    except (RemoteRefused, RemoteError) as exc:
        raise Refused(f"Procore refused: {exc.message}") from exc
    finally:
        remotes.close()
    steps = []
    for step, requirement in requirements.items():
        unknown = bool(requirement.commitments) and "commitments" not in granted
        known = replace(requirement, commitments=frozenset()) if unknown else requirement
        missing = known.missing(granted)
        steps.append({
            "step": step,
            "requires": requirement.as_dict(),
            "allowed": False if missing else (None if unknown else True),
            "missing": missing,
            "loosened": settings.policy_loosened.get(step, []),
        })
    return {
        "id": actor.id,
        "login": actor.login,
        "name": actor.name,
        "company_id": settings.company_id,
        "project_id": project_id,
        "erp": settings.erp,
        "permissions": granted,
        "steps": steps,
        # a policy looser than product.md's: its fingerprint (None for the default or stricter)
        "policy_fingerprint": settings.policy_fingerprint,
        "config_files": [str(path) for path in settings.config_files],
    }


def effective_policy(
    settings: Settings, definition: WorkflowDefinition | None = None
) -> dict[str, Requirement]:
    """Step name -> the requirement relink checks, overrides from the config file applied."""
    if definition is None:
        from workflows.subcontractor_invoice import DEFINITION

        definition = DEFINITION
    try:
        overrides = {step: Requirement.parse(rule) for step, rule in settings.policy.items()}
    except ValueError as exc:  # pragma: no cover - load_settings validated it already
        raise UsageError(f"invalid permission policy: {exc}") from exc
    defaults = {"start": definition.opening.requirement}
    defaults |= {step.name: step.requirement for step in definition.steps}
    return {step: overrides.get(step, requirement) for step, requirement in defaults.items()}
