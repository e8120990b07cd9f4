"""A workflow's state diagram as inline SVG, drawn here (no Graphviz, no script), with the path
a correction took highlighted.

The layout is layered, top to bottom: a state's layer is its longest distance from the initial
state (back edges, found depth first, left out), and each state sits under its first
predecessor when that place is free, else to the right of its layer's last state, so a
workflow's main line reads as one column and its branches to the right of it. A step between
adjacent layers of one column is a straight or bowed line; one to another column leaves the
side of its state and turns down; any other (skipping layers, going back) curves round the
left. Sizes come from the labels' lengths in a monospace font, so nothing needs measuring.

Edges and states carry classes (``edge taken``, ``edge tried``, ``state visited current``...)
that the report's stylesheet colours; every label is escaped by the ``escape`` the caller
gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audit.timeline import START, Path

FONT = 12  # px, monospace
CHAR = FONT * 0.62  # the advance of one monospace character
NODE_H = 34
PITCH = 104  # between the centres of two layers
GAP = 64  # between two states of one layer
PAD = 12
BOW = 44  # the control-point offset of parallel steps between the same states


@dataclass(frozen=True, slots=True)
class Graph:
    """A workflow definition as the diagram needs it: ``edges`` are ``(step, source, dest)``
    in the definition's order."""

    name: str
    version: int
    states: tuple[str, ...]
    initial: str
    finals: frozenset[str]
    edges: tuple[tuple[str, str, str], ...]


