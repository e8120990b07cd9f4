"""Output people read (issue 11, items 9 and 10): at 80 columns, on a terminal with colours
and piped alike, `list`, `show`, `audit log` and `workflows show` never break an id, a state, a
step or a time; times are local on a terminal (``--utc``: UTC); `audit log` says how many
entries it leaves out, and when none match."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import build_log, opened
from tests.conftest import Relink
from tests.terminal_support import corrections, in_terminal, local, plain, script_env, utc

WIDTH = 80


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """The installed script runs on a SQLite file in the pseudo-terminal (the layout does not
    depend on the backend)."""
    return sqlite_url


@pytest.fixture(name="made")
def fixture_made(relink: Relink, tmp_path: Path) -> dict[str, Any]:
    """Corrections re-entered, cancelled and open, made through the sandbox."""
    return corrections(relink, tmp_path)


def narrow(text: str, width: int = WIDTH) -> list[str]:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > width]
    assert too_wide == [], too_wide
    return lines


def whole(word: str, text: str) -> bool:
    """``word`` appears in ``text`` unbroken, not as part of a longer name."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def trail_rows(text: str, entries: list[dict[str, Any]], shown: Any) -> None:
    """Each entry has one row: seq, time (as ``shown``), actor, action, outcome, state."""
    for entry in entries:
        state = entry["to_state"] or entry["from_state"]
        row = (rf"^\s*{entry['seq']}\s+{re.escape(shown(entry['recorded_at']))}\s+ana\s+"
               rf"{re.escape(entry['action'])}\s+{entry['outcome']}\s+{state}$")
        assert re.search(row, text, re.M), (row, text)


def test_list_on_a_terminal_keeps_words_whole(relink: Relink, made: dict[str, Any]) -> None:
    """`list` on an 80-column terminal, colours on: each correction's id, state, invoice and
    local time of its last change whole on its row; its next steps whole."""
    code, out = in_terminal(["list"], script_env(relink))
    assert code == 0, out
    assert "\x1b[1m" in out  # colours on: the bold header
    text = plain(out)
    narrow(text)
    assert re.search(r"^id\s+state\s+project\s+invoice\s+bill\s+updated \(IST\)", text, re.M)
    for item in relink.json("list")[1]["items"]:
        row = (rf"^\s*{item['id']}\s+{item['state']}\s+101\s+{item['invoice_id']}\s+"
               rf"{item['erp_bill_id']}\s+{re.escape(local(item['updated_at'], seconds=False))}")
        assert re.search(row, text, re.M), (row, text)
        assert all(whole(step, text) for step in item["next"])


def test_show_on_a_terminal_keeps_words_whole(relink: Relink, made: dict[str, Any]) -> None:
    """`show` on an 80-column terminal: the facts, then a history row per entry with its
    local time, the outcome in colour, and the message whole words below."""
    wid = str(made["reentered"])
    code, out = in_terminal(["show", wid], script_env(relink))
    assert code == 0, out
    assert "\x1b[32msucceeded" in out and "\x1b[33mrefused" in out
    text = plain(out)
    narrow(text)
    assert re.search(rf"^re-entered as\s+{made['new_invoice']}$", text, re.M)
    entries = relink.json("audit", "log", "--workflow", wid)[1]["entries"]
    assert re.search(r"^\s*seq\s+time \(IST\)\s+actor\s+action\s+outcome\s+state$", text, re.M)
    trail_rows(text, entries, local)
    assert "The requisition is still in QuickBooks Online. Please delete it" in text


def test_audit_log_on_a_terminal_keeps_words_whole(relink: Relink, made: dict[str, Any]) -> None:
    """`audit log` on an 80-column terminal: a whole row per entry, in local time."""
    code, out = in_terminal(["audit", "log"], script_env(relink))
    assert code == 0, out
    text = plain(out)
    narrow(text)
    trail_rows(text, relink.json("audit", "log")[1]["entries"], local)
    assert "Showing" not in text  # all of them shown


