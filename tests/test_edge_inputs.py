"""Edge inputs get one clear line and the exit code of cli.md (2 bad input, 3 unavailable,
5 storage), never the catch-all 70: numbers beyond 64 bits, dates at the ends of the calendar,
non-finite settings, malformed URLs and tokens, deep or endless data files, unusable databases,
a login without standard input, and amounts that are not money."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from commands.datafile import MAX_DATA_FILE
from engine.db import Database
from tests.conftest import POSTGRES_URL, Outcome, Relink, Sandbox

HUGE = "99999999999999999999"  # beyond signed 64-bit


def one_clear_line(outcome: Outcome, code: int) -> str:
    """The outcome exited ``code`` with exactly one line on stderr and no traceback."""
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.exit_code == code, outcome
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    return lines[0]


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """These edges do not depend on the storage backend (the PostgreSQL ones say so)."""
    return sqlite_url


@pytest.mark.parametrize(
    "args",
    [
        ["show", HUGE],
        ["resume", HUGE],
        ["advance", HUGE, "cancel"],
        ["start", HUGE, "--project", "101", "--reason", "x"],
        ["start", "9001", "--project", HUGE, "--reason", "x"],
        ["list", "--project", HUGE],
        ["list", "--limit", HUGE],
        ["whoami", "--project", HUGE],
        ["audit", "log", "--workflow", HUGE],
        ["audit", "log", "--invoice", HUGE],
        ["audit", "log", "--project", "-" + HUGE],
        ["audit", "log", "--limit", HUGE],
        ["audit", "export", "--format", "jsonl", "--project", HUGE],
        ["audit", "export", "--format", "jsonl", "--invoice", HUGE],
        ["audit", "export", "--format", "jsonl", "--workflow", HUGE],
    ],
)
def test_numbers_beyond_64_bits(relink: Relink, args: list[str]) -> None:
    """Ids and filters beyond the signed 64-bit range exit 2 naming the option."""
    line = one_clear_line(relink(*args), 2)
    assert line.startswith("Error: Invalid value for ")


@pytest.mark.parametrize(
    "args",
    [
        ["start", "0", "--project", str(2**63 - 1), "--reason", "x"],
        ["start", str(2**53), "--project", "101", "--reason", "x"],
        ["advance", str(2**53), "cancel"],
        ["resume", str(2**60)],
    ],
)
def test_audited_ids_beyond_json_integers(
    relink: Relink, sandbox: Sandbox, args: list[str]
) -> None:
    """Ids a step records in the audit log stay within JSON's exact integers (RFC 8785): beyond
    2^53 they exit 2 before anything is sent (`start` exited 70; found by the fuzz)."""
    before = len(sandbox.calls())
    assert one_clear_line(relink(*args), 2).startswith("Error: Invalid value for ")
    assert len(sandbox.calls()) == before
    outcome = relink("whoami", RELINK_COMPANY_ID=str(2**53))
    assert "RELINK_COMPANY_ID" in one_clear_line(outcome, 2)


def test_largest_64_bit_id_is_just_unknown(relink: Relink) -> None:
    """The largest signed 64-bit id is accepted and simply not found."""
    top = str(2**63 - 1)
    assert one_clear_line(relink("show", top), 2) == f"Error: no correction with id {top}"
    assert relink.json("audit", "log", "--format", "json", "--project", top)[1] == {"entries": []}


def test_dates_at_the_ends_of_the_calendar(relink: Relink) -> None:
    """--since before year 1 and --until the last day of year 9999 mean 'no bound', not 70."""
    assert relink("start", "9001", "--project", "101", "--reason", "x").exit_code == 0
    everything = relink.json("audit", "log", "--format", "json")[1]["entries"]
    assert everything
    for args in (
        ["--since", "0001-01-01T00:00:00+01:00"],
        ["--until", "9999-12-31"],
        ["--since", "0001-01-01", "--until", "9999-12-31T23:59:59-05:00"],
    ):
        code, doc = relink.json("audit", "log", "--format", "json", *args)
        assert (code, doc["entries"]) == (0, everything), args
    for args in (
        ["--until", "0001-01-01T00:30:00+01:00"],
        ["--since", "9999-12-31T23:00:00-05:00"],
        ["--until", "0999-06-01"],
    ):
        code, doc = relink.json("audit", "log", "--format", "json", *args)
        assert (code, doc["entries"]) == (0, []), args
    outcome = relink("audit", "export", "--format", "jsonl", "--until", "9999-12-31")
    assert outcome.exit_code == 0
    assert len(outcome.stdout.splitlines()) == len(everything)


@pytest.mark.parametrize("stale", ["99999999999w", "999999999999999999999999s", "1000000d"])
def test_stale_beyond_any_date(relink: Relink, stale: str) -> None:
    """A --stale duration longer than the calendar exits 2 with one line."""
    line = one_clear_line(relink("list", "--stale", stale), 2)
    assert "too long" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELINK_HTTP_READ_TIMEOUT", "inf"),
        ("RELINK_HTTP_READ_TIMEOUT", "nan"),
        ("RELINK_HTTP_CONNECT_TIMEOUT", "1e400"),
        ("RELINK_HTTP_CONNECT_TIMEOUT", "1e300"),
        ("RELINK_HTTP_MAX_WAIT", "-inf"),
        ("RELINK_HTTP_BACKOFF_INITIAL", "NaN"),
        ("RELINK_HTTP_BACKOFF_MAX", "Infinity"),
        ("RELINK_HTTP_PACE_BELOW", HUGE),
        ("RELINK_HTTP_MAX_ATTEMPTS", HUGE),
        ("RELINK_COMPANY_ID", HUGE),
        ("RELINK_COMPANY_ID", "-" + HUGE),
    ],
)
def test_non_finite_and_absurd_settings(relink: Relink, variable: str, value: str) -> None:
    """Non-finite or absurd numbers in the environment exit 2 naming the variable."""
    line = one_clear_line(relink("whoami", **{variable: value}), 2)
    assert variable in line


@pytest.mark.parametrize(
    "text",
    [
        "[http]\nread_timeout = inf\n",
        "[http]\nconnect_timeout = nan\n",
        "[http]\nmax_wait = 1e400\n",
        f"[procore]\ncompany_id = {2**63}\n",
    ],
)
def test_non_finite_settings_in_the_config_file(relink: Relink, tmp_path: Path, text: str) -> None:
    """TOML's inf and nan, and numbers beyond 64 bits, are refused with the key named."""
    config = tmp_path / "edge.toml"
    config.write_text(text)
    line = one_clear_line(relink("--config", str(config), "whoami"), 2)
    assert str(config) in line


