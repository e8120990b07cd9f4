"""R5 at the command line: whatever Procore or the ERP answers to any one call of a command —
malformed JSON, wrong types, huge bodies, odd statuses — `relink` exits 0, 1 or 3 with one clear
line and never a traceback; when it does not succeed, nothing is written but audit entries.

The sandbox world answers in-process (through ``engine.app.connect_remotes``' ``transport``);
for each generated example one endpoint of the command gets the odd answer, every time it is
called (retries and the settling read included)."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cli
import engine.app
from engine.db import Database
from sandbox.seed import ERP_COMPANIES, ERP_TOKEN
from sandbox.world import SandboxWorld

BASE = "http://sandbox.test"
PROJECT = 102
INVOICES = range(9200, 9400)
PREPARE = ("delete-in-erp", "unlink", "delete-in-procore", "reenter")
# unlink runs in both modes: procore (the sandbox plays the operator's click) and integrator
# (External Data Sync with the service account's own client)
SCENARIOS = ("whoami", "start", "delete-in-erp", "unlink", "unlink-integrator",
             "delete-in-procore", "reenter")
STEPS = {"unlink-integrator": "unlink"}
INTEGRATOR_ENV = {"RELINK_UNLINK_MODE": "integrator", "RELINK_INTEGRATOR_TOKEN": "sandbox-service"}
HUGE = 5_200_000  # over the clients' 5 MB answer limit
QUICK_ENV = {
    "RELINK_HTTP_MAX_ATTEMPTS": "2",
    "RELINK_HTTP_BACKOFF_INITIAL": "0.001",
    "RELINK_HTTP_BACKOFF_MAX": "0.01",
    "RELINK_HTTP_MAX_WAIT": "0.01",
    # an odd answer while waiting for the Unlink click ends the wait fast
    "RELINK_UNLINK_POLL_SECONDS": "0.05",
    "RELINK_UNLINK_WAIT_SECONDS": "0.5",
}
_KEYS = re.compile(r"[0-9A-Fa-f-]{16,}")  # uuids, idempotency and request ids


def endpoint(method: str, target: str) -> str:
    """A call with its ids masked, so the same endpoint matches for every invoice."""
    return f"{method} {re.sub(r'[0-9]+', '#', _KEYS.sub('#', target))}"


# the answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Odd:
    """One odd answer: ``kind`` names what is wrong with it."""

    kind: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    mutate: tuple[Any, ...] | None = None  # (leaf index, value): the real answer, one leaf changed

    def response(self, real: bytes | None) -> httpx.Response:
        body = self.body
        if self.mutate is not None and real is not None:
            body = json.dumps(_replace(json.loads(real), *self.mutate)).encode()
        if self.kind == "huge":
            body = b'{"x": "' + b"x" * HUGE + b'"}'
        if self.kind == "huge stream":  # no Content-Length: the client must stop reading
            chunks = iter([b"[" + b"1," * (HUGE // 2) + b"1]"])
            return httpx.Response(self.status, headers=self.headers, content=chunks)
        return httpx.Response(self.status, headers=self.headers, content=body)


def _replace(doc: Any, index: int, value: Any) -> Any:
    """``doc`` with its ``index``-th leaf (depth first, modulo their number) set to ``value``."""
    count = -1

    def leaves(node: Any) -> int:
        if isinstance(node, dict):
            return sum(leaves(item) for item in node.values())
        if isinstance(node, list):
            return sum(leaves(item) for item in node)
        return 1

    index %= max(1, leaves(doc))

    def walk(node: Any) -> Any:
        nonlocal count
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        count += 1
        return value if count == index else node

    return walk(doc)


WRONG_TYPES = st.sampled_from([12345678901234, -1, 3.5, True, "", "seven", [], {}, [1, "x"],
                               {"a": None}])
ODD_STATUSES = [204, 301, 302, 304, 400, 401, 403, 405, 409, 410, 418, 422, 429, 451, 500, 501,
                502, 503, 504, 599]
odd_answers = st.one_of(
    st.builds(Odd, kind=st.just("garbage"), status=st.sampled_from([200, 201]),
              body=st.binary(max_size=40).filter(lambda b: not _is_json(b))),
    st.builds(Odd, kind=st.just("wrong type"), status=st.just(200),
              mutate=st.tuples(st.integers(0, 30), WRONG_TYPES)),
    st.builds(Odd, kind=st.just("json of another shape"), status=st.sampled_from([200, 201]),
              body=st.sampled_from([b"null", b"[]", b"{}", b'"ok"', b"7", b'{"data": []}',
                                    b'[{"id": "9200"}]', b'{"Invoices": []}'])),
    st.builds(Odd, kind=st.sampled_from(["huge", "huge stream"]), status=st.just(200)),
    st.builds(Odd, kind=st.just("odd status"), status=st.sampled_from(ODD_STATUSES),
              body=st.one_of(st.just(b""), st.binary(max_size=30),
                             st.sampled_from([b'{"message": "nope"}', b'{"error": 5}',
                                              b'{"Fault": {}}', b'{"ia::result": []}'])),
              headers=st.sampled_from([{}, {"Retry-After": "0"}, {"Retry-After": "soon"},
                                       {"X-Rate-Limit-Remaining": "-3"},
                                       {"Content-Type": "text/html"}])),
)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


# the lab: a world, a database, invoices to spend ---------------------------------------------


class Lab:
    """One ERP's sandbox world behind a tampering transport, a database, and fresh invoices."""

    def __init__(self, erp: str, scratch: Path) -> None:
        self.erp = erp
        self.scratch = scratch
        self.world = SandboxWorld(erp)  # the operator's click played, bar integrator mode
        self.transport = httpx.MockTransport(self._answer)
        self.target: str | None = None
        self.odd: Odd | None = None
        self.hits = 0
        self.seen: list[str] = []
        self.runner = CliRunner()
        self._invoices: Iterator[int] = iter(())
        self._generation = 0
        self.db_path = scratch
        self._fresh()
        self.endpoints = {name: self._endpoints_of(name) for name in SCENARIOS}

    def _fresh(self) -> None:
        """A new database and a world back at its seed (when the invoices run out)."""
        self._generation += 1
        self.db_path = self.scratch / f"{self.erp}-{self._generation}.db"
        database = Database(f"sqlite:///{self.db_path}")
        database.upgrade()
        database.dispose()
        self.world.reset()
        self._invoices = iter(INVOICES)

    def invoice(self) -> int:
        invoice = next(self._invoices, None)
        if invoice is None:
            self._fresh()
            invoice = next(self._invoices)
        return invoice

    def _answer(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        query = request.url.query.decode("ascii")
        name = endpoint(request.method, target)
        self.seen.append(name)
        real: bytes | None = None
        if self.odd is not None and name == self.target:
            self.hits += 1
            if request.method == "GET" and self.odd.mutate is not None:
                real = self._world(request, request.url.path, query)[2]
            return self.odd.response(real)
        status, headers, body = self._world(request, request.url.path, query)
        return httpx.Response(status, headers=headers, content=body)

    def _world(self, request: httpx.Request, path: str, query: str) -> tuple[int, Any, bytes]:
        return self.world.handle(
            request.method, path, dict(parse_qsl(query, keep_blank_values=True)),
            request.headers, request.content, raw_query=query,
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "RELINK_PROCORE_URL": BASE, "RELINK_ERP_URL": f"{BASE}/erp",
            "RELINK_COMPANY_ID": "4021", "RELINK_ERP": self.erp,
            "RELINK_ERP_COMPANY": ERP_COMPANIES[self.erp], "RELINK_ERP_TOKEN": ERP_TOKEN,
            "RELINK_PROCORE_TOKEN": "sandbox-ana", "RELINK_DATABASE_URL":
            f"sqlite:///{self.db_path}", "RELINK_CONFIG": "", "NO_COLOR": "1", "COLUMNS": "200",
            **QUICK_ENV,
        }

    def relink(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """`relink ARGS` in-process, its remote systems answered through this lab's transport."""
        # in integrator mode relink clears the link itself: no click is played for it
        integrator = (env or {}).get("RELINK_UNLINK_MODE") == "integrator"
        body = json.dumps({"enabled": not integrator}).encode()
        status, _, _ = self.world.handle("POST", "/_sandbox/ui/auto-unlink", {}, {}, body)
        assert status == 200
        real = engine.app.connect_remotes

        def connect(settings: Any, env: Any = None, **_: Any) -> Any:
            return real(settings, env, transport=self.transport)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine.app, "connect_remotes", connect)
            result = self.runner.invoke(cli.app, list(args), env={**self.env, **(env or {})},
                                        catch_exceptions=False, prog_name="relink")
        return result.exit_code, result.stdout, result.stderr

    # scenarios -------------------------------------------------------------------------------

    def prepare(self, scenario: str) -> tuple[list[str], int | None]:
        """Bring a fresh invoice to where ``scenario``'s command applies; its command line."""
        invoice = self.invoice()
        if scenario == "whoami":
            return ["whoami", "--project", str(PROJECT)], None
        start = ["start", str(invoice), "--project", str(PROJECT), "--reason", "R5"]
        if scenario == "start":
            return start, None
        code, out, err = self.relink("--json", *start)
        assert code == 0, out + err
        wid = int(json.loads(out)["id"])
        step = STEPS.get(scenario, scenario)
        for earlier in PREPARE[: PREPARE.index(step)]:
            code, out, err = self.relink("advance", str(wid), earlier)
            assert code == 0, out + err
        command = ["advance", str(wid), step]
        if scenario == "reenter":
            data = self.scratch / "fix.json"
            data.write_text(json.dumps({"invoice_number": f"INV-{invoice}-C"}))
            command += ["--data", str(data)]
        return command, wid

    def _endpoints_of(self, scenario: str) -> list[str]:
        """The endpoints ``scenario``'s command calls when every answer is normal."""
        command, _ = self.prepare(scenario)
        self.seen = []
        code, out, err = self.relink(*command, env=scenario_env(scenario))
        assert code == 0, out + err
        return sorted(set(self.seen))

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table, read with the bare driver."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            conn.row_factory = sqlite3.Row
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {name: [dict(r) for r in conn.execute(f'SELECT * FROM "{name}" ORDER BY 1')]
                    for name in names}


LABS: dict[str, Lab] = {}


def scenario_env(scenario: str) -> dict[str, str]:
    return INTEGRATOR_ENV if scenario == "unlink-integrator" else {}


def lab_for(erp: str, scratch: Path) -> Lab:
    if erp not in LABS:
        LABS[erp] = Lab(erp, scratch)
    return LABS[erp]


# the property --------------------------------------------------------------------------------

IN_FLIGHT = {"revision", "updated_at", "in_flight_step", "in_flight_to", "in_flight_key",
             "in_flight_since", "in_flight_data"}


PREVIEW_TITLE = "What the data file changes"


def without_preview(err: str) -> list[str]:
    """stderr's lines less the field-by-field difference a step taking --data shows first
    (its title and table; these examples' data changes no total, so it has no warning)."""
    kept: list[str] = []
    in_table = False
    for line in err.strip().splitlines():
        if line == PREVIEW_TITLE:
            in_table = True
        elif in_table:
            in_table = not line.startswith("└")  # the table's last line
        else:
            kept.append(line)
    return kept


def one_clear_line(code: int, out: str, err: str) -> str:
    assert "Traceback" not in out + err
    lines = without_preview(err)
    if lines:
        assert len(lines) == 1, err
        line = lines[0]
        assert out.strip() == "" or code == 0 or out.lstrip().startswith(("Refused", "Failed")), out
    else:
        line = out.strip().splitlines()[0] if out.strip() else ""
    assert line and len(line) <= 600 and line.isprintable(), (out, err)
    return line


@pytest.mark.parametrize("erp", ["qbo", "xero", "intacct"])
@settings(max_examples=45, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_odd_remote_answers_at_the_command_line(
    erp: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any odd answer to any one endpoint a command calls: exit 0, 1 or 3 with one clear line,
    never a traceback; on 1 or 3 the workflow rows are as before (bar a step left in flight
    that the message sends to `relink resume`) and only audit entries were added."""
    lab = lab_for(erp, tmp_path_factory.mktemp(f"r5-{erp}", numbered=True))
    scenario = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    command, wid = lab.prepare(scenario)
    lab.target = data.draw(st.sampled_from(lab.endpoints[scenario]), label="endpoint")
    lab.odd = data.draw(odd_answers, label="answer")
    lab.hits = 0
    tables = lab.rows()
    try:
        code, out, err = lab.relink(*command, env=scenario_env(scenario))
    finally:
        lab.odd = lab.target = None
    line = one_clear_line(code, out, err)
    assert lab.hits > 0, "the odd answer was never asked for"
    assert code in (0, 1, 3), (code, out, err)
    if code == 0:
        return
    assert line.startswith(("Failed: ", "Refused", "Error: ", "The requisition is still in")), line
    after = lab.rows()
    assert set(after) == set(tables)
    for name in set(tables) - {"workflow", "audit_entry", "audit_head"}:
        assert after[name] == tables[name], name
    audit = tables["audit_entry"]
    assert after["audit_entry"][: len(audit)] == audit
    new = after["audit_entry"][len(audit):]
    if scenario == "whoami":
        assert (after["workflow"], new) == (tables["workflow"], [])
        return
    assert new and new[-1]["outcome"] in ("failed", "refused"), new
    assert {e["outcome"] for e in new} <= {"in_flight", "failed", "refused"}, new
    assert {e["workflow_id"] for e in new} <= {wid}, new
    if wid is None:
        assert after["workflow"] == tables["workflow"]
        return
    (before,) = [w for w in tables["workflow"] if w["id"] == wid]
    (now,) = [w for w in after["workflow"] if w["id"] == wid]
    assert {k: v for k, v in now.items() if k not in IN_FLIGHT} == {
        k: v for k, v in before.items() if k not in IN_FLIGHT}
    if now["in_flight_step"] is not None:
        assert code == 3 and f"relink resume {wid}" in line, line
    assert [w for w in after["workflow"] if w["id"] != wid] == [
        w for w in tables["workflow"] if w["id"] != wid]
