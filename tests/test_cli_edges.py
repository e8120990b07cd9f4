"""Rough edges a newcomer meets (issue 11, item 17): a missing PostgreSQL database or role, a
busy port for the sandbox, end of input at the login prompt, a product named twice in a
refusal, a Python ``True`` in whoami, a diagram marking a state active."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.attempt import refused_by
from tests.conftest import POSTGRES_URL, Relink, Sandbox, sandbox_server
from tests.terminal_support import RELINK


def relink_process(args: list[str], env: dict[str, str] | None = None,
                   stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RELINK_CONFIG": "", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([RELINK, *args], env=environment, input=stdin, capture_output=True,
                          text=True, timeout=120)


def one_line(stderr: str) -> str:
    """The only line on stderr (no traceback, nothing else)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# PostgreSQL: a database or role that does not exist ----------------------------------------


def postgres(user: str | None = None, database: str | None = None) -> str:
    if not POSTGRES_URL:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    scheme, rest = POSTGRES_URL.split("://", 1)
    credentials, _, place = rest.rpartition("@")
    host, _, name = place.partition("/")
    return f"{scheme}://{user or credentials}@{host}/{database or name.split('?')[0]}"


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["list"], ["show", "1"], ["audit", "log"], ["init"]])
@pytest.mark.parametrize("missing", ["database", "role"])
def test_a_missing_postgres_database_or_role_is_one_line_exit_3(
    command: list[str], missing: str
) -> None:
    """No such database, no such role: exit 3 (found while connecting, README "Input is
    checked...") with the server's words naming it, never exit 70."""
    url = (postgres(database="relink_no_such_database") if missing == "database"
           else postgres(user="relink_no_such_role"))
    result = relink_process(["--db", url, *command])
    assert result.returncode == 3, result
    line = one_line(result.stderr)
    assert line.startswith("Error: cannot connect to the database")
    named = "relink_no_such_database" if missing == "database" else "relink_no_such_role"
    assert f'{missing} "{named}" does not exist' in line


# sandbox serve: a port that is taken, an address that is not this machine's ----------------


@pytest.fixture(name="taken_port")
def fixture_taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_busy_port_is_one_line_exit_3(taken_port: int) -> None:
    """`relink sandbox serve` on a busy port: exit 3, one line naming the port and what to do."""
    result = relink_process(["sandbox", "serve", "--port", str(taken_port)])
    assert result.returncode == 3, result
    line = one_line(result.stderr)
    assert f"port {taken_port} on 127.0.0.1 is already in use" in line
    assert "--port" in line
    assert result.stdout == ""


def test_a_busy_port_with_json_is_one_document(taken_port: int) -> None:
    """With --json the refusal is the one JSON document."""
    import json

    result = relink_process(["--json", "sandbox", "serve", "--port", str(taken_port)])
    assert result.returncode == 3
    assert json.loads(result.stdout)["exit_code"] == 3


def test_an_address_not_of_this_machine_is_a_usage_error() -> None:
    """--host naming no address of this machine (TEST-NET-1): exit 2, one line."""
    result = relink_process(["sandbox", "serve", "--host", "192.0.2.1", "--port", "0"])
    assert result.returncode == 2, result
    assert "is not an address of this machine" in one_line(result.stderr)


# the login prompt at end of input ----------------------------------------------------------

LOGIN_ENV = {"RELINK_PROCORE_CLIENT_ID": "sandbox-client", "RELINK_PROCORE_CLIENT_SECRET": "",
             "RELINK_PROCORE_URL": "http://127.0.0.1:9", "RELINK_PROCORE_LOGIN_URL":
             "http://127.0.0.1:9"}


@pytest.mark.parametrize("args", [["login"], ["login", "--client-credentials"]])
def test_login_with_stdin_at_its_end_is_one_line_exit_2(args: list[str], tmp_path: Path) -> None:
    """Standard input at its end when the secret is asked: exit 2, one line, nothing stored."""
    result = relink_process(args, {**LOGIN_ENV, "XDG_CONFIG_HOME": str(tmp_path)}, stdin="")
    assert result.returncode == 2, result
    assert result.stderr.strip().endswith(
        "Error: standard input closed before the Procore client secret was typed")
    assert "Traceback" not in result.stderr
    assert not list(os.scandir(tmp_path))