def test_config_file_nested_too_deeply(relink: Relink, tmp_path: Path) -> None:
    """A relink.toml nested thousands deep exits 2, not a RecursionError (found by the fuzz)."""
    config = tmp_path / "deep.toml"
    config.write_text("[http]\nread_timeout = " + "[" * 30_000 + "]" * 30_000 + "\n")
    assert "nested too deeply" in one_clear_line(relink("--config", str(config), "list"), 2)


def test_config_file_not_utf8(relink: Relink, tmp_path: Path) -> None:
    """A relink.toml that is not UTF-8 exits 2 saying so."""
    config = tmp_path / "latin1.toml"
    config.write_bytes('[erp]\ncompany = "Müller"\n'.encode("latin-1"))
    line = one_clear_line(relink("--config", str(config), "list"), 2)
    assert "UTF-8" in line
    assert str(config) in line


@pytest.mark.parametrize("variable", ["RELINK_PROCORE_URL", "RELINK_PROCORE_LOGIN_URL",
                                      "RELINK_ERP_URL"])
@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[::1]:99999",
        "http://127.0.0.1:port",
        "ftp://127.0.0.1",
        "127.0.0.1:8765",
        "http://",
        "http://exa mple.com",
        "http://user:secret@127.0.0.1",
        "http://127.0.0.1/?x=1",
        "http://\u2603.example",
        "http://127.0.0.1/\x1b[2J",
    ],
)
def test_malformed_urls_refused_with_settings(relink: Relink, variable: str, url: str) -> None:
    """A malformed endpoint URL exits 2 when settings load, naming the variable, not the URL."""
    line = one_clear_line(relink("whoami", **{variable: url}), 2)
    assert variable in line
    assert "secret" not in line


