"""The audit report: one self-contained HTML file a reviewer hands an auditor.

:func:`render` turns entries in their wire form (:mod:`audit.chain`), the verification of the
whole log and the workflows' diagrams into the page; it reads nothing and calls nothing. At
the top, the verification of the chain (and of a signed checkpoint) with the head's hash; then,
for each correction, its facts, the invoice (or other subject) before and after as a
field-by-field difference, its workflow's diagram with the path taken highlighted
(:mod:`audit.diagram`), and a timeline of every attempt (grouped by :mod:`audit.timeline`,
written by :mod:`audit.attempts`) — refused and failed ones too — with the actor, the
permission levels read, the remote calls and their request ids, and any other evidence
(actions relink does not know, approvals say, are shown the same way).

The page loads nothing: styles and diagrams are inline, it holds no script, and its
Content-Security-Policy (:data:`CSP`) forbids everything but inline styles and ``data:``
images. Every text that relink did not write — and everything from an entry is that — is
HTML-escaped after ``visible`` (the caller's rule for control and bidirectional characters)
has made it readable, in text and in attributes alike (:mod:`audit.markup`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audit.attempts import Timeline
from audit.diagram import Graph, svg
from audit.log import Filters
from audit.markup import OUTCOME_WORDS, plural
from audit.stylesheet import STYLESHEET
from audit.timeline import Attempt, Correction, differences, group, path

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# how the report names the filters (audit.log.Filters' fields)
FILTER_LABELS = {
    "workflow_id": "correction",
    "invoice_id": "invoice",
    "project_id": "project",
    "actor_login": "actor",
    "action": "action",
    "outcome": "outcome",
    "since": "since",
    "until": "before",
    "subject_type": "subject type",
    "subject_id": "subject",
}


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The verification of the whole chain: ``ok`` with the head, or the ``problem``."""

    ok: bool
    problem: str | None = None
    entries: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    log_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """The verification of a signed checkpoint: ``ok`` with what it signed, or the
    ``problem``."""

    ok: bool
    problem: str | None = None
    seq: int | None = None
    hash: str | None = None
    signed_at: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a report shows. ``filters``: (label, value) pairs of the filter the entries
    matched; ``graphs``: the diagrams by (workflow, version); ``left_out``: matching entries
    appended after the verified head, not shown."""

    entries: Sequence[dict[str, Any]]
    chain: ChainCheck
    checkpoint: CheckpointCheck | None
    filters: Sequence[tuple[str, str]]
    graphs: Mapping[tuple[str, int], Graph]
    generated_at: str
    generator: str
    left_out: int = 0


def render(report: ReportInput, *, visible: Callable[[str], str]) -> str:
    """The report as one HTML document."""
    return _Page(report, visible).html()


class _Page(Timeline):
    def __init__(self, report: ReportInput, visible: Callable[[str], str]) -> None:
        super().__init__(visible)
        self.report = report

    # the page ------------------------------------------------------------------------------

    def html(self) -> str:
        corrections, loose = group(self.report.entries)
        self.w(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            "<title>relink audit report</title>\n",
            f"<style>{STYLESHEET}</style>\n</head>\n<body>\n",
        )
        self.header(corrections, loose)
        self.w("<main>\n")
        for correction in corrections:
            self.correction(correction)
        if loose:
            self.w('<section class="loose" id="outside">\n<h2>Outside any correction</h2>\n',
                   '<p class="muted">Entries that belong to no correction: a start refused'
                   " before one existed, log events such as checkpoints.</p>\n")
            self.timeline(loose, "outside", show_subject=True)
            self.w("</section>\n")
        if not corrections and not loose:
            self.w('<p class="empty">No entry matches this filter.</p>\n')
        self.w("</main>\n")
        self.w(
            "<footer><p>Written by ", self.t(self.report.generator), " at ",
            self.t(self.report.generated_at), ". This file makes no network request: its"
            " styles and diagrams are inline, it holds no script, and its"
            " Content-Security-Policy forbids loading anything.</p></footer>\n",
            "</body>\n</html>\n",
        )
        return "".join(self.out)

    def header(self, corrections: list[Correction], loose: list[Attempt]) -> None:
        r = self.report
        count = len(r.entries)
        scope = "; ".join(f"{label} {value}" for label, value in r.filters) or "the whole log"
        self.w('<header>\n<p class="kicker">relink · audit report</p>\n<h1>Audit report</h1>\n',
               '<dl class="facts">\n',
               f"<dt>Entries</dt><dd>{count} {plural(count, 'entry', 'entries')} in"
               f" {len(corrections)} {plural(len(corrections), 'correction')}",
               f" and {len(loose)} outside any" if loose else "", "</dd>\n",
               f"<dt>Filter</dt><dd>{self.t(scope)}</dd>\n",
               f"<dt>Written</dt><dd><time>{self.t(r.generated_at)}</time> by"
               f" {self.t(r.generator)}</dd>\n</dl>\n")
        if r.left_out:
            self.w(f'<p class="muted">{r.left_out} matching'
                   f" {plural(r.left_out, 'entry', 'entries')} appended after the verified"
                   " head are left out.</p>\n")
        self.verification()
        if corrections or loose:
            self.w('<nav aria-label="Contents"><h2>Contents</h2>\n<ol>\n')
            for c in corrections:
                first = c.first
                self.w(f'<li><a href="#correction-{c.workflow_id}">Correction {c.workflow_id}'
                       f"</a> · {self.t(first.get('subject_type') or first.get('workflow'))}"
                       f" {self.t(first.get('subject_id') or first.get('invoice_id') or '')}"
                       f" · {self.t(c.state or '')} · {self.counts(c.outcomes())}</li>\n")
            if loose:
                self.w(f'<li><a href="#outside">Outside any correction</a> · {len(loose)}'
                       f" {plural(len(loose), 'attempt')}</li>\n")
            self.w("</ol>\n</nav>\n")
        self.w("</header>\n")

    def verification(self) -> None:
        chain, checkpoint = self.report.chain, self.report.checkpoint
        ok = chain.ok and (checkpoint is None or checkpoint.ok)
        self.w(f'<section class="verification {"ok" if ok else "failed"}" id="verification">\n'
               "<h2>Verification of the whole log</h2>\n")
        if chain.ok:
            self.w(f'<p class="verdict">✔ Chain verified: all {chain.entries}'
                   f" {plural(chain.entries or 0, 'entry', 'entries')} of the log link and"
                   " hash correctly (RFC 8785, SHA-256).</p>\n", '<dl class="facts">\n',
                   f"<dt>Head</dt><dd>seq {chain.head_seq}, hash"
                   f' <code class="hash">{self.t(chain.head_hash)}</code></dd>\n',
                   f"<dt>Log id</dt><dd><code>{self.t(chain.log_id)}</code></dd>\n")
        else:
            self.w(f'<p class="verdict">✘ Chain verification FAILED: {self.t(chain.problem)}'
                   "</p>\n", '<dl class="facts">\n')
        self.w("<dt>Checkpoint</dt><dd>")
        if checkpoint is None:
            self.w("none given (a signed checkpoint, <code>--checkpoint</code> and"
                   " <code>--public-key</code>, also proves that no entry was cut off or"
                   " recomputed)")
        elif checkpoint.ok:
            self.w(f'<span class="verdict">✔ verified</span>: seq {checkpoint.seq}, hash'
                   f' <code class="hash">{self.t(checkpoint.hash)}</code>, signed at'
                   f" <time>{self.t(checkpoint.signed_at)}</time> with key"
                   f" <code>{self.t(checkpoint.key)}</code>; the log holds that entry with"
                   " that hash")
        else:
            self.w(f'<span class="verdict">✘ FAILED</span>: {self.t(checkpoint.problem)}')
        self.w("</dd>\n</dl>\n<p class=\"cite\">Cite this report by the SHA-256 of this file,"
               " which <code>relink audit report</code> printed when it wrote it"
               " (<code>sha256sum</code> recomputes it).</p>\n</section>\n")

    # one correction ------------------------------------------------------------------------

    def correction(self, c: Correction) -> None:
        first, wid = c.first, c.workflow_id
        subject = f"{first.get('subject_type') or 'subject'} {first.get('subject_id') or ''}"
        self.w(f'<section class="correction" id="correction-{wid}">\n',
               f'<h2>Correction {wid} <span class="sub">· {self.t(first.get("workflow"))}'
               f" version {self.t(first.get('workflow_version'))} ·"
               f" {self.t(subject.strip())}</span></h2>\n", '<dl class="facts">\n')
        remote = [f"{label} {first[key]}" for key, label in
                  (("invoice_id", "invoice"), ("erp_bill_id", "ERP bill"))
                  if first.get(key) is not None]
        facts = [
            ("Subject", subject + (f" ({', '.join(remote)})" if remote else "")),
            ("Project", f"{first.get('project_id')} (company {first.get('company_id')})"),
            ("State", c.state or "none"),
            ("Actors", ", ".join(c.actors()) or "none recorded"),
            ("Entries", f"seq {c.entries[0]['seq']} to {c.entries[-1]['seq']}"
                        f" ({len(c.entries)} matching)"),
        ]
        for label, value in facts:
            self.w(f"<dt>{label}</dt><dd>{self.t(value)}</dd>\n")
        self.w(f"<dt>Attempts</dt><dd>{len(c.attempts)}: {self.counts(c.outcomes())}</dd>\n"
               "</dl>\n")
        self.snapshots(c)
        self.diagram(c)
        self.w("<h3>Timeline of every attempt</h3>\n")
        self.timeline(c.attempts, f"c{wid}", show_subject=False)
        self.w("</section>\n")

    def snapshots(self, c: Correction) -> None:
        noun = str(c.first.get("subject_type") or "subject")
        befores = [e for e in c.entries if isinstance(e["evidence"].get("before"), dict)]
        afters = [e for e in c.entries if isinstance(e["evidence"].get("after"), dict)]
        self.w(f"<h3>The {self.t(noun)} before and after</h3>\n")
        if not befores and not afters:
            self.w('<p class="muted">No snapshot among these entries.</p>\n')
            return
        old = befores[0] if befores else None
        new = afters[-1] if afters else None
        if new is None:
            self.w(f'<p class="muted">No snapshot after a change yet: the snapshot of seq'
                   f" {old['seq'] if old else ''} ({self.t(old['action'] if old else '')})"
                   " is shown.</p>\n")
        else:
            self.w(f'<p class="muted">Before: seq {old["seq"] if old else "none"}'
                   f" ({self.t(old['action'] if old else 'not among these entries')});"
                   f" after: seq {new['seq']} ({self.t(new['action'])}).</p>\n")
        before = old["evidence"]["before"] if old else {}
        if new is None:
            self.w('<div class="scroll"><table class="diff stack">\n<thead><tr><th>Field</th>'
                   "<th>Value</th></tr></thead>\n<tbody>\n")
            for d in differences(before, before):
                self.w(f'<tr class="same"><td class="mono" data-label="field">{self.t(d.field)}'
                       f'</td><td data-label="value">{self.value_cell(d.before)}</td></tr>\n')
            self.w("</tbody></table></div>\n")
            return
        rows = differences(before, new["evidence"]["after"])
        changed = sum(1 for d in rows if d.kind != "same")
        self.w(f"<p>{changed} of {len(rows)} {plural(len(rows), 'field')} differ.</p>\n",
               '<div class="scroll"><table class="diff stack">\n<thead><tr><th>Field</th>'
               "<th>Before</th><th>After</th><th>Change</th></tr></thead>\n<tbody>\n")
        for d in rows:
            mark = "" if d.kind == "same" else d.kind
            self.w(f'<tr class="{d.kind}"><td class="mono" data-label="field">{self.t(d.field)}'
                   f'</td><td data-label="before">{self.value_cell(d.before)}</td>'
                   f'<td data-label="after">{self.value_cell(d.after)}</td>'
                   f'<td class="mark" data-label="change">{mark}</td></tr>\n')
        self.w("</tbody></table></div>\n")

    def diagram(self, c: Correction) -> None:
        first = c.first
        key = (str(first.get("workflow")), int(first.get("workflow_version") or 0))
        graph = self.report.graphs.get(key)
        self.w("<h3>Workflow</h3>\n")
        taken = path(c.attempts)
        if graph is None:
            self.w('<p class="muted">The definition of this workflow version is not'
                   " installed: no diagram.</p>\n")
        else:
            self.w('<figure class="workflow"><div class="scroll">',
                   svg(graph, taken, uid=f"wf{c.workflow_id}", escape=self.a), "</div>\n")
        route = " → ".join(
            [self.t(f"{step} → {dest}") for _, step, dest in taken.taken]
        ) or "no step succeeded"
        tried = "; ".join(
            self.t(f"{step} from {source} ({OUTCOME_WORDS.get(outcome, outcome)})")
            for source, step, outcome in taken.tried
        ) or "none"
        tag = "figcaption" if graph is not None else "p"
        self.w(f"<{tag}><span class=\"legend\"></span> Path taken: {route}."
               f" <span class=\"legend tried\"></span> Tried and not taken: {tried}.</{tag}>\n")
        if graph is not None:
            self.w("</figure>\n")


def described(filters: Filters) -> list[tuple[str, str]]:
    """The filters set, as (label, value) pairs for :attr:`ReportInput.filters`."""
    return [
        (FILTER_LABELS.get(field.name, field.name), str(value))
        for field in dataclasses.fields(filters)
        if (value := getattr(filters, field.name)) is not None
    ]
