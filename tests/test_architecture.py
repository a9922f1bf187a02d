"""The shape of the package, read with `ast`: no import cycle between its packages, the engine
knowing no claim kind, and no block of code written twice."""

from __future__ import annotations

import ast
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import signoff

ROOT = Path(signoff.__file__).parent
KINDS = "signoff.kinds"
REPEAT_LINES = 10  # a block this long, written twice, is one too many


def _modules() -> dict[str, Path]:
    """Every module under signoff/, by dotted name ("signoff.engine.runner", "signoff.kinds")."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported: not inside a function, not under
    `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _import_time_nodes(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_time_nodes(node.body)


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> Iterator[str]:
    """The signoff modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        # `from signoff import kinds` imports the module signoff.kinds
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("signoff"):
            yield name


def _imports(*, import_time: bool) -> dict[str, set[str]]:
    """Module -> the signoff modules it imports (at import time only, or anywhere)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        if import_time:
            nodes: Iterator[ast.Import | ast.ImportFrom] = _import_time_nodes(tree.body)
        else:
            nodes = (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        is_package = path.name == "__init__.py"
        graph[module] = {t for n in nodes for t in _targets(n, module, is_package, known)}
    return graph


def _package(module: str, packages: set[str]) -> str:
    """The package a module belongs to; a module right under signoff/ is a unit of its own."""
    if module in packages or module.count(".") <= 1:
        return module
    return module.rpartition(".")[0]


def _package_graph() -> dict[str, set[str]]:
    modules = _modules()
    packages = {m for m, p in modules.items() if p.name == "__init__.py"}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports(import_time=True).items():
        source = _package(module, packages)
        graph[source] |= {_package(t, packages) for t in targets} - {source}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages() -> None:
    graph = _package_graph()
    assert "signoff.engine" in graph and "signoff.kinds.cron" in graph  # the graph is read
    assert _cycles(graph) == []


def test_the_engine_knows_no_kind() -> None:
    graph = _imports(import_time=False)
    engine = {m: t for m, t in graph.items() if m.startswith("signoff.engine")}
    assert engine, "signoff/engine/ has no module"
    kinds = {
        m: sorted(t) for m, t in engine.items() if any(x.startswith("signoff.kinds") for x in t)
    }
    assert kinds == {}


def test_a_kind_imports_no_other_kind_nor_the_run_stages() -> None:
    """A kind uses the engine, the claims, the run context and the shared parts (services,
    faults, the served target); never another kind, the registry's callers or the CLI."""
    stages = ("signoff.checks", "signoff.stages", "signoff.cli", "signoff.plugin")
    problems = {}
    for module, targets in _imports(import_time=True).items():
        if not module.startswith("signoff.kinds."):
            continue
        own = ".".join(module.split(".")[:3])
        bad = sorted(
            t
            for t in targets
            if t.startswith(stages) or (t.startswith("signoff.kinds.") and not t.startswith(own))
        )
        if bad:
            problems[module] = bad
    assert problems == {}


def _normalized(path: Path) -> list[tuple[int, str]]:
    """The lines that say something, stripped: no blank line, comment or import."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if text and not text.startswith(("#", "import ", "from ")):
            lines.append((number, text))
    return lines


def _repeats(paths: list[Path], size: int) -> list[list[str]]:
    """Every block of `size` normalized lines found in more than one place ("file:line")."""
    seen: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        lines = _normalized(path)
        for i in range(len(lines) - size + 1):
            window = lines[i : i + size]
            digest = hashlib.sha1("\n".join(t for _, t in window).encode()).hexdigest()
            where = path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path
            seen[digest].append(f"{where}:{window[0][0]}")
    return sorted(places for places in seen.values() if len(places) > 1)


def test_the_repeat_finder_finds_a_repeat(tmp_path: Path) -> None:
    block = "\n".join(f"x{i} = {i}" for i in range(REPEAT_LINES))
    (tmp_path / "a.py").write_text(f"{block}\n")
    (tmp_path / "b.py").write_text(f"# other\n\n{block}\ny = 1\n")
    found = _repeats([tmp_path / "a.py", tmp_path / "b.py"], REPEAT_LINES)
    assert len(found) == 1 and len(found[0]) == 2


def test_no_block_of_code_is_written_twice() -> None:
    paths = sorted(ROOT.rglob("*.py"))
    assert len(paths) > 50
    assert _repeats(paths, REPEAT_LINES) == []
