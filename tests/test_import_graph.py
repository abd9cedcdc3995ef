"""The package's import graph, read from the source with ``ast`` (imports
inside functions and under ``TYPE_CHECKING`` included): no module imports
one of a higher layer, and there is no circle. Layers, low to high: the
shared leaves (errors, settings, paths, results, ...) < sources < encoders <
storage < query < build < the engine < the faces (cli, web, the package's
own ``dsqa`` API)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dsqa"

LEAVES = ("dsqa._version", "dsqa.errors", "dsqa.settings", "dsqa.paths", "dsqa.results", "dsqa.devsets", "dsqa.environment", "dsqa.configuration")
LAYERS = {
    "leaves": 0,
    "dsqa.sources": 1,
    "dsqa.encoders": 2,
    "dsqa.storage": 3,
    "dsqa.query": 4,
    "dsqa.build": 5,
    "dsqa.engine": 6,
    "dsqa.evaluation": 6,
    "faces": 7,
}
FACES = ("dsqa", "dsqa.cli", "dsqa.web", "dsqa.mcp")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def layer(module: str) -> int:
    if module in LEAVES or any(module.startswith(leaf + ".") for leaf in LEAVES):
        return LAYERS["leaves"]
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return rank
    if module in FACES or any(module.startswith(face + ".") for face in FACES[1:]):
        return LAYERS["faces"]
    raise AssertionError(f"{module} is in no layer: add it to this test")


def imports_of(module: str) -> set[str]:
    """The dsqa modules ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from package import module`` imports the module.
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer(module)


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{m} -> {target}" for m, targets in sorted(GRAPH.items()) for target in sorted(targets) if layer(target) > layer(m)
    ]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_the_import_graph_has_no_circle():
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> None:
        path.append(module)
        on_path.add(module)
        for target in sorted(GRAPH[module]):
            if target in on_path:
                circle = path[path.index(target) :] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target not in done:
                visit(target)
        on_path.discard(path.pop())
        done.add(module)

    for module in sorted(GRAPH):
        if module not in done:
            visit(module)


def test_the_graph_sees_imports_inside_functions():
    """The check would be worthless if it missed the imports that hide a
    circle: ``reindex`` imports the Ray embedder inside a function."""
    assert "dsqa.encoders.ray" in GRAPH["dsqa.build.reindex"]
