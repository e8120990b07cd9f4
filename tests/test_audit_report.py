"""`relink audit report`: one self-contained HTML file for an auditor, built from a golden
scenario run against the sandbox over real HTTP (one full correction with a refused and a
failed attempt on its way, and a refusal on a second correction), pinned by a snapshot with the
volatile values masked, and opened in a real browser (Debian's chromium, headless) that must
show every event and send no request anywhere."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from audit.diagram import NODE_H, Graph, _place, _width, svg
from audit.report import CSP, ChainCheck, CheckpointCheck, ReportInput, render
from audit.timeline import Attempt, path
from engine.terminal import printable
from tests.audit_support import Raw, opened
from tests.conftest import Relink, Sandbox

REASON = "Exported with the wrong invoice number <b>INV-1001</b> & \"quotes\""
BEN_REFUSAL = "ben@summit.example may not delete-in-erp (needs Can Push to Accounting)"
STILL_IN_ERP = "The requisition is still in QuickBooks Online. Please delete it before retrying."


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def golden(relink: Relink, tmp_path: Path, reason: str = REASON) -> None:
    """The golden scenario: correction 1 of invoice 9001 from start to Reentered, with unlink
    refused out of order and delete-in-erp failed (the ERP unreachable) on the way; correction
    2 of invoice 9002, where ben may not delete-in-erp."""
    steps: list[tuple[tuple[str, ...], int, dict[str, str]]] = [
        (("start", "9001", "--project", "101", "--reason", reason), 0, {}),
        (("advance", "1", "unlink"), 1, {}),
        (("advance", "1", "delete-in-erp", "--reason", "bill 183 carried the wrong number"), 3,
         {"RELINK_ERP_URL": f"http://127.0.0.1:{closed_port()}/erp",
          "RELINK_HTTP_MAX_ATTEMPTS": "1"}),
        (("advance", "1", "delete-in-erp", "--reason", "bill 183 carried the wrong number"), 0,
         {}),
        (("advance", "1", "unlink"), 0, {}),
        (("advance", "1", "delete-in-procore"), 0, {}),
    ]
    for args, code, env in steps:
        outcome = relink(*args, **env)
        assert outcome.exit_code == code, (args, outcome)
    data = tmp_path / "corrected.json"
    data.write_text('{"invoice_number": "INV-1001-C"}')
    assert relink("advance", "1", "reenter", "--data", str(data)).exit_code == 0
    assert relink("start", "9002", "--project", "101", "--reason", "paid twice").exit_code == 0
    refused = relink("advance", "2", "delete-in-erp", "--reason", "x", token="sandbox-ben")
    assert refused.exit_code == 1, refused


def report(relink: Relink, out: Path, *args: str) -> tuple[int, str, str]:
    """Run `relink audit report --out OUT`; its exit code, the HTML and the printed hash."""
    outcome = relink("audit", "report", "--out", str(out), *args)
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    return outcome.exit_code, text, outcome.stdout


INLINE = {"a", "b", "span", "strong", "code", "time", "em", "i"}


class Page(HTMLParser):
    """A parsed page: its visible text (no style, title or script; block elements apart,
    inline ones run on), its tags and attributes."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.parts: list[str] = []
        self._skip = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "title", "script"):
            self._skip += 1
        if tag not in INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "script"):
            self._skip -= 1
        if tag not in INLINE:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.parts))


# the report's content ------------------------------------------------------------------------


