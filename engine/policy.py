"""The permission policy in force, whether it is looser than product.md's, and its fingerprint.

Policies are per workflow (``[policy.<workflow>.<step>]``). A policy is *looser* when some step
accepts a level or privilege its default requirement does not (see
:meth:`workflows.definition.Requirement.loosens`). A looser policy is only taken from a trusted
config file (:mod:`engine.trust`), and its fingerprint — ``policy:`` and the first 16 hex
digits of the SHA-256 of the canonical JSON of the whole policy in force — names it in ``whoami``
and in the evidence of the audit entries it governed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from workflows.definition import Requirement, WorkflowDefinition, sets_requirement

PREFIX = "policy:"


def policy_in_force(
    definition: WorkflowDefinition, overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, Requirement]:
    """The definition's requirements with ``[policy.<workflow>.<step>]`` overrides applied
    (already validated)."""
    parsed = {
        step: Requirement.parse(rule) for step, rule in overrides.items()
        if sets_requirement(rule)
    }
    return {
        step: parsed.get(step, requirement)
        for step, requirement in definition.requirements.items()
    }


def loosened(
    definition: WorkflowDefinition, policy: Mapping[str, Requirement]
) -> dict[str, list[str]]:
    """Step -> what it accepts beyond its default; only the steps that are looser."""
    defaults = definition.requirements
    gains = {step: policy[step].loosens(defaults[step]) for step in defaults if step in policy}
    return {step: words for step, words in gains.items() if words}


def fingerprint(definition: WorkflowDefinition, policy: Mapping[str, Requirement]) -> str:
    """``policy:`` + 16 hex digits naming exactly this policy of one workflow (every step,
    canonical JSON: the same text, hence the same fingerprint, as before workflows had policies
    of their own)."""
    canonical = json.dumps(
        {step: requirement.as_dict(definition.checks) for step, requirement in policy.items()},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    )
    return PREFIX + hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]
