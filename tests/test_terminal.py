"""Text relink did not write reaches the terminal as typed: never as rich markup, control
sequences or bidi overrides (issue 8, defect 4)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.terminal import for_terminal, printable, rich_safe, terminal_safe_json
from tests.conftest import Outcome, Relink

NASTY = "[/bold] [link=http://x]y[/link] \x1b]0;title\x07 \x1b[2J \u202eevil \x9b31m end"
VISIBLE = ("[/bold]", "[link=http://x]y[/link]", "\\x1b]0;title\\x07", "\\x1b[2J", "\\u202e",
           "\\x9b")
RAW = ("\x1b]", "\x1b[2J", "\x07", "\u202e", "\x9b")
COLOURS = {"plain": {"NO_COLOR": "1"}, "colour": {"NO_COLOR": "", "FORCE_COLOR": "1"}}


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Rendering does not depend on the backend; SQLite is enough."""
    return sqlite_url


@pytest.fixture(name="colour", params=sorted(COLOURS))
def fixture_colour(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a run without colour, and of one forced into colour."""
    return COLOURS[request.param]


def assert_shown_as_typed(outcome: Outcome, *, visible: tuple[str, ...] = VISIBLE) -> None:
    """Exit 0, the escaped form visible, nothing raw on stdout or stderr."""
    assert outcome.exit_code == 0, outcome
    text = outcome.stdout + outcome.stderr
    for raw in RAW:
        assert raw not in text, (raw, outcome)
    flat = "".join(text.split())  # tables may fold long cells
    for shown in visible:
        assert "".join(shown.split()) in flat, (shown, outcome)


def test_printable_shows_control_and_bidi_characters() -> None:
    """printable escapes C0, DEL, C1, bidi marks, separators and surrogates; keeps the rest."""
    assert printable("a\x1b[2Jb\x07\x7f\x85") == "a\\x1b[2Jb\\x07\\x7f\\x85"
    assert printable("\u202a\u202e\u2066\u2069\u200e\u200f\u061c\u2028\udcff") == (
        "\\u202a\\u202e\\u2066\\u2069\\u200e\\u200f\\u061c\\u2028\\udcff"
    )
    assert printable("line\nnext\ttab") == "line\\x0anext\\x09tab"
    assert printable("line\nnext", newlines=True) == "line\nnext"
    assert printable("Zoë – 日本 \\x1b [b]") == "Zoë – 日本 \\x1b [b]"
    assert printable(None) == "None"


def test_rich_safe_renders_exactly_the_printable_text() -> None:
    """rich_safe markup renders as the printable text, tags and all, never as styles."""
    from rich.text import Text

    assert Text.from_markup(rich_safe(NASTY)).plain == printable(NASTY)
    ending = "ends with \\"
    assert Text.from_markup(f"[b]{rich_safe(ending)}[/b]").plain == ending


def test_terminal_safe_json_keeps_the_value() -> None:
    """terminal_safe_json escapes C1 and bidi characters and parses back to the same value."""
    document = json.dumps({"reason": NASTY, "name": "Zoë"}, ensure_ascii=False, indent=2)
    safe = terminal_safe_json(document)
    assert all(raw not in safe for raw in RAW)
    assert "Zoë" in safe and json.loads(safe) == json.loads(document)


def test_for_terminal_escapes_only_at_a_terminal() -> None:
    """jsonl/csv on a terminal: nothing raw (JSON values kept); piped: the data unchanged."""
    import csv
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    line = json.dumps({"reason": NASTY}, ensure_ascii=False) + "\n"
    piped = io.StringIO()
    assert for_terminal(piped, "jsonl") is piped
    shown = Terminal()
    for_terminal(shown, "jsonl").write(line)
    assert json.loads(shown.getvalue()) == {"reason": NASTY}
    assert all(raw not in shown.getvalue() for raw in RAW)
    table = Terminal()
    csv.writer(for_terminal(table, "csv")).writerows([["reason"], [NASTY]])
    assert all(raw not in table.getvalue() for raw in (*RAW, "\r"))
    assert table.getvalue().splitlines()[1] == printable(NASTY)


def test_every_renderer_shows_untrusted_text_as_typed() -> None:
    """Tables, the show grid, whoami and definitions render hostile values, colour on."""
    import io

    from rich.console import Console

    from commands import render

    entry = {"seq": 1, "recorded_at": "2026-11-27T18:04:05.000000Z", "actor_login": NASTY,
             "action": NASTY, "from_state": NASTY, "to_state": "Exported", "outcome": NASTY,
             "message": NASTY}
    item = {"id": 1, "state": NASTY, "project_id": 101, "invoice_id": 9001,
            "erp_bill_id": NASTY, "in_flight": {"step": NASTY, "since": NASTY},
            "next": [NASTY], "updated_at": NASTY}
    doc = item | {"workflow": NASTY, "version": 1, "company_id": 1, "erp": NASTY,
                  "reason": NASTY, "new_invoice_id": NASTY, "history": [entry]}
    needs = {"commitments": [NASTY], "erp_integrations": [], "can_push_to_accounting": True}
    who = {"name": NASTY, "login": NASTY, "id": 7, "company_id": 1, "erp": NASTY,
           "permissions": {"commitments": NASTY},
           "steps": [{"step": NASTY, "requires": needs, "allowed": False, "missing": [NASTY]}]}
    definition = {"name": NASTY, "version": 1, "description": NASTY, "states": [NASTY],
                  "finals": [NASTY], "steps": [{"name": NASTY, "from": [NASTY], "to": NASTY,
                                                "requires": needs, "summary": NASTY}]}
    cases: list[tuple[Callable[[Console, Any], None], Any]] = [
        (render.audit_table, [entry]), (render.workflow_table, [item]),
        (render.show_workflow, doc), (render.identity, who), (render.definition, definition),
    ]
    for draw, value in cases:
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, color_system="truecolor", width=400,
                          highlight=False, emoji=False)
        draw(console, value)
        text = out.getvalue()
        assert all(raw not in text for raw in RAW), (draw, text)
        assert "[/bold]" in text and "\\u202e" in text, (draw, text)


def test_a_reason_is_shown_as_typed(relink: Relink, colour: dict[str, str]) -> None:
    """A reason with markup, escapes and bidi: start, advance, show, list, audit log exit 0."""
    started = relink("start", "9001", "--project", "101", "--reason", NASTY, **colour)
    assert started.exit_code == 0, started
    wid = relink.json("list")[1]["items"][0]["id"]
    advanced = relink("advance", str(wid), "delete-in-erp", "--reason", NASTY, **colour)
    assert advanced.exit_code == 0, advanced
    assert_shown_as_typed(relink("show", str(wid), **colour))
    assert_shown_as_typed(relink("list", **colour), visible=())
    for args in (("audit", "log"), ("audit", "log", "--workflow", str(wid))):
        assert_shown_as_typed(relink(*args, **colour), visible=())


def test_an_invoice_number_from_procore_is_shown_as_typed(
    relink: Relink, colour: dict[str, str], tmp_path: Path
) -> None:
    """An invoice number re-entered with markup and escapes is shown as typed everywhere."""
    wid = relink.json("start", "9001", "--project", "101", "--reason", "fix")[1]["id"]
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert relink.json("advance", str(wid), step)[0] == 0
    data = tmp_path / "corrected.json"
    data.write_text(json.dumps({"invoice_number": NASTY}))
    reentered = relink("advance", str(wid), "reenter", "--data", str(data), **colour)
    assert_shown_as_typed(reentered)
    for args in (("show", str(wid)), ("audit", "log"), ("list",)):
        assert_shown_as_typed(relink(*args, **colour), visible=() if args == ("list",) else VISIBLE)


def test_json_output_escapes_bidi_and_c1_but_keeps_the_value(relink: Relink) -> None:
    """--json show and audit log carry the reason exactly, with no raw C1 or bidi character."""
    code, doc = relink.json("start", "9001", "--project", "101", "--reason", NASTY)
    assert code == 0, doc
    for args in (("show", str(doc["id"])), ("audit", "log")):
        outcome = relink("--json", *args)
        assert outcome.exit_code == 0 and all(raw not in outcome.stdout for raw in RAW)
    assert relink.json("show", str(doc["id"]))[1]["reason"] == NASTY
    assert relink.json("audit", "log")[1]["entries"][0]["workflow_id"] == doc["id"]


@pytest.mark.parametrize(
    "args",
    [
        ("advance", "1", "reenter", "--data", "{missing}"),
        ("--config", "{missing}", "list"),
        ("--json", "--config", "{missing}", "list"),
        ("audit", "export", "--format", "jsonl", "--out", "{missing}/x"),
        ("audit", "verify", "--checkpoint", "{missing}", "--public-key", "{missing}"),
        (NASTY,),
        ("advance", "1", NASTY),
    ],
)
def test_an_error_line_shows_control_characters_visibly(
    relink: Relink, args: tuple[str, ...], tmp_path: Path
) -> None:
    """Errors quoting the user's input are one line on stderr with no raw escapes."""
    missing = str(tmp_path / NASTY.replace("\x07", "\n"))
    outcome = relink(*(arg.replace("{missing}", missing) for arg in args))
    assert outcome.exit_code == 2, outcome
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome
    assert all(raw not in outcome.stdout + outcome.stderr for raw in RAW), outcome
    assert "\\x1b" in outcome.stderr and "\\u202e" in outcome.stderr, outcome
