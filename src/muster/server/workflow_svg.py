"""A workflow's graph as SVG, drawn by the server: no CDN, no script in the browser.

Layout: each step goes in the layer after the deepest step that leads to it
(``depends_on`` edges and routes both lead), steps in a layer keep their
written order. Edges: ``depends_on`` solid grey, ``on_success``/``on_true``
green, ``on_failure``/``on_false`` red (dashed). With states, every box is
coloured by its step's state, so the instance view and the editor share one
drawing. Every text is escaped; ids come from the definition, which a user
wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Protocol

__all__ = ["STATE_COLOURS", "GraphStep", "render_svg"]

_W: Final = 150
_H: Final = 44
_GAP_X: Final = 60
_GAP_Y: Final = 22
_PAD: Final = 16

#: Fill per step state (unknown states are drawn white).
STATE_COLOURS: Final[Mapping[str, str]] = {
    "pending": "#f4f4f5",
    "waiting": "#fef3c7",
    "paused": "#e0e7ff",
    "running": "#bfdbfe",
    "succeeded": "#bbf7d0",
    "failed": "#fecaca",
    "lost": "#fed7aa",
    "killed": "#e5e7eb",
    "skipped": "#f3f4f6",
    "cancelled": "#e5e7eb",
}
_EDGE: Final[Mapping[str, tuple[str, str]]] = {
    "depends_on": ("#6b7280", ""),
    "on_success": ("#16a34a", ""),
    "on_true": ("#16a34a", ""),
    "on_failure": ("#dc2626", "5,4"),
    "on_false": ("#dc2626", "5,4"),
}


class GraphStep(Protocol):
    """What the drawing needs of a step (the workflow model's ``Step`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...
    def routes(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True, slots=True)
class _Edge:
    src: str
    dst: str
    kind: str


def _edges(steps: Sequence[GraphStep]) -> list[_Edge]:
    ids = {s.id for s in steps}
    out: list[_Edge] = []
    for s in steps:
        out.extend(_Edge(d, s.id, "depends_on") for d in s.depends_on if d in ids)
        out.extend(_Edge(s.id, t, kind) for kind, t in s.routes() if t in ids)
    return out


def _layers(steps: Sequence[GraphStep], edges: Iterable[_Edge]) -> dict[str, int]:
    """Longest-path layering; an edge that closes a cycle is ignored (validation
    reports cycles; the drawing must still finish)."""
    incoming: dict[str, list[str]] = {s.id: [] for s in steps}
    for e in edges:
        incoming[e.dst].append(e.src)
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(sid: str) -> int:
        if sid in layer:
            return layer[sid]
        visiting.add(sid)
        best = 0
        for src in incoming[sid]:
            if src not in visiting:
                best = max(best, depth(src) + 1)
        visiting.discard(sid)
        layer[sid] = best
        return best

    for s in steps:
        depth(s.id)
    return layer


def render_svg(
    steps: Sequence[GraphStep],
    *,
    states: Mapping[str, str] | None = None,
    types: Mapping[str, str] | None = None,
    link: str | None = None,
) -> str:
    """The graph of ``steps`` as one ``<svg>`` element.

    ``states`` colours boxes by step state; ``types`` labels them; ``link`` (a
    format string with ``{step}``) makes each box a link (the instance view).
    """
    edges = _edges(steps)
    layer = _layers(steps, edges)
    columns: dict[int, list[str]] = {}
    for s in steps:
        columns.setdefault(layer[s.id], []).append(s.id)
    pos: dict[str, tuple[int, int]] = {}
    for col, ids in columns.items():
        for row, sid in enumerate(ids):
            pos[sid] = (_PAD + col * (_W + _GAP_X), _PAD + row * (_H + _GAP_Y))
    width = _PAD * 2 + (max(columns, default=0) + 1) * (_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max((len(v) for v in columns.values()), default=1) * (_H + _GAP_Y) - _GAP_Y
    # With links inside, the graph is a group of controls, not one image: an
    # image role would hide the links from assistive technology (axe:
    # nested-interactive).
    role = "group" if link is not None else "img"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" role="{role}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="12" '
        f'aria-label="Workflow graph of {len(steps)} step(s)">',
        f"<title>Workflow graph of {len(steps)} step(s)</title>",
        "<defs>",
        *(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
            for kind, (colour, _) in _EDGE.items()
        ),
        "</defs>",
    ]
    for e in edges:
        x1, y1 = pos[e.src]
        x2, y2 = pos[e.dst]
        colour, dash = _EDGE[e.kind]
        sx, sy = float(x1 + _W), y1 + _H / 2
        ex, ey = float(x2), y2 + _H / 2
        if x2 <= x1:  # a route back or within a layer: go round below
            sx, sy, ex, ey = x1 + _W / 2, y1 + _H, x2 + _W / 2, y2 + _H
            mid = max(sy, ey) + _GAP_Y
            d = f"M{sx},{sy} C{sx},{mid} {ex},{mid} {ex},{ey}"
        else:
            mx = (sx + ex) / 2
            d = f"M{sx},{sy} C{mx},{sy} {mx},{ey} {ex},{ey}"
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path class="edge edge-{e.kind}" d="{d}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"{dash_attr} marker-end="url(#arrow-{e.kind})">'
            f"<title>{escape(e.src)} {e.kind} {escape(e.dst)}</title></path>"
        )
    for s in steps:
        x, y = pos[s.id]
        state = (states or {}).get(s.id)
        fill = STATE_COLOURS.get(state or "", "#ffffff")
        label = escape(s.id if len(s.id) <= 20 else s.id[:19] + "…")
        sub = " · ".join(x for x in ((types or {}).get(s.id), state) if x)
        box = (
            f'<g class="step" data-step="{escape(s.id)}" data-state="{escape(state or "")}">'
            f"<title>{escape(s.id)}{': ' + escape(sub) if sub else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{fill}" '
            f'stroke="#374151"/>'
            f'<text x="{x + _W / 2}" y="{y + 18}" text-anchor="middle" font-weight="bold">'
            f"{label}</text>"
            f'<text x="{x + _W / 2}" y="{y + 34}" text-anchor="middle" fill="#4b5563">'
            f"{escape(sub)}</text></g>"
        )
        if link is not None:
            href = escape(link.format(step=s.id), quote=True)
            box = f'<a href="{href}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return "".join(parts)
