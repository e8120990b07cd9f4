"""How an ERP link is cleared in Procore: the ``unlink`` steps' two modes.

Procore has no public API for the Unlink button of its ERP Integrations tool. The click creates an
ERP Request; the ERP connector checks the ERP and clears the link through External Data with its
own service account (``erp_integration/erp_technical_guide.md``, "Unlink Workflow"). For Procore's
own connectors (QuickBooks Online, Xero, Sage Intacct) that connector is Procore's. Hence:

- ``procore`` (the default): relink checks the ERP first, tells the operator where to click, and
  waits, reading the item until its ``origin_id`` is cleared. relink writes nothing.
- ``integrator``: for companies whose own integration owns the sync, relink clears the link
  itself through ERP External Data Sync with the integration's service-account token (the
  operator's identity and permissions are still the ones checked and audited).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from workflows.errors import Rejected, Waiting

UnlinkMode = Literal["procore", "integrator"]
UNLINK_MODES: tuple[UnlinkMode, ...] = ("procore", "integrator")


class ExternalDataSync(Protocol):
    """Procore's ERP External Data Sync, called with the integration's service account."""

    def sync_external_data(self, updates: list[dict[str, Any]]) -> None: ...


class Waiter(Protocol):
    """Waits until ``done()`` is true, calling it every ``every`` seconds for at most ``limit``
    seconds; True when it became true. ``what`` says what is awaited (a terminal shows it with
    the elapsed time)."""

    def __call__(
        self, what: str, done: Callable[[], bool], *, every: float, limit: float
    ) -> bool: ...


def poll(what: str, done: Callable[[], bool], *, every: float, limit: float) -> bool:
    """The plain waiter: no output, just sleep between checks."""
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() + every > deadline:
            return False
        time.sleep(every)
    return True


@dataclass(frozen=True, slots=True)
class Unlinking:
    """The unlink mode of this ERP connection and what it needs."""

    mode: UnlinkMode = "procore"
    integrator: ExternalDataSync | None = None
    poll_seconds: float = 2.0
    wait_seconds: float = 600.0
    wait: Waiter = field(default=poll)

    def clear(self, updates: list[dict[str, Any]]) -> None:
        """Integrator mode: clear the links through External Data Sync (the composition root
        refuses integrator mode without the service-account token)."""
        assert self.integrator is not None, "integrator mode without a service-account client"
        self.integrator.sync_external_data(updates)

    def await_click(self, where: str, unlinked: Callable[[], bool], *, retry: str) -> None:
        """Procore mode: wait for the operator's Unlink click (``where`` says where to click);
        Waiting when it does not come in time."""
        if not self.wait(where, unlinked, every=self.poll_seconds, limit=self.wait_seconds):
            minutes = self.wait_seconds / 60
            raise Waiting(
                f"Not unlinked yet: waited {minutes:g} min for the Unlink click. {where}."
                f" Then run `{retry}`."
            )


class Linked(Protocol):
    """A Procore item with an ERP link: a requisition, a commitment."""

    @property
    def origin_id(self) -> str | None: ...

    @property
    def fields(self) -> dict[str, Any]: ...


class UnlinkContext(Protocol):
    """What :func:`clear_link` needs of a step's context."""

    unlinking: Unlinking
    evidence: dict[str, Any]
    workflow_id: int | None


def clear_link(
    ctx: UnlinkContext,
    item: Linked,
    reread: Callable[[], Linked | None],
    updates: Callable[[], list[dict[str, Any]]],
    *,
    where: str,
    what: str,
) -> None:
    """Have ``item``'s ERP link cleared as the connection's mode says: External Data Sync of
    ``updates()`` (integrator), or the operator's click at ``where``, awaited by ``reread``
    (procore). The link before and after, and the mode, go into the evidence; Rejected when
    Procore still holds it."""
    ctx.evidence["unlink_mode"] = ctx.unlinking.mode
    ctx.evidence["before"] = link_of(item.fields)
    latest = item
    if item.origin_id is not None and ctx.unlinking.mode == "integrator":
        ctx.unlinking.clear(updates())
        latest = reread() or item
    elif item.origin_id is not None:

        def unlinked() -> bool:
            nonlocal latest
            latest = reread() or latest
            return latest.origin_id is None

        ctx.unlinking.await_click(where, unlinked, retry=f"relink advance {ctx.workflow_id} unlink")
    ctx.evidence["after"] = link_of(latest.fields)
    if latest.origin_id is not None:
        raise Rejected(f"Procore kept the ERP link of {what}.")


def link_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The ERP link of a Procore item as evidence: ``origin_id`` and ``erp_status``."""
    return {"origin_id": fields.get("origin_id"), "erp_status": fields.get("erp_status")}