def test_malformed_url_in_the_config_file(relink: Relink, tmp_path: Path) -> None:
    """The same check holds for URLs from relink.toml."""
    config = tmp_path / "urls.toml"
    config.write_text('[erp]\napi_url = "http://[::1"\n')
    line = one_clear_line(relink("--config", str(config), "list", RELINK_ERP_URL=""), 2)
    assert "erp.api_url" in line


@pytest.mark.parametrize("variable", ["RELINK_PROCORE_TOKEN", "RELINK_ERP_TOKEN"])
@pytest.mark.parametrize("token", ["sändbox-ana", "sandbox-ana\n", "sandbox\x1bana", "tok\u202een"])
def test_token_with_characters_a_header_cannot_carry(
    relink: Relink, sandbox: Sandbox, variable: str, token: str
) -> None:
    """A token that is not printable ASCII exits 2 naming the variable, never echoing it."""
    before = len(sandbox.calls())
    outcome = relink("whoami", **{variable: token})
    line = one_clear_line(outcome, 2)
    assert variable in line
    assert token.strip() not in outcome.stdout + outcome.stderr
    assert len(sandbox.calls()) == before


def reenter_ready(relink: Relink) -> str:
    """A correction whose next step is reenter."""
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "x")
    assert code == 0
    wid = str(doc["id"])
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert relink.json("advance", wid, step)[0] == 0
    return wid


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.json", "[" * 30_000 + "]" * 30_000),
        ("deep-items.json", '{"items": ' + "[" * 30_000 + "]" * 30_000 + "}"),
        ("deep.toml", "items = " + "[" * 30_000 + "]" * 30_000 + "\n"),
        ("deep-table.json", '{"comment": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}"),
    ],
)
def test_deeply_nested_data_file(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, name: str, content: str
) -> None:
    """A data file nested thousands deep exits 2 before anything is sent or written."""
    wid = reenter_ready(relink)
    before = len(sandbox.calls())
    path = tmp_path / name
    path.write_text(content)
    line = one_clear_line(relink("advance", wid, "reenter", "--data", str(path)), 2)
    assert "nested" in line
    assert len(sandbox.calls()) == before


def test_data_file_size_limit_holds_for_a_fifo(relink: Relink, tmp_path: Path) -> None:
    """A FIFO streaming more than the limit is cut off at limit+1 bytes and refused (exit 2)."""
    fifo = tmp_path / "endless.json"
    os.mkfifo(fifo)
    fed = {"bytes": 0}
    total = 4 * MAX_DATA_FILE  # bounded, so a reader without the limit still finishes

    def feed() -> None:
        try:
            with open(fifo, "wb") as writer:
                writer.write(b'{"comment": "')
                fed["bytes"] += 13
                chunk = b"a" * 65_536
                while fed["bytes"] < total:
                    writer.write(chunk)
                    fed["bytes"] += len(chunk)
                writer.write(b'"}')
        except BrokenPipeError:
            pass  # the reader stopped at the limit

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        outcome = relink("advance", "1", "reenter", "--data", str(fifo))
    finally:
        writer.join(timeout=10)
        if writer.is_alive():  # the CLI never opened the FIFO: release the writer
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            writer.join(timeout=10)
    line = one_clear_line(outcome, 2)
    assert f"larger than {MAX_DATA_FILE} bytes" in line
    assert fed["bytes"] < total


