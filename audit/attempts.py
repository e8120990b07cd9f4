"""The timeline of an audit report: each attempt with its entries, the reason given, the
permission levels read from Procore against those the step accepts, the remote calls with
their statuses and request ids, and any other evidence — shown generically, so actions relink
adds later (approvals and their approver, step and expiry) read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.markup import OUTCOME_WORDS, Markup
from audit.timeline import ABSENT, Attempt, scalar_text

SHOWN_APART = ("calls", "permissions", "required", "before", "after")


class Timeline(Markup):
    """Writes timelines of attempts."""

    def timeline(self, attempts: Sequence[Attempt], prefix: str, *, show_subject: bool) -> None:
        self.w('<ol class="timeline">\n')
        for number, attempt in enumerate(attempts, 1):
            self.attempt(attempt, f"{prefix}-a{number}", show_subject)
        self.w("</ol>\n")

    def attempt(self, attempt: Attempt, anchor: str, show_subject: bool) -> None:
        first, last = attempt.entries[0], attempt.entries[-1]
        outcome = attempt.outcome
        known = outcome if outcome in ("succeeded", "refused", "failed", "in_flight") else "other"
        actor = first.get("actor_login") or "unknown actor"
        details = ", ".join(str(v) for v in (first.get("actor_name"),
                                             first.get("actor_id") and
                                             f"Procore user {first.get('actor_id')}") if v)
        self.w(f'<li class="attempt {known}" id="{anchor}">\n<div class="attempt-head">',
               f'<span class="badge {known}">{self.t(OUTCOME_WORDS.get(outcome, outcome))}'
               f'</span> <strong class="action">{self.t(attempt.action)}</strong>',
               f' <span class="states">{self.t(first.get("from_state") or "—")} →'
               f" {self.t(last.get('to_state') or '—')}</span>",
               f' <span class="who">by {self.t(actor)}'
               f"{self.t(f' ({details})') if details else ''}</span>",
               f' <time class="when">{self.t(first.get("recorded_at"))}</time></div>\n')
        if show_subject:
            self.w(f'<p class="muted">{self.t(first.get("workflow"))}'
                   f" · {self.t(first.get('subject_type') or '')}"
                   f" {self.t(first.get('subject_id') or '')}"
                   f" · project {self.t(first.get('project_id'))}</p>\n")
        reasons = list(dict.fromkeys(e["reason"] for e in attempt.entries if e.get("reason")))
        for reason in reasons:
            self.w(f'<blockquote class="reason"><span class="muted">Reason:</span>'
                   f' <span class="pre">{self.t(reason)}</span></blockquote>\n')
        self.w('<div class="scroll"><table class="entries stack"><thead><tr><th>seq</th>'
               "<th>recorded at</th><th>outcome</th><th>state</th><th>message</th></tr>"
               "</thead>\n<tbody>\n")
        for e in attempt.entries:
            self.w(f'<tr><td class="id" data-label="seq">{self.t(e["seq"])}</td>'
                   f'<td data-label="recorded at"><time>{self.t(e.get("recorded_at"))}</time>'
                   f'</td><td data-label="outcome">'
                   f"{self.t(OUTCOME_WORDS.get(e['outcome'], e['outcome']))}</td>"
                   f'<td data-label="state">{self.t(e.get("from_state") or "—")} →'
                   f" {self.t(e.get('to_state') or '—')}</td>"
                   f'<td class="pre" data-label="message">{self.t(e.get("message"))}</td></tr>\n')
        self.w("</tbody></table></div>\n")
        self.permissions(attempt)
        self.calls(attempt)
        self.other_evidence(attempt)
        self.w("</li>\n")

    def permissions(self, attempt: Attempt) -> None:
        seen: list[tuple[Any, Any, list[int]]] = []
        for e in attempt.entries:
            read, required = e["evidence"].get("permissions"), e["evidence"].get("required")
            if read is None and required is None:
                continue
            match = next((s for s in seen if s[0] == read and s[1] == required), None)
            if match is None:
                seen.append((read, required, [e["seq"]]))
            else:
                match[2].append(e["seq"])
        for read, required, seqs in seen:
            read = read if isinstance(read, dict) else {}
            required = required if isinstance(required, dict) else {}
            self.w(f"<h4>Permission levels read from Procore <span class=\"muted\">(seq"
                   f" {', '.join(str(s) for s in seqs)})</span></h4>\n",
                   '<div class="scroll"><table class="permissions stack"><thead><tr>'
                   "<th>tool or privilege</th><th>read</th><th>the step accepts</th><th></th>"
                   "</tr></thead>\n<tbody>\n")
            for name in list(required) + [n for n in read if n not in required]:
                have, need = read.get(name, ABSENT), required.get(name, ABSENT)
                verdict = _permitted(have, need)
                self.w(f'<tr class="{"" if verdict != "missing" else "missing"}">'
                       f'<td class="mono" data-label="tool">{self.t(name)}</td>'
                       f'<td data-label="read">{self.value_cell(have)}</td>'
                       f'<td data-label="accepts">{self.t(_accepted(need))}</td>'
                       f'<td class="mark" data-label="">{verdict}</td></tr>\n')
            self.w("</tbody></table></div>\n")

    def calls(self, attempt: Attempt) -> None:
        rows = [(e["seq"], call) for e in attempt.entries
                for call in (e["evidence"].get("calls") or []) if isinstance(call, dict)]
        if not rows:
            return
        self.w(f"<h4>Remote calls ({len(rows)})</h4>\n",
               '<div class="scroll"><table class="calls stack"><thead><tr><th>seq</th>'
               "<th>system</th><th>request</th><th>status</th><th>request id</th></tr></thead>\n"
               "<tbody>\n")
        for seq, call in rows:
            status = call.get("status")
            self.w(f'<tr><td class="id" data-label="seq">{self.t(seq)}</td>'
                   f'<td data-label="system">{self.t(call.get("system") or "—")}</td>'
                   f'<td class="mono" data-label="request">{self.t(call.get("method") or "")}'
                   f" {self.t(call.get('path') or '')}</td>"
                   f'<td data-label="status">'
                   f"{self.t(status) if status is not None else 'no answer'}</td>"
                   f'<td class="id" data-label="request id">'
                   f'{self.t(call.get("request_id") or "—")}</td></tr>\n')
        self.w("</tbody></table></div>\n")

    def other_evidence(self, attempt: Attempt) -> None:
        merged: dict[str, list[tuple[int, Any]]] = {}
        for e in attempt.entries:
            for key, value in e["evidence"].items():
                if key in SHOWN_APART:
                    continue
                found = merged.setdefault(key, [])
                if not found or found[-1][1] != value:
                    found.append((e["seq"], value))
        snapshots = [e["seq"] for e in attempt.entries
                     if {"before", "after"} & set(e["evidence"])]
        if not merged and not snapshots:
            return
        self.w('<h4>Other evidence</h4>\n<dl class="kv">\n')
        for key, values in merged.items():
            for seq, value in values:
                where = f' <span class="muted">(seq {seq})</span>' if len(values) > 1 else ""
                self.w(f"<dt>{self.t(key)}{where}</dt><dd>{self.value(value)}</dd>\n")
        if snapshots:
            self.w("<dt>snapshots</dt><dd>recorded in seq"
                   f" {', '.join(str(s) for s in snapshots)}: see before and after above</dd>\n")
        self.w("</dl>\n")


def _accepted(need: Any) -> str:
    if need is ABSENT:
        return "not checked"
    if isinstance(need, bool):
        return "required" if need else "not required"
    if isinstance(need, list):
        return " or ".join(str(level) for level in need) if need else "not checked"
    return scalar_text(need)


def _permitted(have: Any, need: Any) -> str:
    """``ok``, ``missing`` or empty (not checked) for one row of the permissions table."""
    if need is ABSENT or need is False or need == []:
        return ""
    if isinstance(need, bool):
        return "ok" if have is True else "missing"
    if isinstance(need, list):
        return "ok" if have in need else "missing"
    return ""