@dataclass(slots=True)
class _Box:
    """The extent of what was drawn, for the viewBox."""

    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0

    def add(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x0, self.y0 = min(self.x0, x0), min(self.y0, y0)
        self.x1, self.y1 = max(self.x1, x0, x1), max(self.y1, y0, y1)

    def text(self, x: float, y: float, label: str, anchor: str) -> None:
        width = len(label) * CHAR
        left = {"start": x, "end": x - width}.get(anchor, x - width / 2)
        self.add(left, y - FONT, left + width, y + 4)


def _width(state: str) -> float:
    return max(96.0, len(state) * CHAR + 28)


def _layers(graph: Graph) -> tuple[dict[str, int], list[str], set[tuple[str, str]]]:
    """Each state's layer, the states in discovery order, and the forward (source, dest)
    pairs."""
    succ: dict[str, list[str]] = {s: [] for s in graph.states}
    for _, source, dest in graph.edges:
        if dest not in succ[source]:
            succ[source].append(dest)
    back: set[tuple[str, str]] = set()
    colour: dict[str, int] = {}

    def visit(state: str) -> None:  # depth first, marking the edges that close a cycle
        colour[state] = 1
        for nxt in succ[state]:
            if colour.get(nxt) == 1:
                back.add((state, nxt))
            elif nxt not in colour:
                visit(nxt)
        colour[state] = 2

    visit(graph.initial)
    order = [graph.initial]
    for state in order:  # breadth first: the discovery order
        order += [n for n in succ[state] if n not in order]
    order += [s for s in graph.states if s not in order]
    forward = {(a, b) for a in succ for b in succ[a] if a != b and (a, b) not in back}
    layer = dict.fromkeys(order, 0)
    for _ in order:  # longest path; |states| rounds settle any acyclic graph
        for a, b in forward:
            layer[b] = max(layer[b], layer[a] + 1)
    return layer, order, forward


def _place(graph: Graph) -> tuple[dict[str, float], dict[str, float], set[tuple[str, str]]]:
    layer, order, forward = _layers(graph)
    labels: dict[tuple[str, str], int] = {}  # the longest step name between two states
    leaving: dict[str, int] = {}  # and out of a state
    for step, source, dest in graph.edges:
        labels[(source, dest)] = max(labels.get((source, dest), 0), len(step))
        leaving[source] = max(leaving.get(source, 0), len(step))
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    for depth in sorted(set(layer.values())):
        right: float | None = None
        for state in (s for s in order if layer[s] == depth):
            half = _width(state) / 2
            preds = [a for a in order if (a, state) in forward and a in x]
            want = x[preds[0]] if preds else 0.0
            if right is not None and want - half < right + GAP:
                want = right + GAP + half
                for a in preds:  # room for the names of the steps out of the state above
                    if layer[a] == depth - 1 and x[a] < want:
                        side = x[a] + _width(a) / 2 + labels[(a, state)] * CHAR + 24
                        below = x[a] + BOW / 2 + 8 + leaving[a] * CHAR + 16
                        want = max(want, side, below)
            x[state], y[state] = want, depth * PITCH
            right = want + half
    return x, y, forward


def svg(graph: Graph, path: Path, *, uid: str, escape: Callable[[str], str]) -> str:
    """The diagram of ``graph`` with ``path`` highlighted, as an ``<svg>`` element; ``uid``
    keeps its marker ids apart from other diagrams' on the page."""
    x, y, forward = _place(graph)
    box = _Box(x0=min(x.values()), x1=max(x.values()))
    parts: list[str] = []
    taken = set(path.taken)
    tried = {(source, step) for source, step, _ in path.tried}

    def kind(step: str, source: str, dest: str) -> str:
        if (source, step, dest) in taken:
            return "taken"
        return "tried" if (source, step) in tried else "plain"

    def edge(step: str, source: str, dest: str, d: str, lx: float, ly: float,
             anchor: str) -> None:
        style = kind(step, source, dest)
        title = f"{step}: {source} → {dest}" + {"taken": " (taken)",
                                               "tried": " (tried, not taken)"}.get(style, "")
        cls = "edge" if style == "plain" else f"edge {style}"
        parts.append(
            f'<g class="{cls}" data-step="{escape(step)}" data-from="{escape(source)}"'
            f' data-to="{escape(dest)}"><title>{escape(title)}</title>'
            f'<path d="{d}" marker-end="url(#{uid}-{style})"/>'
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{escape(step)}</text></g>'
        )
        box.text(lx, ly, step, anchor)

    pairs: dict[tuple[str, str], list[str]] = {}
    for step, source, dest in graph.edges:
        pairs.setdefault((source, dest), []).append(step)
    lanes: dict[tuple[str, int], list[tuple[str, str]]] = {}  # (source, side) -> its pairs
    for source, dest in pairs:
        if (source, dest) in forward and x[dest] != x[source] and y[dest] - y[source] == PITCH:
            side = 1 if x[dest] > x[source] else -1
            lanes.setdefault((source, side), []).append((source, dest))
    left_curves = 0
    for (source, dest), steps in pairs.items():
        sx, sy, dx, dy = x[source], y[source], x[dest], y[dest]
        top, bottom = dy - NODE_H / 2, sy + NODE_H / 2
        if (source, dest) in forward and dx == sx and dy - sy == PITCH:
            mid = (bottom + top) / 2
            for i, step in enumerate(steps):
                off = (i - (len(steps) - 1) / 2) * 2 * BOW
                d = f"M{sx:.1f},{bottom:.1f} Q{sx + off:.1f},{mid:.1f} {dx:.1f},{top - 2:.1f}"
                lx = sx + off / 2 + (-6 if off < 0 else 8)
                edge(step, source, dest, d, lx, mid + 4, "end" if off < 0 else "start")
        elif (source, dest) in forward and dy - sy == PITCH:
            side = 1 if dx > sx else -1
            lane = lanes[(source, side)]
            for i, step in enumerate(steps):
                k = lane.index((source, dest)) + i
                ly = sy + (k - (len(lane) - 1) / 2) * 10
                start = sx + side * _width(source) / 2
                d = (f"M{start:.1f},{ly:.1f} H{dx - side * 10:.1f}"
                     f" Q{dx:.1f},{ly:.1f} {dx:.1f},{ly + 10:.1f} V{top - 2:.1f}")
                edge(step, source, dest, d, start + side * 8, ly - 5,
                     "start" if side > 0 else "end")
        elif source == dest:
            right = sx + _width(source) / 2
            for i, step in enumerate(steps):
                reach = 36 + 14 * i
                d = (f"M{right:.1f},{sy - 8:.1f} C{right + reach:.1f},{sy - 30:.1f}"
                     f" {right + reach:.1f},{sy + 30:.1f} {right + 2:.1f},{sy + 8:.1f}")
                edge(step, source, dest, d, right + reach + 4, sy + 4, "start")
                box.add(right, sy - 30, right + reach, sy + 30)
        else:  # skipping layers or going back: round the left
            for step in steps:
                left_curves += 1
                bow = 40 + 18 * left_curves
                ax, bx = sx - _width(source) / 2, dx - _width(dest) / 2
                d = (f"M{ax:.1f},{sy:.1f} C{ax - bow:.1f},{sy:.1f} {bx - bow:.1f},{dy:.1f}"
                     f" {bx - 2:.1f},{dy:.1f}")
                edge(step, source, dest, d, min(ax, bx) - bow * 0.75 - 4, (sy + dy) / 2 + 4,
                     "end")
                box.add(min(ax, bx) - bow, min(sy, dy), max(ax, bx), max(sy, dy))
    for state in graph.states:
        parts.append(_node(state, x[state], y[state], graph, path, escape))
        half = _width(state) / 2
        box.add(x[state] - half - 4, y[state] - NODE_H / 2 - 4,
                x[state] + half + 4, y[state] + NODE_H / 2 + 4)
    parts.append(_start(graph, x, y, path, uid, box))
    box.add(box.x0 - PAD, box.y0 - PAD, box.x1 + PAD, box.y1 + PAD)
    width, height = box.x1 - box.x0, box.y1 - box.y0
    label = f"State diagram of {graph.name} version {graph.version}"
    return (
        f'<svg class="diagram" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' width="{width:.0f}" height="{height:.0f}"'
        f' viewBox="{box.x0:.1f} {box.y0:.1f} {width:.1f} {height:.1f}"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>\n'
        f"<defs>{_markers(uid)}</defs>\n" + "\n".join(parts) + "\n</svg>"
    )


def _node(state: str, cx: float, cy: float, graph: Graph, path: Path,
          escape: Callable[[str], str]) -> str:
    half, h = _width(state) / 2, NODE_H / 2
    classes = ["state"]
    if state in path.visited:
        classes.append("visited")
    if state == path.current:
        classes.append("current")
    if state in graph.finals:
        classes.append("final")
    inner = ""
    if state in graph.finals:
        inner = (f'<rect class="inner" x="{cx - half + 4:.1f}" y="{cy - h + 4:.1f}"'
                 f' width="{2 * half - 8:.1f}" height="{2 * h - 8:.1f}" rx="5"/>')
    return (
        f'<g class="{" ".join(classes)}" data-state="{escape(state)}">'
        f'<rect x="{cx - half:.1f}" y="{cy - h:.1f}" width="{2 * half:.1f}"'
        f' height="{2 * h:.1f}" rx="8"/>{inner}'
        f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle">{escape(state)}</text></g>'
    )


def _start(graph: Graph, x: dict[str, float], y: dict[str, float], path: Path, uid: str,
           box: _Box) -> str:
    """The dot and arrow into the initial state (highlighted when a start succeeded)."""
    cx, top = x[graph.initial], y[graph.initial] - NODE_H / 2
    started = any(step == START for _, step, _ in path.taken)
    style = "taken" if started else "plain"
    box.add(cx - 6, top - 34, cx + 8 + len(START) * CHAR + 10, top)
    return (
        f'<g class="edge start{" taken" if started else ""}" data-step="{START}">'
        f'<circle cx="{cx:.1f}" cy="{top - 28:.1f}" r="5"/>'
        f'<path d="M{cx:.1f},{top - 23:.1f} V{top - 2:.1f}" marker-end="url(#{uid}-{style})"/>'
        f'<text x="{cx + 10:.1f}" y="{top - 24:.1f}">{START}</text></g>'
    )


def _markers(uid: str) -> str:
    return "".join(
        f'<marker id="{uid}-{style}" class="arrow {style}" viewBox="0 0 10 10" refX="9"'
        f' refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9"'
        f' orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z"/></marker>'
        for style in ("plain", "taken", "tried")
    )
