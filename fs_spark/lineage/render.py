"""Pictures of a lineage graph for people: Graphviz DOT, and a self-contained HTML page.

The page needs nothing from the network: nodes are laid out here in columns by their depth in
the flow (sources on the left, deployments on the right) and drawn as inline SVG; a few lines
of script highlight what a clicked node came from and what it reached.
"""

from __future__ import annotations

import html
import json

from fs_spark.lineage.graph import LineageGraph, Node

COLORS = {
    "source": "#e8f1fb",
    "transformation": "#f3e8fb",
    "feature": "#eef7ee",
    "feature_table": "#e6f4ea",
    "feature_version": "#c8e6c9",
    "experiment": "#fff3e0",
    "run": "#ffe0b2",
    "training_set": "#fff9c4",
    "model": "#e0f7fa",
    "model_version": "#b2ebf2",
    "deployment": "#ffcdd2",
    "predictions": "#f8bbd0",
    "export": "#eceff1",
    "online_store": "#d1c4e9",
}
WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 230, 74, 80, 22, 24


def _depths(graph: LineageGraph) -> dict[str, int]:
    """Longest path from a root; edges closing a cycle (only hand-made links can) are ignored."""
    depth = {key: 0 for key in graph.nodes}
    incoming = {key: 0 for key in graph.nodes}
    for edge in graph.edges:
        incoming[edge.dst] += 1
    ready = sorted(k for k, n in incoming.items() if n == 0)
    done = set()
    while ready:
        key = ready.pop(0)
        done.add(key)
        for edge in graph.edges:
            if edge.src == key and edge.dst not in done:
                depth[edge.dst] = max(depth[edge.dst], depth[key] + 1)
                incoming[edge.dst] -= 1
                if incoming[edge.dst] == 0:
                    ready.append(edge.dst)
    for key in graph.nodes:  # pull each root next to the first node it feeds
        successors = [depth[e.dst] for e in graph.edges if e.src == key]
        if successors and all(e.dst != key for e in graph.edges):
            depth[key] = max(0, min(successors) - 1)
    return depth


def layout(graph: LineageGraph) -> dict[str, tuple[int, int]]:
    """Top-left corner of each node's box."""
    depth = _depths(graph)
    columns: dict[int, list[Node]] = {}
    for key, node in graph.nodes.items():
        columns.setdefault(depth[key], []).append(node)
    places = {}
    for column, nodes in columns.items():
        for row, node in enumerate(sorted(nodes, key=lambda n: (n.kind, n.label, n.id))):
            places[node.key] = (MARGIN + column * (WIDTH + GAP_X), MARGIN + row * (HEIGHT + GAP_Y))
    return places