def test_ctrl_d_at_the_terminal_prompt_is_one_line_exit_2(tmp_path: Path) -> None:
    """Ctrl-D at the hidden prompt on a terminal: exit 2, the error on its own line."""
    environment = {**os.environ, "RELINK_CONFIG": "", "NO_COLOR": "1", **LOGIN_ENV,
                   "XDG_CONFIG_HOME": str(tmp_path)}
    pid, fd = pty.fork()
    if pid == 0:  # the child: relink on the terminal
        os.execve(RELINK, [RELINK, "login"], environment)
    seen, sent, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
        if not sent and b"client secret: " in seen:
            os.write(fd, b"\x04")  # Ctrl-D
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 2, seen
    lines = [line for line in seen.decode().replace("\r\n", "\n").split("\n") if line.strip()]
    assert lines == ["Procore client secret: ",
                     "Error: standard input closed before the Procore client secret was typed"]


# refusals name the remote system once -------------------------------------------------------


def test_refused_by_names_the_system_once() -> None:
    """A client's words that already name the system are not prefixed with it again."""
    assert refused_by("Xero", "Xero: '..' is not a bill id") == (
        "Refused by Xero: '..' is not a bill id.")
    assert refused_by("Procore", "Procore found no commitment 7 in project 101") == (
        "Refused: Procore found no commitment 7 in project 101.")
    assert refused_by("Xero", "Xero's limit is used up.") == "Refused: Xero's limit is used up."
    assert refused_by("Xero", "Invoice not of valid status for modification.") == (
        "Refused by Xero: Invoice not of valid status for modification.")
    assert refused_by("Sage Intacct", "Bill INV-1 is paid") == (
        "Refused by Sage Intacct: Bill INV-1 is paid.")


@pytest.mark.parametrize("erp", ["xero"], indirect=True)
def test_a_refusal_through_the_sandbox_names_xero_once(relink: Relink, sandbox: Sandbox) -> None:
    """An ERP bill id that cannot be a URL segment (Procore's sync record says ``..``): the
    refusal says "Refused by Xero" once, and ends its sentence before what to do next."""
    server = sandbox_server("xero")
    # no control endpoint writes a malformed ERP id: set it in the running sandbox itself
    with server.world._lock:
        server.world._state.requisitions[9001].origin_id = ".."
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "typo")
    assert code == 0, doc
    code, doc = relink.json("advance", str(doc["id"]), "delete-in-erp")
    assert code == 1
    assert doc["message"].startswith("Refused by Xero: '..' is not a bill id. Next:"), doc
    assert doc["message"].count("Xero") == 1


# whoami and the diagrams ------------------------------------------------------------------


def test_whoami_shows_yes_or_no_not_true(relink: Relink) -> None:
    """A privilege reads yes or no, never Python's True or False."""
    shown = relink("whoami", COLUMNS="80").stdout
    assert "can push to accounting: yes" in shown
    assert "True" not in shown and "False" not in shown
    assert "can push to accounting: no" in relink("whoami", token="sandbox-rita").stdout


@pytest.mark.parametrize("workflow", ["subcontractor-invoice", "commitment"])
def test_diagrams_mark_no_state_active(relink: Relink, workflow: str) -> None:
    """A definition's diagram has no current state: no active styling in mermaid or dot, and dot
    indented with spaces (a tab would be shown as \\x09)."""
    mermaid = relink("workflows", "graph", workflow, "--format", "mermaid")
    assert mermaid.exit_code == 0
    assert "s_active" not in mermaid.stdout and "classDef" not in mermaid.stdout
    assert "  [*] --> " in mermaid.stdout and " --> [*]" in mermaid.stdout
    dot = relink("workflows", "graph", workflow, "--format", "dot")
    assert dot.exit_code == 0
    assert "darksalmon" not in dot.stdout and "color=red" not in dot.stdout
    assert "\\x09" not in dot.stdout and "\t" not in dot.stdout
    assert dot.stdout.startswith("digraph")