def test_report_shows_every_attempt_and_verifies_the_log(
    relink: Relink, tmp_path: Path
) -> None:
    """The golden scenario's report names each attempt with its actor, outcome, permission
    levels, remote calls and request ids, the invoice's changed fields, the path taken, and the
    verified head; stdout carries the file's SHA-256 in sha256sum's format."""
    golden(relink, tmp_path)
    out = tmp_path / "report.html"
    code, html, stdout = report(relink, out)
    assert code == 0, stdout
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert stdout == f"{digest}  {out}\n"

    page = Page(html)
    text = page.text
    verified = relink.json("audit", "verify")[1]
    assert f"Chain verified: all {verified['entries']} entries" in text
    assert f"seq {verified['head_seq']}, hash {verified['head_hash']}" in text
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    for entry in entries:
        assert f" {entry['message']} " in f" {text} ", entry["message"]
        for call in entry["evidence"].get("calls", []):
            if call["request_id"]:
                assert call["request_id"] in text
    assert "succeeded start — → Exported by ana@summit.example (Ana Alvarez" in text
    assert "refused unlink Exported → Exported by ana@summit.example" in text
    assert "failed delete-in-erp Exported → Exported by ana@summit.example" in text
    assert "could not connect after 1 attempt" in text
    assert "no answer" in text  # the call to the unreachable ERP
    assert "refused delete-in-erp Exported → Exported by ben@summit.example" in text
    assert BEN_REFUSAL in text
    assert "can_push_to_accounting false required missing" in text  # ben's levels as read
    assert "erp_integrations Admin Standard or Admin ok" in text  # ana's
    assert "invoice_number INV-1001 INV-1001-C changed" in text
    assert "origin_id 183 null changed" in text
    assert f"Reason: {REASON}" in text
    assert ("Path taken: start → Exported → delete-in-erp → DeletedInERP → unlink → Unlinked"
            " → delete-in-procore → DeletedInProcore → reenter → Reentered.") in text
    assert ("Tried and not taken: unlink from Exported (refused); delete-in-erp from Exported"
            " (failed).") in text
    # the reason's markup is text, not markup
    assert "b" not in {tag for tag, _ in page.tags}
    assert "&lt;b&gt;INV-1001&lt;/b&gt; &amp; &quot;quotes&quot;" in html
    # both corrections, their attempts in order, and the diagram's highlighted path
    assert [a.get("id") for t, a in page.tags if t == "section"][1:] == [
        "correction-1", "correction-2"]
    first = html.split('id="correction-2"')[0]
    steps = [str(a["data-step"]) for t, a in Page(first).tags
             if t == "g" and "taken" in (a.get("class") or "").split()]
    assert sorted(steps) == sorted(["start", "delete-in-erp", "unlink", "delete-in-procore",
                                    "reenter"])


def test_report_filters_like_audit_log(relink: Relink, tmp_path: Path) -> None:
    """--workflow, --invoice, --actor narrow the report to the matching entries."""
    golden(relink, tmp_path)
    out = tmp_path / "r.html"
    for args, shown, hidden in [
        (("--workflow", "2"), ["correction-2"], ["correction-1"]),
        (("--invoice", "9001"), ["correction-1"], ["correction-2"]),
        (("--actor", "ben@summit.example"), ["correction-2"], ["correction-1"]),
        (("--since", "2999-01-01"), [], ["correction-1", "correction-2"]),
    ]:
        code, html, _ = report(relink, out, *args)
        assert code == 0
        sections = {a.get("id") for t, a in Page(html).tags if t == "section"}
        assert set(shown) <= sections and not set(hidden) & sections, args
    code, html, _ = report(relink, out, "--actor", "ben@summit.example")
    assert "Filter actor ben@summit.example" in Page(html).text
    assert "ana@summit.example" not in Page(html).text.split("Chain verified")[1]
    code, html, _ = report(relink, out, "--since", "2999-01-01")
    assert "No entry matches this filter." in Page(html).text


def test_report_with_a_checkpoint(relink: Relink, tmp_path: Path) -> None:
    """With --checkpoint and --public-key the report shows the checkpoint verified; with
    another key it is written, says FAILED, and the command exits 5; either option alone is a
    usage error."""
    golden(relink, tmp_path)
    key, other = tmp_path / "key", tmp_path / "other"
    assert relink("audit", "keygen", "--out", str(key)).exit_code == 0
    assert relink("audit", "keygen", "--out", str(other)).exit_code == 0
    cp = tmp_path / "cp.json"
    assert relink("audit", "checkpoint", "--key", str(key), "--out", str(cp)).exit_code == 0
    signed = json.loads(cp.read_text())
    out = tmp_path / "r.html"
    code, html, _ = report(relink, out, "--checkpoint", str(cp), "--public-key",
                           f"{key}.pub")
    assert code == 0
    assert (f"Checkpoint ✔ verified: seq {signed['seq']}, hash {signed['hash']}"
            in Page(html).text)
    out.unlink()
    code, html, stdout = report(relink, out, "--checkpoint", str(cp), "--public-key",
                                f"{other}.pub")
    assert code == 5
    assert stdout == f"{hashlib.sha256(out.read_bytes()).hexdigest()}  {out}\n"
    text = Page(html).text
    assert ("Checkpoint ✘ FAILED: audit log verification failed: checkpoint was signed with"
            " another key") in text
    assert "Chain verified" in text
    assert 'class="verification failed"' in html
    for args in (("--checkpoint", str(cp)), ("--public-key", f"{key}.pub")):
        outcome = relink("audit", "report", "--out", str(tmp_path / "x.html"), *args)
        assert outcome.exit_code == 2
        assert "--checkpoint and --public-key go together" in outcome.stderr
        assert not (tmp_path / "x.html").exists()


