"""The import graph: no circles (function-level imports counted), and the checker never imports
the lab (dependencies run lab -> product; the lab plugs in by entry point, pyproject.toml).

Function-level imports are edges like any other here, so a circle cannot hide behind one: a
function-level import that remains is there for speed or an optional SDK, never for a circle.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
from collections.abc import Iterator
from pathlib import Path

import pgproof

ROOT = Path(pgproof.__file__).resolve().parents[1]
# The folders shipped as pgproof.suites & co. (pyproject.toml package-dir) are product too.
SHIPPED = {"suites": "pgproof.suites", "scenarios": "pgproof.scenarios",
           "locustfiles": "pgproof.locustfiles"}
LAB = "pgproof.lab"


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    roots = [(ROOT / "pgproof", "pgproof")] + [(ROOT / d, m) for d, m in SHIPPED.items()]
    for base, name in roots:
        for path in base.rglob("*.py"):
            parts = [name, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The pgproof module an imported name lives in (None: not pgproof's)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported pgproof module, line) for every import in ``module`` at any depth, those under
    ``if TYPE_CHECKING:`` included (a type-only circle is still a tangle a reader must hold).
    Importing ``a.b.c`` also runs packages ``a.b`` and ``a``; a module naming its own package
    (``from pgproof.catalogue import CATALOGUE`` in ``pgproof.catalogue.tls``) depends on it."""
    is_pkg = path.name == "__init__.py"

    def visit(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            yield from visit(child)

    for node in visit(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            here = module.split(".")[: None if is_pkg else -1]
            base = here[: len(here) - node.level + 1] if node.level else []
            pkg = ".".join(base + ([node.module] if node.module else []))
            names = [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in MODULES else pkg for a in node.names]
        for name in names:
            owner = _owner(name)
            explicit = True  # the module named; its parent packages run implicitly
            while owner:
                if owner != module and (explicit or not module.startswith(owner + ".")):
                    yield owner, node.lineno
                explicit = False
                owner = _owner(owner.rpartition(".")[0]) if "." in owner else None


GRAPH = {m: sorted({t for t, _ in _imports(m, p)}) for m, p in MODULES.items()}


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, edges = work[-1]
            w = next(edges, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.get(w, []))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_graph_is_read() -> None:
    """Guards the test itself: a parser that saw no edges would find no circle."""
    assert len(MODULES) > 150
    assert "pgproof.probes.aws_calls" in GRAPH["pgproof.probes.aws"]
    assert "pgproof.procs" in GRAPH["pgproof.lab.components"]
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert _cycles(GRAPH) == []


def test_the_checker_never_imports_the_lab() -> None:
    bad = [f"{m} ({MODULES[m].relative_to(ROOT)}:{line}) imports {t}"
           for m, p in MODULES.items() if not (m == LAB or m.startswith(LAB + "."))
           for t, line in _imports(m, p) if t == LAB or t.startswith(LAB + ".")]
    assert bad == []


def test_the_checker_names_no_lab_module() -> None:
    """No back door: no importlib/``-m`` string naming a lab module in checker code."""
    bad = []
    for m, p in MODULES.items():
        if m == LAB or m.startswith(LAB + "."):
            continue
        tree = ast.parse(p.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and n.body and isinstance(n.body[0], ast.Expr)}
        bad += [f"{p.relative_to(ROOT)}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                and (n.value == LAB or n.value.startswith(LAB + "."))]
    assert bad == []


def test_the_lab_plugs_in_by_entry_point() -> None:
    """What the checker finds instead of importing: the lab's driver and its command."""
    found = {(ep.group, ep.name): ep.value for group in ("pgproof.drivers", "pgproof.commands")
             for ep in md.entry_points(group=group)}
    assert found[("pgproof.drivers", "lab")] == "pgproof.lab.driver:LabDriver"
    assert found[("pgproof.commands", "lab")] == "pgproof.lab.cli:run"