def test_utc_switches_a_terminal_to_utc(relink: Relink, made: dict[str, Any]) -> None:
    """--utc, before the command or after it, shows the times in UTC on a terminal."""
    entries = relink.json("audit", "log")[1]["entries"]
    for args in (["--utc", "audit", "log"], ["audit", "log", "--utc"]):
        code, out = in_terminal(args, script_env(relink))
        assert code == 0, out
        text = plain(out)
        assert "time (UTC)" in text
        trail_rows(text, entries, utc)


def test_workflows_show_on_a_terminal_keeps_words_whole(relink: Relink) -> None:
    """`workflows show` at 80 columns: each step named whole at the start of its line, every
    state whole."""
    doc = relink.json("workflows", "show", "subcontractor-invoice")[1]
    code, out = in_terminal(["workflows", "show", "subcontractor-invoice"], script_env(relink))
    assert code == 0, out
    text = plain(out)
    narrow(text)
    for step in doc["steps"]:
        assert re.search(rf"^{re.escape(step['name'])}\s+\S", text, re.M), step["name"]
    assert all(whole(state, text) for state in doc["states"])


@pytest.mark.parametrize("args", [["list"], ["show", "{reentered}"], ["audit", "log"],
                                  ["workflows", "show", "subcontractor-invoice"]])
def test_piped_output_keeps_words_whole(
    relink: Relink, made: dict[str, Any], args: list[str]
) -> None:
    """Piped at 80 columns, times in UTC: rows whole, nothing wider than 80."""
    outcome = relink(*(arg.format(**made) for arg in args), COLUMNS=str(WIDTH))
    assert outcome.exit_code == 0, outcome
    text = outcome.stdout
    narrow(text)
    if args[0] == "list":
        for item in relink.json("list")[1]["items"]:
            assert re.search(rf"^\s*{item['id']}\s+{item['state']}\s+.*"
                             rf"{re.escape(utc(item['updated_at'], seconds=False))}$", text, re.M)
    elif args[0] in ("show", "audit"):
        wid = ["--workflow", str(made["reentered"])] if args[0] == "show" else []
        trail_rows(text, relink.json("audit", "log", *wid)[1]["entries"], utc)
    else:
        assert all(whole(state, text) for state in ("DeletedInProcore", "DeletedInERP"))


def test_a_wide_terminal_shows_messages_beside_their_rows(
    relink: Relink, made: dict[str, Any]
) -> None:
    """With room for them (160 columns), messages sit on their entry's row."""
    code, out = in_terminal(["audit", "log"], script_env(relink), columns=160)
    assert code == 0, out
    text = plain(out)
    assert re.search(r"^\s*1\s+.*\s+Exported\s+Started correction of invoice 9001", text, re.M)
    assert re.search(r"^\s*seq\s+time \(IST\).*state\s+message$", text, re.M)


def test_audit_log_says_how_many_it_leaves_out(relink: Relink) -> None:
    """Of 85 entries the table shows the newest 50 and says so; --limit N likewise."""
    with opened(relink.db_url) as db:
        entries = build_log(db, corrections=17)
    table = relink("audit", "log", COLUMNS=str(WIDTH))
    assert table.exit_code == 0
    lines = narrow(table.stdout)
    assert lines[-1] == f"Showing the newest 50 of {len(entries)} entries (--limit 85 shows all)."
    rows = [line for line in lines if re.match(r"^\s*\d+\s+\d{4}-", line)]
    assert [int(row.split()[0]) for row in rows] == list(range(36, 86))
    three = relink("audit", "log", "--limit", "3", "--actor", "dana.whitfield").stdout
    dana = sum(1 for entry in entries if entry["actor_login"].startswith("dana"))
    assert three.splitlines()[-1] == (
        f"Showing the newest 3 of {dana} entries (--limit {dana} shows all).")
    assert "Showing" not in relink("audit", "log", "--limit", "85").stdout


def test_audit_log_says_when_nothing_matches(relink: Relink) -> None:
    """An empty log and a filter matching nothing each say so, exit 0."""
    empty = relink("audit", "log")
    assert (empty.exit_code, empty.stdout) == (0, "The audit log is empty.\n")
    with opened(relink.db_url) as db:
        build_log(db, corrections=1)
    none = relink("audit", "log", "--project", "999")
    assert (none.exit_code, none.stdout) == (0, "No audit entries match.\n")
