"""`whoami`: the Procore user behind the token and the permissions relink will check."""

from __future__ import annotations

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


def whoami(
    remotes: Remotes,
    settings: Settings,
    project_id: int | None = None,
    *,
    workflow: str,
) -> dict[str, Any]:
    """Identity, permission levels (company-wide, and per project when given), and for each step
    of ``workflow`` what the effective policy (defaults plus ``[policy...]`` overrides) requires
    and whether this user passes (``allowed`` is None when only a project's level, not read,
    decides)."""
    definition = _definition(workflow)
    requirements = effective_policy(settings, definition)
    reader = PermissionReader(remotes.procore)
    try:
        actor = reader.actor()
        granted = reader.everything(definition.checks, project_id)
    except RemoteRejectedCredentials as exc:
        raise CredentialsRejected(exc.message) from exc
    except RemoteUnavailable as exc:
        raise Unavailable(exc.message) from exc
    except (RemoteRefused, RemoteError) as exc:
        raise Refused(f"Procore refused: {exc.message}") from exc
    finally:
        remotes.close()
    loosened = settings.policy_loosened.get(definition.name, {})
    from engine.app import approval_rules

    four_eyes = approval_rules(settings).get(definition.name, {})
    steps = []
    for step, requirement in requirements.items():
        unread = [name for name in requirement.checks if name not in granted]
        known = Requirement(
            tuple((tool, levels) for tool, levels in requirement.tools if tool not in unread),
            requirement.privileges,
        )
        missing = known.missing(granted)
        steps.append({
            "step": step,
            "requires": requirement.as_dict(definition.checks),
            "allowed": False if missing else (None if unread else True),
            "missing": missing,
            "loosened": loosened.get(step, []),
            # four eyes: the approver's requirement and how long an approval lasts, or None
            "approval": None if step not in four_eyes else {
                "approver": (four_eyes[step].approver or requirement).as_dict(definition.checks),
                "minutes": four_eyes[step].minutes,
            },
        })
    return {
        "id": actor.id,
        "login": actor.login,
        "name": actor.name,
        "company_id": settings.company_id,
        "project_id": project_id,
        "erp": settings.erp,
        "workflow": definition.name,
        "permissions": granted,
        "steps": steps,
        # a policy looser than product.md's: its fingerprint (None for the default or stricter)
        "policy_fingerprint": settings.policy_fingerprints.get(definition.name),
        "config_files": [str(path) for path in settings.config_files],
    }


def _definition(workflow: str) -> WorkflowDefinition:
    from workflows import registry

    try:
        return registry.get(workflow)
    except KeyError:
        raise UsageError(
            f"unknown workflow {workflow!r} (workflows: {', '.join(registry.names())})"
        ) from None


def effective_policy(
    settings: Settings, definition: WorkflowDefinition
) -> dict[str, Requirement]:
    """Step name -> the requirement relink checks, overrides from the config file applied."""
    from engine.policy import policy_in_force

    try:
        return policy_in_force(definition, settings.policy.get(definition.name, {}))
    except ValueError as exc:  # pragma: no cover - load_settings validated it already
        raise UsageError(f"invalid permission policy: {exc}") from exc
