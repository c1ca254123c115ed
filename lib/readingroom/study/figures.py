"""Pictures of aids: the timeline on a time axis, the concept map as a
graph. Matplotlib Figures made with readingroom.viz.new_figure (not pyplot),
networkx for the map's layout. Labels are drawn as text, never parsed as
markup (matplotlib's mathtext is switched off for them)."""
from __future__ import annotations

import textwrap

from readingroom.viz import new_figure

LABEL_WIDTH = 28


def figure_for(aid):
    if aid.kind == "timeline" and aid.items:
        return timeline_figure(aid)
    if aid.kind == "map" and aid.items:
        return concept_map_figure(aid)
    return None


def _label(text: str, width: int = LABEL_WIDTH) -> str:
    return "\n".join(textwrap.wrap(text, width)[:3])


def timeline_figure(aid):
    events = aid.items
    fig, (ax,) = new_figure(9, 1.6 + 0.45 * len(events))
    years = [e.year for e in events]
    rows = list(range(len(events)))[::-1]
    ax.scatter(years, rows, color="#4c72b0", zorder=3)
    span = max(years) - min(years) or 1
    for year, row, event in zip(years, rows, events):
        ax.text(year + span * 0.02, row, f"{event.date}: {_label(event.event, 60)} [{event.quote.n}]",
                va="center", fontsize=8, usetex=False, parse_math=False)
    ax.set_yticks([])
    ax.set_xlim(min(years) - span * 0.05, max(years) + span * 1.2)
    ax.set_ylim(-1, len(events))
    ax.set_xlabel("year")
    ax.set_title(aid.title, fontsize=10, parse_math=False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return fig


def concept_map_figure(aid):
    import networkx as nx

    from readingroom.answer.quotes import normal_form

    graph = nx.DiGraph()
    names = {}
    for link in aid.items:
        a, b = (names.setdefault(normal_form(c)[0], c) for c in (link.source, link.target))
        graph.add_edge(a, b, label=f"{link.relation} [{link.quote.n}]")
    fig, (ax,) = new_figure(9, 7)
    layout = nx.spring_layout(graph, seed=0, k=1.5 / max(len(graph) ** 0.5, 1))
    nx.draw_networkx_nodes(graph, layout, ax=ax, node_color="#dde6f3", node_size=2200, edgecolors="#4c72b0")
    nx.draw_networkx_edges(graph, layout, ax=ax, arrows=True, arrowsize=14, node_size=2200, edge_color="#777")
    for node, (x, y) in layout.items():
        ax.text(x, y, _label(node, 16), ha="center", va="center", fontsize=8, parse_math=False)
    for (a, b), label in nx.get_edge_attributes(graph, "label").items():
        (xa, ya), (xb, yb) = layout[a], layout[b]
        ax.text((xa + xb) / 2, (ya + yb) / 2, _label(label, 22), ha="center", va="center", fontsize=7,
                color="#333", parse_math=False, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set_title(aid.title, fontsize=10, parse_math=False)
    ax.set_axis_off()
    return fig
