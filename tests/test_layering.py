"""ARCHITECTURE.md's layering holds in the code: every ``import cnnlab.X`` (at the top of a
module or inside a function) points to the importer's own layer or below, and no module
imports one that imports it back."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cnnlab"


def declared_layers() -> tuple[dict[str, int], set[str]]:
    """``{package: layer}`` from the ``layers:`` line of ARCHITECTURE.md, and the leaves
    (modules written ``(leaf: cnnlab.x.y)`` there, which import nothing above errors/_util
    and may be imported from any layer)."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    line = re.search(r"^layers: (.+)$", text, re.M)
    assert line, "ARCHITECTURE.md lost its `layers:` line"
    layers = {}
    for i, group in enumerate(line.group(1).split("->")):
        for name in group.split(","):
            layers[name.strip()] = i
    leaves = set(re.findall(r"\(leaf: (cnnlab[\w.]+)\)", text))
    return layers, leaves


def module_names() -> dict[str, Path]:
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    mods = module_names()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for mod, path in mods.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {resolve(a.name) for a in node.names if a.name.startswith("cnnlab")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnlab"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    out.add(full if full in mods else resolve(node.module))
        out.discard(mod)
        graph[mod] = out
    return graph


def package(mod: str) -> str:
    return mod.split(".")[1] if "." in mod else ""


def test_every_import_points_down_the_declared_layers():
    layers, leaves = declared_layers()
    bad = []
    for mod, targets in import_graph().items():
        src = package(mod)
        if src in ("", "__main__"):  # the facade (cnnlab.summary, __version__) and `-m cnnlab`
            continue
        assert src in layers, f"{mod}: package {src!r} is missing from ARCHITECTURE.md's layers"
        for t in targets:
            dst = package(t)
            if mod in leaves:
                if dst not in ("errors", "_util"):
                    bad.append(f"{mod} is a leaf but imports {t}")
            elif dst and t not in leaves and layers[dst] > layers[src]:
                bad.append(f"{mod} (layer {layers[src]}) imports {t} (layer {layers[dst]})")
    assert not bad, "imports against ARCHITECTURE.md's layering:\n" + "\n".join(sorted(bad))


def test_no_import_circles():
    graph = import_graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rule is live: a data module importing training is reported."""
    fake = tmp_path / "cnnlab"
    (fake / "data").mkdir(parents=True)
    (fake / "training").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "training" / "__init__.py").write_text("")
    (fake / "data" / "x.py").write_text("def f():\n    from cnnlab.training import y\n")
    (fake / "training" / "y.py").write_text("import cnnlab.data.x\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    graph = import_graph()
    assert graph["cnnlab.data.x"] == {"cnnlab.training.y"}
    try:
        test_every_import_points_down_the_declared_layers()
    except AssertionError as e:
        assert "cnnlab.data.x (layer 3) imports cnnlab.training.y (layer 6)" in str(e)
    else:
        raise AssertionError("the layering check missed data -> training")
    try:
        test_no_import_circles()
    except AssertionError as e:
        assert "cnnlab.data.x" in str(e)
    else:
        raise AssertionError("the circle check missed data.x <-> training.y")
