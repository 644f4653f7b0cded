"""The package's import graph, read from the source with ``ast``: the core (every ``tinyharness``
module outside ``tinyharness.suts``) has no import cycle and never imports the SUT plugins.

Every import statement counts, also inside functions and ``if TYPE_CHECKING:`` blocks: a cycle
hidden by a late import is still two modules that cannot be understood (or moved) one without the
other.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"tinyharness": REPO / "harness", "tinyharness.suts": REPO / "suts"}
SUTS = "tinyharness.suts"


def modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package), for every .py under harness/ and suts/."""
    found = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            package = parts[-1] == "__init__"
            if package:
                parts.pop()
            found[".".join([prefix, *parts])] = (path, package)
    return found


KINDS = ("", "in a function", "type-only")  # how a module imports another, strongest first


class _Imports(ast.NodeVisitor):
    """Every import target of one module's source, with the strongest way it is imported."""

    def __init__(self, here: str) -> None:
        self.here, self.kind, self.found = here, 0, {}

    def _add(self, target: str) -> None:
        self.found[target] = min(self.found.get(target, len(KINDS)), self.kind)

    def _within(self, kind: int, nodes) -> None:
        outer, self.kind = self.kind, max(self.kind, kind)
        for node in nodes:
            self.visit(node)
        self.kind = outer

    def visit_FunctionDef(self, node) -> None:
        self._within(1, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        self._within(2 if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING") else 0, node.body)
        self._within(0, node.orelse)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.here.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)] + ([base] if base else []))
        self._add(base)
        for alias in node.names:  # from package import module
            self._add(f"{base}.{alias.name}")


def imports(name: str, path: Path, package: bool, known: set[str]) -> dict[str, str]:
    """The modules of ``known`` that module ``name`` imports anywhere in its source, each with how
    ("", "in a function" or "type-only")."""
    visitor = _Imports(name if package else name.rpartition(".")[0])
    visitor.visit(ast.parse(path.read_text(), str(path)))
    resolved: dict[str, int] = {}
    for target, kind in visitor.found.items():
        while target and target not in known:  # a.b.c that is no module: an attribute of a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved[target] = min(resolved.get(target, len(KINDS)), kind)
    return {target: KINDS[kind] for target, kind in resolved.items()}


def graph() -> dict[str, dict[str, str]]:
    found = modules()
    return {name: imports(name, path, package, set(found)) for name, (path, package) in found.items()}


def is_core(name: str) -> bool:
    return name != SUTS and not name.startswith(SUTS + ".")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Shortest cycles that together cover every strongly connected component of more than one
    module (Tarjan's components), each as a path returning to its start."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    found = []
    for component in components:
        covered: set[str] = set()
        for start in sorted(component - covered):
            if start not in covered:
                found.append(_shortest_cycle(start, component, edges))
                covered.update(found[-1])
    return found


def _shortest_cycle(start: str, component: set[str], edges: dict[str, set[str]]) -> list[str]:
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(edges[path[-1]] & component):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError(f"{start} is on no cycle of {sorted(component)}")


def test_the_graph_sees_the_package():
    edges = graph()
    assert {"tinyharness", "tinyharness.runner", "tinyharness.scenarios.windows",
            "tinyharness.suts.null.sut"} <= set(edges)
    assert edges["tinyharness.suts.null.sut"]["tinyharness.sut"] == ""  # absolute, at the top
    assert edges["tinyharness.scenarios.windows"]["tinyharness.scenarios.base"] == ""  # relative
    assert edges["tinyharness.overhead"]["tinyharness.plugins"] == "in a function"
    assert edges["tinyharness.scenarios.base"]["tinyharness.sut"] == "type-only"


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(edges) == [["d", "e", "d"], ["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}) == [["a", "b", "a"], ["c", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_core_modules_import_no_cycle():
    edges = {name: {t: how for t, how in targets.items() if is_core(t)}
             for name, targets in graph().items() if is_core(name)}
    found = []
    for cycle in cycles({name: set(targets) for name, targets in edges.items()}):
        found.append(cycle[0] + "".join(f" -> {b}" + (f" ({edges[a][b]})" if edges[a][b] else "")
                                        for a, b in zip(cycle, cycle[1:])))
    assert found == [], "import cycles among core modules:\n" + "\n".join(found)


def test_core_modules_do_not_import_the_suts():
    found = [f"{name} imports {target}" for name, targets in sorted(graph().items()) if is_core(name)
             for target in sorted(targets) if not is_core(target)]
    assert found == [], "core modules importing SUT plugins:\n" + "\n".join(found)