@pytest.mark.parametrize(
    "amount",
    ['"NaN"', '"nan"', '"1e400"', '"Infinity"', '"-Infinity"', '"sNaN"', '"1.234"', '"1,250.00"',
     '"1250.00 "', '"\u0661\u0662"', '"1234567890123.00"', "12", "true", '""'],
)
def test_amounts_that_are_not_money(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, amount: str
) -> None:
    """NaN, 1e400, Infinity and other non-money amounts exit 2 locally, nothing sent."""
    wid = reenter_ready(relink)
    before = len(sandbox.calls())
    entries = len(relink.json("audit", "log", "--format", "json")[1]["entries"])
    path = tmp_path / "amount.json"
    item = f'{{"line_item_id": 55011, "work_completed_this_period": {amount}}}'
    path.write_text(f'{{"items": [{item}]}}')
    line = one_clear_line(relink("advance", wid, "reenter", "--data", str(path)), 2)
    assert "work_completed_this_period" in line
    assert len(sandbox.calls()) == before
    assert len(relink.json("audit", "log", "--format", "json")[1]["entries"]) == entries


def test_money_amounts_still_pass(relink: Relink, sandbox: Sandbox, tmp_path: Path) -> None:
    """Decimal strings with at most two places go through, to the line item they name."""
    wid = reenter_ready(relink)
    path = tmp_path / "amount.json"
    path.write_text(json.dumps({"items": [{"line_item_id": 55011,
                                           "work_completed_this_period": "-12000.5",
                                           "materials_presently_stored": "0"}]}))
    assert relink("advance", wid, "reenter", "--data", str(path)).exit_code == 0
    (new,) = [r for r in sandbox.requisitions(101) if r["id"] > 2**32]
    assert [(i["line_item_id"], i["work_completed_this_period"], i["materials_presently_stored"])
            for i in new["items"]] == [(55011, "-12000.50", "0.00"), (55015, "2500.00", "0.00")]


# storage ---------------------------------------------------------------------------------------


def read_only_url(path: Path) -> str:
    """The file read-only for everyone; as root (who ignores file modes), opened read-only."""
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    if os.geteuid() == 0:
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    return f"sqlite:///{path}"


def test_read_only_sqlite_file(relink: Relink, sandbox: Sandbox, tmp_path: Path) -> None:
    """Writing to a read-only SQLite file exits 5 with one line; reading it still works."""
    path = tmp_path / "frozen.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    frozen = Relink(read_only_url(path), sandbox.env)
    assert frozen.json("list")[1] == {"items": []}
    line = one_clear_line(frozen("start", "9001", "--project", "101", "--reason", "x"), 5)
    assert "read-only" in line
    empty = tmp_path / "empty.db"
    empty.touch()
    line = one_clear_line(Relink(read_only_url(empty), sandbox.env)("list"), 5)
    assert "read-only" in line


@pytest.mark.parametrize(
    "content", [b"hello, not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_file_that_is_not_a_database(sandbox: Sandbox, tmp_path: Path, content: bytes) -> None:
    """A file that is not an SQLite database exits 5 with one line, and is left as it was."""
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    for args in (["list"], ["init"], ["audit", "verify"]):
        line = one_clear_line(Relink(f"sqlite:///{path}", sandbox.env)(*args), 5)
        assert "not" in line and "database" in line
    assert path.read_bytes() == content


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://",
                                 "sqlite:///file::memory:?uri=true",
                                 "sqlite:///file:x?mode=memory&uri=true"])
def test_in_memory_sqlite_refused(sandbox: Sandbox, url: str) -> None:
    """An in-memory SQLite database would lose the audit log at exit: exit 2."""
    for args in (["--db", url, "list"], ["init"]):
        outcome = Relink(url, sandbox.env)(*args)
        assert "memory" in one_clear_line(outcome, 2)


def postgres_url(**parts: str) -> str:
    """The test server's URL with another database or user."""
    if not POSTGRES_URL:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    return make_url(POSTGRES_URL).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "parts",
    [{"database": "relink_no_such_database"}, {"username": "relink_no_such_role"}],
)
def test_postgres_database_or_role_missing(sandbox: Sandbox, parts: dict[str, str]) -> None:
    """A PostgreSQL database or role that does not exist exits 3 with one line naming it."""
    url = postgres_url(**parts)
    for args in (["list"], ["init"]):
        line = one_clear_line(Relink(url, sandbox.env)(*args), 3)
        assert "cannot connect to the database" in line
        assert next(iter(parts.values())) in line


