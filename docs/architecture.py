"""Draws docs/architecture.png: the layers of lib/readingroom, lowest at the
bottom, as tests/test_architecture.py enforces them (imports point down), and
the path the data takes up through them.

    python docs/architecture.py
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

HERE = Path(__file__).resolve().parent

# Lowest first, as in tests/test_architecture.py: (package, what it holds).
LAYERS = [
    [("paths · hashing · dates", "where files live, sha256, dates"),
     ("text", "sentences, tokens, words"), ("viz · workers", "figures, pools; deployment")],
    [("corpus/", "documents, readers (sources/), passages, corpora")],
    [("library/", "the DuckDB file: schema, migrations, ingest")],
    [("models/", "catalogue, fetch, resolve, embed, generate/")],
    [("search/", "BM25 + vectors, fused; rerank")],
    [("answer/", "prompt, pipeline, check; quotes, claims, judge")],
    [("evaluate/", "questions, metrics, runs"), ("explore/", "counts, words in context, maps"),
     ("news/", "feeds, stories, digests, alerts")],
    [("tune/", "datasets, LoRA adapters, tuned embedder"), ("study/", "guides, quizzes, maps, checked")],
    [("ui/", "the chat widget, the app, the generation service")],
    [("cli/", "one module per command group")],
]
DATA = ["files, corpora", "documents → passages", "stored, once", "vectors, a generator", "hits",
        "checked answers", "measures, maps, digests", "adapted models, study aids", "a page in the browser",
        "a shell"]
COLOURS = ["#e8e8e8", "#dbe9f6", "#c6dbef", "#c7e9c0", "#fdd0a2", "#fcbba1", "#dadaeb", "#dadaeb",
           "#fff2ae", "#fff2ae"]


def draw() -> Figure:
    fig = Figure(figsize=(11, 8.6), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 11)
    ax.set_ylim(-0.7, len(LAYERS) + 0.3)
    ax.axis("off")
    left, width, height = 1.6, 7.0, 0.72
    for level, (packages, colour, data) in enumerate(zip(LAYERS, COLOURS, DATA)):
        y = level
        box_width = (width - 0.15 * (len(packages) - 1)) / len(packages)
        for i, (name, what) in enumerate(packages):
            x = left + i * (box_width + 0.15)
            ax.add_patch(FancyBboxPatch((x, y), box_width, height, boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor=colour, edgecolor="#555555", linewidth=0.8))
            ax.text(x + box_width / 2, y + height * 0.64, name, ha="center", va="center", fontsize=10.5,
                    fontweight="bold", family="monospace")
            ax.text(x + box_width / 2, y + height * 0.27, what, ha="center", va="center", fontsize=8.2)
        ax.text(left + width + 0.25, y + height / 2, data, ha="left", va="center", fontsize=8.8,
                color="#333333", style="italic")
        ax.text(left - 0.2, y + height / 2, str(level), ha="right", va="center", fontsize=9, color="#777777")
    # The data's path: up the right side; the imports: down the left.
    ax.add_patch(FancyArrowPatch((10.75, 0.1), (10.75, len(LAYERS) - 0.3), arrowstyle="-|>", mutation_scale=18,
                                 linewidth=1.6, color="#2b6cb0"))
    ax.text(10.55, len(LAYERS) / 2, "the data's path", rotation=90, ha="center", va="center", fontsize=10,
            color="#2b6cb0")
    ax.add_patch(FancyArrowPatch((0.55, len(LAYERS) - 0.3), (0.55, 0.1), arrowstyle="-|>", mutation_scale=18,
                                 linewidth=1.6, color="#9b2c2c"))
    ax.text(0.3, len(LAYERS) / 2, "imports point down (tests/test_architecture.py)", rotation=90, ha="center",
            va="center", fontsize=10, color="#9b2c2c")
    ax.text(left + width / 2, -0.45, "A package imports from its own folder and from the layers below, never "
            "from beside or above.", ha="center", va="center", fontsize=9, color="#333333")
    ax.set_title("Reading Room: lib/readingroom by layer", fontsize=13, loc="left")
    return fig


if __name__ == "__main__":
    draw().savefig(HERE / "architecture.png", dpi=110)
    print(HERE / "architecture.png")
