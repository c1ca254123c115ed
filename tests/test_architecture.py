"""The import contract of lib/readingroom (docs/ARCHITECTURE.md): imports
point down the flow of data, no two modules import each other (not even
through an import inside a function), and no module takes another
package's private (_underscored) name. Read from the source with ast, so
nothing is imported and the test takes a fraction of a second."""
from __future__ import annotations

import ast
import functools
import sys
import warnings
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"
PACKAGE = "readingroom"

# The layers, lowest first: a module may import from its own top-level
# package and from lower layers, never from its own layer's other packages
# nor from above. Where a name sits was worked out from what it imports:
# evaluate below tune (tune measures with evaluate's runs table), the
# figures (viz) at the bottom, since explore, evaluate and news all draw
# with it.
LAYERS = [
    {"paths", "hashing", "dates", "text", "viz", "deployment", "workers", "shards", "messages"},  # plain helpers, no readingroom imports but each other
    {"corpus"},                                      # documents, readers, passages
    {"library"},                                     # the DuckDB file, ingest
    {"models"},                                      # catalogue, fetch, resolve, embed, generate
    {"search"},                                      # index, fusion, searcher, rerank
    {"answer"},                                      # prompt, pipeline, check
    {"evaluate", "explore", "news"},                 # what reads the library through search and answers
    {"tune", "study"},                               # adapts the models, measured with evaluate; study aids (use explore's KWIC)
    {"ui"},                                          # the chat widget, the app, the generation service
    {"cli"},                                         # the shell's view of all of it
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
# readingroom/__init__.py is the public face: it may gather from any layer
# below the user interfaces (it imports tune to register tuned models' names).
FACADE_MAY_IMPORT_BELOW = LAYER_OF["ui"]

# Violations that other work of the same restructure removes; each entry
# says who. Empty this set once those branches are merged (the test warns
# about entries that no longer occur).
EXPECTED_VIOLATIONS: set[str] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((LIB / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(LIB).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


@functools.cache
def parsed(path: Path) -> list[ast.AST]:
    return list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))


def imports(module: str, path: Path) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every import in
    the file, those inside functions included."""
    found = []
    for node in parsed(path):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [(source, alias.name) for alias in node.names]
    return [(source, name) for source, name in found if source.split(".")[0] == PACKAGE]


def graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (a name taken from a
    package counts as an import of the submodule when there is one)."""
    edges = {}
    for module, path in MODULES.items():
        targets = set()
        for source, name in imports(module, path):
            target = f"{source}.{name}" if f"{source}.{name}" in MODULES else source
            if target in MODULES and target != module:
                targets.add(target)
        edges[module] = targets
    return edges


def top(module: str) -> str | None:
    """The top-level package or module a module belongs to (None: the facade)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations() -> set[str]:
    found = set()
    for module, targets in graph().items():
        here = top(module)
        for target in targets:
            there = top(target)
            if there == here:
                continue
            if there is None:
                found.add(f"layer: {module} imports the facade {PACKAGE} (import from the module itself)")
            elif here is None:
                if LAYER_OF[there] >= FACADE_MAY_IMPORT_BELOW:
                    found.add(f"layer: the facade imports {target}")
            elif LAYER_OF[there] >= LAYER_OF[here]:
                found.add(f"layer: {module} ({here}, layer {LAYER_OF[here]}) imports {target} "
                          f"({there}, layer {LAYER_OF[there]})")
    return found


def cycles() -> set[str]:
    """One cycle per strongly connected group of modules, leaving out a
    package whose __init__ gathers its own submodules."""
    edges = graph()
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    found = set()
    for group in groups:
        first = min(group)  # a package sorts before its submodules
        if all(m == first or m.startswith(first + ".") for m in group):
            continue
        found.add("cycle: " + " <-> ".join(sorted(group)))
    return found


def private_imports() -> set[str]:
    found = set()
    for module, path in MODULES.items():
        for source, name in imports(module, path):
            taken = [name] if name else []
            taken += source.split(".")[1:]
            if any(p.startswith("_") and not p.startswith("__") for p in taken) and top(source) != top(module):
                found.add(f"private: {module} imports {source}.{name}" if name else
                          f"private: {module} imports {source}")
    return found


def check(kind: str, found: set[str]) -> None:
    """No violation of `kind` ("layer", "cycle", "private") but the expected ones."""
    expected = {v for v in EXPECTED_VIOLATIONS if v.startswith(kind + ":")}
    if gone := expected - found:
        warnings.warn(f"no longer found, remove from EXPECTED_VIOLATIONS: {sorted(gone)}", stacklevel=2)
    unexpected = found - expected
    assert not unexpected, "\n".join(sorted(unexpected))


def test_every_top_level_name_has_a_layer():
    names = {top(m) for m in MODULES} - {None}
    assert names <= set(LAYER_OF), f"place these in LAYERS: {sorted(names - set(LAYER_OF))}"


def test_imports_point_down_the_layers():
    check("layer", layer_violations())


def test_no_import_cycles():
    check("cycle", cycles())


def test_no_private_names_of_other_packages():
    check("private", private_imports())


def test_the_checks_find_what_they_look_for(tmp_path, monkeypatch):
    """The checks themselves can fail: a small package that breaks each rule."""
    package = tmp_path / PACKAGE
    for name, text in {
        "__init__.py": "",
        "corpus/__init__.py": "",
        "corpus/document.py": "from readingroom.search.searcher import find\n",          # upward
        "search/__init__.py": "",
        "search/searcher.py": "def find(): from readingroom.corpus.document import x\n",  # cycle (late)
        "answer/__init__.py": "",
        "answer/check.py": "from readingroom.search.searcher import _stem\n",             # private
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "LIB", tmp_path)
    monkeypatch.setattr(this, "MODULES", modules())
    assert layer_violations() == {
        "layer: readingroom.corpus.document (corpus, layer 1) imports readingroom.search.searcher (search, layer 4)"}
    assert cycles() == {"cycle: readingroom.corpus.document <-> readingroom.search.searcher"}
    assert private_imports() == {"private: readingroom.answer.check imports readingroom.search.searcher._stem"}


@pytest.mark.parametrize("module", ["readingroom.cli", "readingroom.models.generate", "readingroom.evaluate.questions"])
def test_the_graph_sees_real_imports(module):
    """A guard against a graph that is empty by mistake."""
    assert graph()[module], f"{module} imports nothing of the package?"
