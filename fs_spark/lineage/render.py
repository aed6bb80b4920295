"""Pictures of a lineage graph for people: Graphviz DOT, and a self-contained HTML page.

The page is laid out by Graphviz's `dot` (Debian's graphviz, installed by `make setup`), left to
right in the order things happened (sources, feature versions, training sets, models,
deployments), with edges routed around the boxes. The picture is drawn here as inline SVG from
dot's coordinates, so it needs nothing from the network; a few lines of script pan (drag) and
zoom (wheel, or the + / - / fit buttons) and highlight what a clicked node came from and reached.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from dataclasses import dataclass

from fs_spark.errors import FsSparkError
from fs_spark.lineage.graph import LineageGraph

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
WIDTH, HEIGHT, MARGIN = 230, 74, 24
_POINTS = 72.0  # dot measures sizes in inches, positions in points


class GraphvizMissingError(FsSparkError):
    def __init__(self) -> None:
        super().__init__("Graphviz's `dot` is not installed: run `make setup` (Debian's graphviz package)")


@dataclass(frozen=True)
class Layout:
    """Where dot put each box (top-left corner) and each edge (its cubic Bezier points: a start
    and three per segment; then the arrow's tip, if any), in SVG coordinates, and the size of
    the whole picture."""

    boxes: dict[str, tuple[float, float]]
    edges: dict[tuple[str, str, str], tuple[list[tuple[float, float]], tuple[float, float] | None]]
    width: float
    height: float


def layout(graph: LineageGraph) -> Layout:
    """Lay the graph out with `dot -Tjson`: ranks left to right, boxes of one size, no overlaps."""
    binary = shutil.which("dot")
    if binary is None:
        raise GraphvizMissingError()
    keys = sorted(graph.nodes)
    index = {key: n for n, key in enumerate(keys)}
    lines = [
        "digraph g {",
        "  rankdir=LR; nodesep=0.3; ranksep=1.0; splines=spline;",
        f'  node [shape=box, fixedsize=true, width={WIDTH / _POINTS:.4f}, height={HEIGHT / _POINTS:.4f}, label=""];',
        *(f"  n{index[k]};" for k in keys),
        *(f'  n{index[e.src]} -> n{index[e.dst]} [id="{n}"];' for n, e in enumerate(graph.edges)),
        "}",
    ]
    done = subprocess.run([binary, "-Tjson"], input="\n".join(lines), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise FsSparkError(f"Graphviz's dot failed: {done.stderr.strip()[:500]}")
    drawn = json.loads(done.stdout)
    _, _, right, top = (float(v) for v in drawn["bb"].split(","))
    boxes = {}
    for item in drawn.get("objects", []):
        x, y = (float(v) for v in item["pos"].split(","))
        boxes[keys[int(item["name"][1:])]] = (x - WIDTH / 2 + MARGIN, top - y - HEIGHT / 2 + MARGIN)

    def point(text: str) -> tuple[float, float]:
        x, y = text.split(",")
        return float(x) + MARGIN, top - float(y) + MARGIN

    edges = {}
    for item in drawn.get("edges", []):
        edge = graph.edges[int(item["id"])]
        parts = item["pos"].split()
        tip = next((point(p[2:]) for p in parts if p.startswith("e,")), None)
        curve = [point(p) for p in parts if not p.startswith(("e,", "s,"))]
        edges[(edge.src, edge.dst, edge.relation)] = (curve, tip)
    return Layout(boxes, edges, right + 2 * MARGIN, top + 2 * MARGIN)


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
// pan by dragging, zoom with the wheel or the buttons: the SVG's viewBox moves, nothing reflows
const svg = document.querySelector('svg');
const whole = svg.viewBox.baseVal; const home = [whole.x, whole.y, whole.width, whole.height];
function view(x, y, w, h) { svg.setAttribute('viewBox', [x, y, w, h].join(' ')); svg.dataset.zoom = (home[2] / w).toFixed(3); }
function zoom(factor, cx, cy) {
  const b = svg.viewBox.baseVal; const w = b.width / factor, h = b.height / factor;
  view(cx - (cx - b.x) / factor, cy - (cy - b.y) / factor, w, h);
}
function centre() { const b = svg.viewBox.baseVal; return [b.x + b.width / 2, b.y + b.height / 2]; }
svg.addEventListener('wheel', e => {
  e.preventDefault(); const r = svg.getBoundingClientRect(); const b = svg.viewBox.baseVal;
  const s = Math.max(b.width / r.width, b.height / r.height);
  zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, b.x + (e.clientX - r.left) * s, b.y + (e.clientY - r.top) * s);
}, {passive: false});
let drag = null;
svg.addEventListener('mousedown', e => { drag = [e.clientX, e.clientY]; });
window.addEventListener('mouseup', () => { drag = null; });
window.addEventListener('mousemove', e => {
  if (!drag) return; const r = svg.getBoundingClientRect(); const b = svg.viewBox.baseVal;
  const s = Math.max(b.width / r.width, b.height / r.height);
  view(b.x - (e.clientX - drag[0]) * s, b.y - (e.clientY - drag[1]) * s, b.width, b.height); drag = [e.clientX, e.clientY];
});
document.getElementById('zoom-in').onclick = () => zoom(1.25, ...centre());
document.getElementById('zoom-out').onclick = () => zoom(0.8, ...centre());
document.getElementById('zoom-fit').onclick = () => view(...home);
svg.dataset.zoom = '1.000';
"""


def to_html(graph: LineageGraph, focus: str | None = None, title: str | None = None) -> str:
    """The page: the whole graph fitted to the window, the focus (the node it was drawn for)
    named in the title and outlined, every training set with the features it took."""
    if title is None:
        shown = graph.nodes.get(focus or "")
        title = f"Lineage of {shown.kind.replace('_', ' ')} {shown.label}" if shown else "fs_spark lineage"
    drawn = layout(graph)
    width, height = drawn.width, drawn.height
    parts = []
    for edge in graph.edges:
        curve, tip = drawn.edges.get((edge.src, edge.dst, edge.relation), ([], None))
        if not curve:
            continue
        path = f"M{curve[0][0]:.1f},{curve[0][1]:.1f} C" + " ".join(f"{x:.1f},{y:.1f}" for x, y in curve[1:])
        if tip is not None:
            path += f" L{tip[0]:.1f},{tip[1]:.1f}"
        parts.append(
            f'<path class="edge" data-src="{html.escape(edge.src)}" data-dst="{html.escape(edge.dst)}" '
            f'd="{path}" marker-end="url(#arrow)"><title>{html.escape(edge.relation)}</title></path>'
        )
    for key, node in sorted(graph.nodes.items()):
        x, y = drawn.boxes[key]
        strong = " focus" if key == focus else ""
        features = node.attrs.get("features") or []
        texts = [
            (node.kind.replace("_", " "), "kind"),
            (_clip(node.label), "label"),
            (_clip(node.detail, 40), "detail"),
            (_clip(", ".join(f.split(".", 1)[-1] for f in features), 40), "features"),
        ]
        hover = "\n".join([key, *features])  # the whole list on hover
        lines = "".join(
            f'<text x="{x + 10:.1f}" y="{y + 16 + 17 * i:.1f}" class="{cls}">{html.escape(text)}</text>'
            for i, (text, cls) in enumerate(texts)
            if text
        )
        parts.append(
            f'<g class="node{strong}" data-key="{html.escape(key)}" data-kind="{node.kind}">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{WIDTH}" height="{HEIGHT}" rx="8" fill="{COLORS.get(node.kind, "#eee")}"/>'
            f"{lines}<title>{html.escape(hover)}</title></g>"
        )
    edges_json = json.dumps([{"src": e.src, "dst": e.dst, "relation": e.relation} for e in graph.edges])
    edges_json = edges_json.replace("</", "<\\/")  # a "</script>" in a name must not end the script
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><link rel="icon" href="data:,">
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
<p id="summary">(the summary needs JavaScript)</p><p>Selected: <code id="selected">none</code>; click a node to show what it came from and what it reached; drag to pan, wheel to zoom
<button id="zoom-in">+</button> <button id="zoom-out">&minus;</button> <button id="zoom-fit">fit</button></p>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" preserveAspectRatio="xMidYMin meet">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
<path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>
{chr(10).join(parts)}
</svg>
<script type="application/json" id="edges">{edges_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