def test_postgres_sqlstates_decide_the_exit_code() -> None:
    """SQLSTATE, not message text, decides: 3D000 and 28xxx are storage (5), 08xxx and 57P03
    unavailable (3), 40001 and 55P03 a conflict (4)."""
    from engine.db import sqlstate_error
    from engine.errors import Conflict, StorageError, Unavailable

    assert isinstance(sqlstate_error("3D000", "u"), StorageError)
    assert isinstance(sqlstate_error("28P01", "u"), StorageError)
    assert isinstance(sqlstate_error("28000", "u"), StorageError)
    assert isinstance(sqlstate_error("08006", "u"), Unavailable)
    assert isinstance(sqlstate_error("57P03", "u"), Unavailable)
    assert isinstance(sqlstate_error("40001", "u"), Conflict)
    assert isinstance(sqlstate_error("55P03", "u"), Conflict)
    assert sqlstate_error("23505", "u") is None


# login -----------------------------------------------------------------------------------------


def test_login_with_standard_input_closed(relink: Relink, tmp_path: Path) -> None:
    """EOF at the login prompts exits 2 with a clear last line, nothing stored."""
    home = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(home), "RELINK_PROCORE_CLIENT_ID": "relink-sandbox"}
    outcome = relink("login", RELINK_PROCORE_CLIENT_SECRET="s", **env)
    assert outcome.exit_code == 2, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert "standard input" in outcome.stderr.strip().splitlines()[-1]
    outcome = relink("login", "--client-credentials", **env)  # the hidden secret prompt
    assert outcome.exit_code == 2, outcome
    assert "standard input" in outcome.stderr.strip().splitlines()[-1]
    assert not (home / "relink" / "credentials.json").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs")
def test_data_file_that_is_a_directory(relink: Relink, tmp_path: Path) -> None:
    """A directory given as --data exits 2 with one line."""
    line = one_clear_line(relink("advance", "1", "reenter", "--data", str(tmp_path)), 2)
    assert "cannot read it" in line


def test_demo_refuses_a_database_in_use(relink: Relink) -> None:
    """`demo --db` on a database that already holds entries exits 2 and adds nothing to it
    (it stopped with a KeyError, exit 70, having written into a real log; found by the fuzz)."""
    assert relink("start", "9001", "--project", "101", "--reason", "x").exit_code == 0
    before = relink.json("audit", "log", "--format", "json")[1]["entries"]
    line = one_clear_line(relink("demo", "--db", relink.db_url), 2)
    assert "empty database" in line
    assert relink.json("audit", "log", "--format", "json")[1]["entries"] == before


