"""The owner and lease of a step in flight.

A step in flight belongs to the process that put it there (or to the ``resume`` that claimed it
after the lease ran out) for as long as its lease lasts. The holder renews the lease before every
request it sends, so that the lease still covers the longest that exchange may take plus a margin;
nobody else may settle the step before the lease ends. So a request this process sends has been
answered, or has timed out, before anyone else can probe the remote systems and decide.

What remains (the README says it too): a holder stopped for longer than the lease *between* its
last check and the moment the request leaves the machine, or a remote system that applies a
request later than the client's timeouts after it was sent. The probe settles what it sees, so
the first case can only end in a change the log records under the holder's name after the fact
(its second transaction is refused as overtaken and audited), and both are bounded by clocks
within the margin.

A lease is also the account of what was sent: ``maybe_landed`` says whether a write may have
reached a remote system. Only a holder that provably sent nothing may release its own step.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import Conflict
from engine.store import Instance, WorkflowStore

if TYPE_CHECKING:
    from engine.db import Database

LEASE_MARGIN = 2.0
"""Seconds a lease must outlast the longest exchange about to be sent (clock skew, scheduling);
less when the exchange itself is shorter (tests and benchmarks run with sub-second timeouts)."""


def margin(seconds: float) -> float:
    return min(LEASE_MARGIN, seconds)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a step: the Procore login, the host and the process."""

    login: str | None
    host: str
    pid: int

    @classmethod
    def here(cls, login: str | None) -> Owner:
        return cls(login=login, host=socket.gethostname(), pid=os.getpid())

    @classmethod
    def of(cls, instance: Instance) -> Owner | None:
        if instance.in_flight_host is None or instance.in_flight_pid is None:
            return None
        return cls(instance.in_flight_owner, instance.in_flight_host, instance.in_flight_pid)

    def describe(self) -> str:
        return f"{self.login or 'an unknown user'} on {self.host} (pid {self.pid})"

    def columns(self) -> dict[str, str | int | None]:
        return {
            "in_flight_owner": self.login,
            "in_flight_host": self.host,
            "in_flight_pid": self.pid,
        }


def lease_live(instance: Instance, now: dt.datetime) -> bool:
    """The step in flight is held by a live lease (a step from before leases has none)."""
    until = instance.in_flight_lease_until
    return until is not None and parse_time(until) > now


class LeaseLost(Conflict):
    """The holder's lease ran out and another operator settled or claimed the step."""


class StepLease:
    """The lease this process holds on one step in flight; a :class:`SendGuard`.

    ``instance`` is always the row as last written by this holder (its revision is what the
    next compare-and-set must find).
    """

    def __init__(
        self,
        db: Database,
        store: WorkflowStore,
        instance: Instance,
        *,
        seconds: float,
        now: Callable[[], dt.datetime],
        sent_by_owner: bool,
    ) -> None:
        self.db = db
        self.store = store
        self.instance = instance
        self.seconds = seconds
        self.now = now
        self.sent_by_owner = sent_by_owner  # the holder put the step in flight (not a resume)
        self.maybe_landed = False  # a write may have reached a remote system
        self.unanswered = False  # a write left the machine and was never answered
        self.sending = False  # a write was announced and has not been settled (interrupted?)
        self.active = True
        self.on_renew: Callable[[Instance], None] | None = None

    # SendGuard -----------------------------------------------------------------------------

    def before_send(self, *, write: bool, seconds: float) -> None:
        if not self.active:
            raise LeaseLost("the lease of this step was already given up")
        now = self.now()
        until = self.instance.in_flight_lease_until
        if until is None or (parse_time(until) - now).total_seconds() < seconds + margin(seconds):
            self.renew(now, seconds)
        self.sending = self.sending or write

    def settled(self, *, changed: bool | None) -> None:
        self.sending = False
        if changed is not False:
            self.maybe_landed = True
        if changed is None:
            self.unanswered = True

    @property
    def sent_nothing(self) -> bool:
        """No write may have changed a remote system (none is on its way, none landed)."""
        return not self.sending and not self.maybe_landed

    # renewal -------------------------------------------------------------------------------

    def renew(self, now: dt.datetime, covering: float = 0.0) -> None:
        """Extend the lease so it outlasts ``covering`` seconds from now; LeaseLost if the row
        moved on (someone settled or claimed the step after the lease ran out)."""
        until = now + dt.timedelta(seconds=max(self.seconds, covering + margin(covering)))
        with self.db.write() as conn:
            written = self.store.update(
                conn,
                self.instance.id,
                self.instance.revision,
                {"in_flight_lease_until": format_time(until)},
            )
        if written is None:
            self.active = False
            raise LeaseLost(
                f"the lease on correction {self.instance.id} ran out and another operator"
                " settled its step meanwhile; nothing more was sent"
            )
        self.instance = written
        if self.on_renew is not None:
            self.on_renew(written)

    def ending(self) -> dict[str, str]:
        """The values that give the lease up while the step stays in flight."""
        return {"in_flight_lease_until": format_time(self.now())}