def test_report_of_a_tampered_log_says_so(relink: Relink, tmp_path: Path) -> None:
    """An entry altered in the database: the report is still written, its verification names
    the seq that fails, and the command exits 5."""
    golden(relink, tmp_path)
    with opened(relink.db_url) as db:
        raw = Raw(db)
        raw.drop_triggers()
        raw.execute("UPDATE audit_entry SET message = ? WHERE seq = ?", ("nothing to see", 4))
        raw.close()
    out = tmp_path / "r.html"
    code, html, _ = report(relink, out)
    assert code == 5
    text = Page(html).text
    assert "Chain verification FAILED: audit log verification failed at seq 4:" in text
    assert 'class="verification failed"' in html


def test_report_refuses_bad_targets_and_json_to_stdout(relink: Relink, tmp_path: Path) -> None:
    """--out naming a folder is refused with one line (exit 2) before anything is read;
    --json without --out is refused; --json with --out prints one JSON document."""
    golden(relink, tmp_path)
    outcome = relink("audit", "report", "--out", str(tmp_path))
    assert outcome.exit_code == 2
    assert "is a directory" in outcome.stderr and "Traceback" not in outcome.stderr
    outcome = relink("--json", "audit", "report")
    assert outcome.exit_code == 2
    out = tmp_path / "r.html"
    code, doc = relink.json("audit", "report", "--out", str(out))
    assert code == 0
    assert doc["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (doc["ok"], doc["corrections"], doc["chain"]["ok"]) == (True, 2, True)


def test_report_of_too_many_entries_is_refused(
    relink: Relink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More matching entries than a report holds: one line naming the filters, exit 2, no
    file; a narrower filter gets its report."""
    import engine.report

    golden(relink, tmp_path)
    monkeypatch.setattr(engine.report, "MAX_ENTRIES", 5)
    out = tmp_path / "r.html"
    outcome = relink("audit", "report", "--out", str(out))
    assert outcome.exit_code == 2
    assert outcome.stderr == ("Error: more than 5 entries match: a report holds at most that"
                              " many; narrow the filter (relink audit report --help lists"
                              " them)\n")
    assert not out.exists()
    assert relink("audit", "report", "--out", str(out), "--workflow", "2").exit_code == 0


def test_report_to_stdout_is_the_same_document(relink: Relink, tmp_path: Path) -> None:
    """Without --out the HTML goes to stdout and its SHA-256 to stderr."""
    golden(relink, tmp_path)
    outcome = relink("audit", "report", "--workflow", "2")
    assert outcome.exit_code == 0
    data = outcome.stdout.encode("utf-8")
    assert data.startswith(b"<!DOCTYPE html>")
    assert outcome.stderr == f"{hashlib.sha256(data).hexdigest()}  -\n"


# the snapshot --------------------------------------------------------------------------------


class HTMLSnapshot(SingleFileSnapshotExtension):
    """A snapshot that is an HTML file (open it in a browser to see the golden report)."""

    file_extension = "html"
    _write_mode = WriteMode.TEXT


MASKS = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z"), "TIME"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "HASH"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "KEY"),
    (re.compile(r" on [^ ]+ \(pid \d+\)"), " on HOST (pid PID)"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
)
REQUEST_ID = re.compile(r"\bsandbox-\d+\b")


def masked(html: str) -> str:
    """The report with what differs from run to run masked: times, hashes, keys, hosts,
    ports, and request ids numbered by first appearance."""
    for pattern, replacement in MASKS:
        html = pattern.sub(replacement, html)
    ids: dict[str, str] = {}
    return REQUEST_ID.sub(lambda m: ids.setdefault(m[0], f"REQUEST-{len(ids) + 1}"), html)


@pytest.fixture(name="sqlite_relink")
def fixture_sqlite_relink(sqlite_url: str, sandbox: Sandbox) -> Relink:
    """`relink` on a SQLite file: the snapshot and the browser read the same HTML whatever
    the backend (the scenario tests run on every backend)."""
    return Relink(sqlite_url, sandbox.env)


def test_report_html_is_pinned(
    sqlite_relink: Relink, tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    """The golden report's HTML, volatile values masked, is the snapshot's."""
    golden(sqlite_relink, tmp_path)
    code, html, _ = report(sqlite_relink, tmp_path / "r.html")
    assert code == 0
    assert masked(html) == snapshot(extension_class=HTMLSnapshot)


# escaping and the diagram, without a database -------------------------------------------------

TAGS = {"html", "head", "meta", "title", "style", "body", "header", "main", "footer", "nav",
        "section", "h1", "h2", "h3", "h4", "p", "dl", "dt", "dd", "ol", "li", "a", "span",
        "strong", "code", "time", "div", "table", "thead", "tbody", "tr", "th", "td",
        "blockquote", "figure", "figcaption", "svg", "defs", "marker", "path", "g", "rect",
        "text", "circle"}
HOSTILE = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from([
    '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "</style><b>x</b>",
    "a\u202eb\x1b[31m", "&amp;", "]]></svg><iframe>", "line one\nline two"])


def entry(seq: int, text: str, **fields: Any) -> dict[str, Any]:
    base = {
        "seq": seq, "recorded_at": text, "workflow_id": 1, "workflow": text,
        "workflow_version": 1, "company_id": 4021, "project_id": 101, "invoice_id": 9001,
        "erp_bill_id": text, "actor_id": 7001, "actor_login": text, "actor_name": text,
        "action": text, "from_state": text, "to_state": text, "outcome": "refused",
        "message": text, "reason": text, "format": 2, "subject_type": text, "subject_id": text,
        "evidence": {text: text, "calls": [{"system": text, "method": text, "path": text,
                                            "status": text, "request_id": text}],
                     "permissions": {text: text}, "required": {text: [text]},
                     "before": {text: text}, "after": {text: text + "!"},
                     "approver": {"login": text, "name": text}, "expires_at": text},
    }
    return base | fields


@settings(max_examples=60, deadline=None)
@given(text=HOSTILE)
def test_every_text_is_escaped(text: str) -> None:
    """Whatever an entry holds, in any field or evidence key, the report shows it as text:
    only the report's own tags and attributes appear, no link leaves the page, and control
    and bidi characters are shown as escapes."""
    graph = Graph(text, 1, (text, text + "2"), text, frozenset({text + "2"}),
                  ((text, text, text + "2"),))
    html = render(ReportInput(
        entries=[entry(1, text), entry(2, text, workflow_id=None, outcome=text)],
        chain=ChainCheck(ok=False, problem=text),
        checkpoint=CheckpointCheck(ok=False, problem=text),
        filters=[("actor", text)], graphs={(text, 1): graph},
        generated_at=text, generator=text,
    ), visible=printable)
    page = Page(html)
    assert {tag for tag, _ in page.tags} <= TAGS
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "src" not in attrs
        assert (attrs.get("href") or "#").startswith("#")
    assert html.count("<script") == 0 and html.count("<style>") == 1
    shown = printable(text).replace("\n", " ")
    if shown.strip():
        assert re.sub(r"\s+", " ", shown).strip() in page.text
    assert f'content="{CSP}"' in html


@pytest.mark.parametrize("name", ["subcontractor-invoice", "commitment"])
def test_diagram_draws_every_step_once_and_highlights_the_path(name: str) -> None:
    """Every step of a definition is one edge of the diagram, no two states overlap, and the
    path taken (here start and the first step) is highlighted, the refused step marked."""
    from engine.report import _graph

    graph = _graph(name, 1)
    assert graph is not None
    first, second = graph.edges[0], graph.edges[-1]
    entries = [
        {"seq": 1, "action": "start", "from_state": None, "to_state": graph.initial,
         "outcome": "succeeded", "evidence": {}},
        {"seq": 2, "action": second[0], "from_state": second[1], "to_state": second[1],
         "outcome": "refused", "evidence": {}},
        {"seq": 3, "action": first[0], "from_state": first[1], "to_state": first[2],
         "outcome": "succeeded", "evidence": {}},
    ]
    drawn = Page(svg(graph, path([Attempt((e,)) for e in entries]), uid="t",
                     escape=printable))
    edges = [(a["data-step"], a["data-from"], a["data-to"], a["class"]) for t, a in drawn.tags
             if t == "g" and a.get("data-from")]
    assert sorted(e[:3] for e in edges) == sorted(graph.edges)
    styles = {e[0]: e[3] for e in edges}
    assert styles[first[0]] == "edge taken"
    assert styles[second[0]] == "edge tried"
    assert all(style == "edge" for step, style in styles.items()
               if step not in (first[0], second[0]))
    x, y, _ = _place(graph)
    boxes = [(x[s] - _width(s) / 2, y[s] - NODE_H / 2, x[s] + _width(s) / 2, y[s] + NODE_H / 2)
             for s in graph.states]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


# a real browser ------------------------------------------------------------------------------


@pytest.fixture(name="chromium")
def fixture_chromium() -> str:
    """Debian's chromium (`make browser` installs it): missing, the test is skipped, or
    fails when CI=true."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make test installs it: `make browser`)")
        pytest.skip("chromium is not installed (`make browser` installs it)")
    return found


class Listener:
    """A local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="listener")
def fixture_listener() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.stop()


def browse(chromium: str, tmp_path: Path, page: Path, *args: str) -> str:
    """Open ``page`` in headless chromium (its profile and home in ``tmp_path``); stdout."""
    home = tmp_path / "chromium-home"
    home.mkdir(exist_ok=True)
    command = [
        chromium, "--headless", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
        *(["--no-sandbox"] if os.geteuid() == 0 else []), *args, page.as_uri(),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_report_in_headless_chromium(
    sqlite_relink: Relink, tmp_path: Path, chromium: str, listener: Listener
) -> None:
    """Chromium renders the golden report with each event in its text; a reason holding an
    <img> and a <script> aimed at a local server shows literally and makes no request (the
    page is checked to load nothing), while a control page without the report's defences does
    reach that server; the screenshot stays in tmp_path."""
    relink = sqlite_relink
    base = f"http://127.0.0.1:{listener.port}"
    hostile = (f'<img src="{base}/x"> <script>new Image().src = "{base}/script";</script>'
               f' <link rel="stylesheet" href="{base}/css">')
    golden(relink, tmp_path, reason=hostile)
    out = tmp_path / "report.html"
    code, _, _ = report(relink, out)
    assert code == 0

    dom = browse(chromium, tmp_path, out, "--dump-dom")
    page = Page(dom)
    text = page.text
    assert "Chain verified" in text
    for event in (
        "succeeded start — → Exported by ana@summit.example",
        "refused unlink Exported → Exported by ana@summit.example", STILL_IN_ERP,
        "failed delete-in-erp Exported → Exported", "could not connect after 1 attempt",
        "succeeded delete-in-erp Exported → DeletedInERP",
        "succeeded unlink DeletedInERP → Unlinked", "Successfully Unlinked",
        "succeeded reenter DeletedInProcore → Reentered", "INV-1001 INV-1001-C changed",
        "refused delete-in-erp Exported → Exported by ben@summit.example", BEN_REFUSAL,
    ):
        assert event in text, event
    assert f"Reason: {hostile}" in text  # literally, as text
    assert not [a for t, a in page.tags if t in ("img", "script", "link", "iframe")]
    shot = tmp_path / "report.png"
    browse(chromium, tmp_path, out, f"--screenshot={shot}", "--window-size=1200,2400")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert listener.requests == []

    control = tmp_path / "control.html"
    control.write_text(f'<!DOCTYPE html><p>control</p><img src="{base}/control">')
    browse(chromium, tmp_path, control, "--dump-dom")
    assert listener.requests == ["/control"]