@pytest.mark.parametrize(
    "args",
    [["--fault-rate", "nan"], ["--rate-limit", "1/nan"], ["--rate-limit", "1/inf"],
     ["--latency-ms", str(2**64)], ["--rate-limit", "9" * 5000 + "/1"]],
)
def test_sandbox_serve_refuses_non_finite_rates(
    relink: Relink, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """`sandbox serve` refuses NaN, infinite and absurd rates (exit 2) instead of serving them."""
    from sandbox import server as sandbox_server

    served: list[dict[str, object]] = []
    monkeypatch.setattr(sandbox_server, "serve_forever",
                        lambda **kwargs: served.append(kwargs))
    one_clear_line(relink("sandbox", "serve", *args), 2)
    assert served == []


@pytest.mark.parametrize(
    "args",
    [
        ["start", "9001", "--project", "101", "--reason", "bad \udcff byte"],
        ["audit", "log", "--actor", "\udcff"],
        ["--db", "sqlite:///{tmp}/\udcff.db", "list"],
        ["audit", "export", "--format", "jsonl", "--out", "{tmp}/\udcff.jsonl"],
    ],
)
def test_arguments_that_are_not_utf8(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, args: list[str]
) -> None:
    """Argument bytes that are not UTF-8 (lone surrogates in Python) exit 2 before anything is
    sent or written (the audit log cannot hold them: exit 70; found by the fuzz)."""
    before = len(sandbox.calls())
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert "not UTF-8" in one_clear_line(relink(*args), 2)
    assert len(sandbox.calls()) == before
    assert relink.json("audit", "log", "--format", "json")[1] == {"entries": []}
    assert not [p for p in tmp_path.iterdir() if "\udcff" in p.name]


@pytest.mark.parametrize("variable", ["RELINK_ERP_COMPANY", "RELINK_PROCORE_CLIENT_ID",
                                      "RELINK_DATABASE_URL"])
def test_settings_that_are_not_utf8(relink: Relink, variable: str) -> None:
    """An environment value of bytes that are not UTF-8 exits 2 naming the variable."""
    line = one_clear_line(relink("whoami", **{variable: "x\udcffy"}), 2)
    assert variable in line and "not UTF-8" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"invoice_number": "INV-\\ud800"}', "not Unicode"),
        ('{"items": [{"line_item_id": 55011, "comment": "\\udfff",'
         ' "work_completed_this_period": "1.00"}]}', "not Unicode"),
        ('{"period_id": 1152921504606846976}', "below 2^53"),
    ],
)
def test_data_file_values_the_audit_log_cannot_hold(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, content: str, expected: str
) -> None:
    """A lone surrogate escape or an integer beyond 2^53 in --data exits 2 before anything is
    sent (period_id 2^60 exited 70 with the step left in flight)."""
    wid = reenter_ready(relink)
    before = len(sandbox.calls())
    path = tmp_path / "data.json"
    path.write_text(content)
    assert expected in one_clear_line(relink("advance", wid, "reenter", "--data", str(path)), 2)
    assert len(sandbox.calls()) == before
    assert relink.json("show", wid)[1]["in_flight"] is None


@pytest.mark.parametrize(
    "body",
    [b'{"id": 1152921504606846976, "project_id": 101}', b'{"id": 9001, "vendor_name": "\\ud800"}',
     b'{"id": 9001, "total": 1e400}'],
)
def test_remote_answers_the_audit_log_cannot_hold(body: bytes) -> None:
    """An answer with an integer beyond 2^53, a lone surrogate or an overflowing number is a
    RemoteError from the connector, never a value that breaks the audit entry recording it."""
    import httpx

    from integrations.errors import RemoteError
    from integrations.http import RetryPolicy
    from integrations.procore import ProcoreClient
    from integrations.shape import parse_json

    with pytest.raises(ValueError):
        parse_json(body)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    policy = RetryPolicy(attempts=1, backoff_initial=0, backoff_max=0, backoff_jitter=0)
    with ProcoreClient("http://procore.test", "token", 4021, policy=policy,
                       transport=transport) as client, pytest.raises(RemoteError):
        client.get_requisition(101, 9001)


@pytest.mark.parametrize("erp", ["xero", "qbo", "intacct"])
@pytest.mark.parametrize("company", ["tenant\u00e9", "a b", "x\n", "../../x", "a?b", "x" * 256])
def test_erp_company_that_no_url_or_header_can_carry(
    relink: Relink, erp: str, company: str
) -> None:
    """An ERP company id that would break the URL path (QuickBooks) or the header (Xero) it goes
    into exits 2 when settings load (Xero's exited 70; found by probing what the fuzz drew)."""
    line = one_clear_line(relink("whoami", RELINK_ERP=erp, RELINK_ERP_COMPANY=company), 2)
    assert "RELINK_ERP_COMPANY" in line


def test_login_prompt_with_no_standard_input_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """With file descriptor 0 closed Python has no sys.stdin: the prompt is a usage error (it was
    an AttributeError inside getpass, exit 70)."""
    from commands.session import prompt
    from engine.errors import UsageError

    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(UsageError, match="standard input closed"):
        prompt("Procore client secret", hidden=True)