def _clip(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def to_dot(graph: LineageGraph, focus: str | None = None) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for key, node in sorted(graph.nodes.items()):
        label = "\\n".join(part.replace('"', "'") for part in (node.kind, node.label, node.detail) if part)
        pen = ", penwidth=3" if key == focus else ""
        lines.append(f'  "{key}" [label="{label}", fillcolor="{COLORS.get(node.kind, "#eeeeee")}"{pen}];')
    for edge in graph.edges:
        lines.append(f'  "{edge.src}" -> "{edge.dst}" [label="{edge.relation}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


_SCRIPT = """
const edges = JSON.parse(document.getElementById('edges').textContent);
const boxes = [...document.querySelectorAll('g.node')];
function reach(start, forward) {
  const seen = new Set([start]); const queue = [start];
  while (queue.length) {
    const key = queue.shift();
    for (const e of edges) {
      const [from, to] = forward ? [e.src, e.dst] : [e.dst, e.src];
      if (from === key && !seen.has(to)) { seen.add(to); queue.push(to); }
    }
  }
  return seen;
}
function select(key) {
  const lit = new Set([...reach(key, true), ...reach(key, false)]);
  boxes.forEach(b => b.classList.toggle('dim', !lit.has(b.dataset.key)));
  document.querySelectorAll('path.edge').forEach(p =>
    p.classList.toggle('dim', !(lit.has(p.dataset.src) && lit.has(p.dataset.dst))));
  document.getElementById('selected').textContent = key;
}
boxes.forEach(b => b.addEventListener('click', () => select(b.dataset.key)));
const kinds = {};
boxes.forEach(b => { kinds[b.dataset.kind] = (kinds[b.dataset.kind] || 0) + 1; });
document.getElementById('summary').textContent = boxes.length + ' nodes, ' + edges.length + ' edges: ' +
  Object.entries(kinds).sort().map(([k, n]) => n + ' ' + k).join(', ');
document.body.dataset.rendered = String(boxes.length);
const drawn = document.querySelector('svg').getBoundingClientRect();
document.body.dataset.fits = String(drawn.right <= window.innerWidth + 1 && drawn.bottom <= window.innerHeight + 1);
if (document.body.dataset.focus) select(document.body.dataset.focus);
"""


def to_html(graph: LineageGraph, focus: str | None = None, title: str | None = None) -> str:
    """The page: the whole graph fitted to the window, the focus (the node it was drawn for)
    named in the title and outlined, every training set with the features it took."""
    if title is None:
        shown = graph.nodes.get(focus or "")
        title = f"Lineage of {shown.kind.replace('_', ' ')} {shown.label}" if shown else "fs_spark lineage"
    places = layout(graph)
    width = max((x for x, _ in places.values()), default=0) + WIDTH + MARGIN
    height = max((y for _, y in places.values()), default=0) + HEIGHT + MARGIN
    parts = []
    for edge in graph.edges:
        (x1, y1), (x2, y2) = places[edge.src], places[edge.dst]
        x1, y1, x2, y2 = x1 + WIDTH, y1 + HEIGHT // 2, x2, y2 + HEIGHT // 2
        mid = (x1 + x2) // 2
        parts.append(
            f'<path class="edge" data-src="{html.escape(edge.src)}" data-dst="{html.escape(edge.dst)}" '
            f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)">'
            f"<title>{html.escape(edge.relation)}</title></path>"
        )
    for key, node in sorted(graph.nodes.items()):
        x, y = places[key]
        strong = " focus" if key == focus else ""
        features = node.attrs.get("features") or []
        texts = [
            (node.kind.replace("_", " "), "kind"),
            (_clip(node.label), "label"),
            (_clip(node.detail, 40), "detail"),
            (_clip(", ".join(f.split(".", 1)[-1] for f in features), 40), "features"),
        ]
        tip = "\n".join([key, *features])  # the whole list on hover
        lines = "".join(
            f'<text x="{x + 10}" y="{y + 16 + 17 * i}" class="{cls}">{html.escape(text)}</text>'
            for i, (text, cls) in enumerate(texts)
            if text
        )
        parts.append(
            f'<g class="node{strong}" data-key="{html.escape(key)}" data-kind="{node.kind}">'
            f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="8" fill="{COLORS.get(node.kind, "#eee")}"/>'
            f"{lines}<title>{html.escape(tip)}</title></g>"
        )
    edges_json = json.dumps([{"src": e.src, "dst": e.dst, "relation": e.relation} for e in graph.edges])
    edges_json = edges_json.replace("</", "<\\/")  # a "</script>" in a name must not end the script
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 0; padding: 8px 16px; box-sizing: border-box;
        height: 100vh; display: flex; flex-direction: column; }}
h1 {{ font-size: 20px; margin: 4px 0; }} p {{ margin: 4px 0; }}
g.node {{ cursor: pointer; }} g.node rect {{ stroke: #555; stroke-width: 1; }}
g.node.focus rect {{ stroke: #000; stroke-width: 3; }}
text.kind {{ font-size: 10px; fill: #555; text-transform: uppercase; }} text.label {{ font-size: 13px; font-weight: bold; }}
text.detail {{ font-size: 11px; fill: #333; }} text.features {{ font-size: 11px; fill: #1a5e20; font-style: italic; }}
svg {{ flex: 1; min-height: 0; width: 100%; }}  /* the rest of the window, the graph scaled into it */
path.edge {{ fill: none; stroke: #888; stroke-width: 1.4; }}
.dim {{ opacity: 0.18; }}
</style></head>
<body data-focus="{html.escape(focus or "")}">
<h1>{html.escape(title)}</h1>
<p id="summary">(the summary needs JavaScript)</p><p>Selected: <code id="selected">none</code>; click a node to show what it came from and what it reached.</p>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMin meet">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
<path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>
{chr(10).join(parts)}
</svg>
<script type="application/json" id="edges">{edges_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
