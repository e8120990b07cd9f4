"""The audit report's stylesheet, inlined in every report (its Content-Security-Policy allows
inline styles and nothing from elsewhere): system fonts only, a layout that reflows down to a
phone's width, outcomes told by words and borders as well as colours, and a print sheet."""

STYLESHEET = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --ok: #1a7f37; --ok-bg: #dafbe1; --warn: #9a6700; --warn-bg: #fff8c5;
  --bad: #cf222e; --bad-bg: #ffebe9; --run: #0969da; --run-bg: #ddf4ff; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main, header, footer { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin: .2rem 0 .6rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line);
  padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
h4 { font-size: .95rem; margin: .8rem 0 .3rem; }
.sub, .kicker, .muted { color: var(--muted); font-weight: normal; }
.kicker { margin: 1rem 0 0; text-transform: uppercase; letter-spacing: .08em; font-size: .8rem; }
code, .mono, time, td.id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: .88em; }
code, .wrap, dd, td.id, td.mono { overflow-wrap: anywhere; }
td { overflow-wrap: break-word; }
td time { white-space: nowrap; }
.pre { white-space: pre-wrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
  margin: .4rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
dl.kv { margin: 0; padding-left: .8rem; border-left: 2px solid var(--line); }
dl.kv dt { font-weight: 600; }
dl.kv dd { margin: 0 0 .2rem .8rem; }
.null { color: var(--muted); font-style: italic; }
.verification { border: 2px solid var(--ok); background: var(--ok-bg); border-radius: 8px;
  padding: .6rem 1rem; margin: 1rem 0; }
.verification.failed { border-color: var(--bad); background: var(--bad-bg); }
.verification h2 { border: 0; margin: .2rem 0; }
.verdict { font-weight: 600; margin: .3rem 0; }
.hash { overflow-wrap: anywhere; }
nav ol { padding-left: 1.4rem; }
.badge { display: inline-block; border: 1px solid; border-radius: 1rem; padding: 0 .55rem;
  font-size: .82rem; font-weight: 600; white-space: nowrap; }
.badge.succeeded { color: var(--ok); background: var(--ok-bg); }
.badge.refused { color: var(--warn); background: var(--warn-bg); }
.badge.failed { color: var(--bad); background: var(--bad-bg); }
.badge.in_flight, .badge.other { color: var(--run); background: var(--run-bg); }
ol.timeline { list-style: none; margin: 0; padding: 0 0 0 1.1rem;
  border-left: 3px solid var(--line); }
li.attempt { position: relative; margin: 0 0 1rem; padding: .5rem .8rem;
  border: 1px solid var(--line); border-left-width: 4px; border-radius: 6px; }
li.attempt::before { content: ""; position: absolute; left: -1.65rem; top: .9rem;
  width: .8rem; height: .8rem; border-radius: 50%; background: var(--line);
  border: 2px solid #fff; }
li.attempt.succeeded { border-left-color: var(--ok); }
li.attempt.succeeded::before { background: var(--ok); }
li.attempt.refused { border-left-color: var(--warn); }
li.attempt.refused::before { background: var(--warn); }
li.attempt.failed { border-left-color: var(--bad); }
li.attempt.failed::before { background: var(--bad); }
li.attempt.in_flight, li.attempt.other { border-left-color: var(--run); border-left-style: dashed; }
.attempt-head { display: flex; flex-wrap: wrap; gap: .2rem .6rem; align-items: baseline; }
.attempt-head .action { font-size: 1.05rem; }
.who, .when { color: var(--muted); }
blockquote.reason { margin: .4rem 0; padding: .2rem .7rem; border-left: 3px solid var(--line);
  background: #f6f8fa; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .3rem 0; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .2rem .45rem; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
tr.changed td { background: var(--warn-bg); }
tr.added td { background: var(--ok-bg); }
tr.removed td { background: var(--bad-bg); }
tr.same td { color: var(--muted); }
tr.missing td { background: var(--bad-bg); }
td.mark { font-weight: 600; white-space: nowrap; }
figure.workflow { margin: .4rem 0; }
figcaption { font-size: .9rem; color: var(--muted); margin-top: .3rem; }
svg.diagram { max-width: 100%; height: auto; display: block; }
svg.diagram text { font: 12px ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "Liberation Mono", monospace; fill: var(--ink); }
svg.diagram .state rect { fill: #fff; stroke: #8c959f; stroke-width: 1.5; }
svg.diagram .state.visited rect { fill: var(--ok-bg); stroke: var(--ok); }
svg.diagram .state.current rect { stroke-width: 3.5; }
svg.diagram .state.current text { font-weight: 700; }
svg.diagram .state rect.inner { fill: none; stroke-width: 1; }
svg.diagram .edge path { fill: none; stroke: #8c959f; stroke-width: 1.4; }
svg.diagram .edge text { fill: var(--muted); }
svg.diagram .edge circle { fill: #8c959f; }
svg.diagram .edge.taken path { stroke: var(--ok); stroke-width: 3.2; }
svg.diagram .edge.taken text { fill: var(--ok); font-weight: 700; }
svg.diagram .edge.taken circle { fill: var(--ok); }
svg.diagram .edge.tried path { stroke: var(--bad); stroke-width: 2; stroke-dasharray: 6 4; }
svg.diagram .edge.tried text { fill: var(--bad); }
svg.diagram marker path { fill: #8c959f; stroke: none; }
svg.diagram marker.taken path { fill: var(--ok); }
svg.diagram marker.tried path { fill: var(--bad); }
.legend { display: inline-block; width: 1.6em; border-top: 3px solid var(--ok);
  vertical-align: middle; }
.legend.tried { border-top: 2px dashed var(--bad); }
footer { color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line);
  margin-top: 2rem; padding-top: .6rem; padding-bottom: 2rem; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  main, header, footer { padding: 0 .6rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .3rem; }
  ol.timeline { padding-left: .8rem; }
  li.attempt { padding: .4rem .5rem; }
  li.attempt::before { left: -1.3rem; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; }
  table.stack { width: 100%; }
  table.stack thead { display: none; }
  table.stack tr { border: 1px solid var(--line); border-radius: 4px; margin-bottom: .4rem; }
  table.stack td { border: 0; border-bottom: 1px dotted var(--line); position: relative;
    padding: .15rem .3rem .15rem 36%; min-height: 1.6em; overflow-wrap: anywhere; }
  table.stack td:last-child { border-bottom: 0; }
  table.stack td:empty { display: none; }
  table.stack td::before { content: attr(data-label); position: absolute; left: .3rem;
    width: 33%; color: var(--muted); font: .8rem system-ui, sans-serif; }
  td time { white-space: normal; }
}
@media print {
  @page { margin: 14mm 12mm; }
  body { font-size: 10pt; }
  main, header, footer { max-width: none; padding: 0; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  section.correction { break-before: page; }
  li.attempt, tr, figure, .verification { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
  .scroll { overflow: visible; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
