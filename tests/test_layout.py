"""The layout's rules, checked from the source: rooms, one-way imports, no cycles, small modules.

Every import counts, wherever it stands (module top, inside a function, under
``TYPE_CHECKING``): a deferred import still ties two rooms together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Where each part of the one import package lives in the repository.
SOURCES = {
    "interlock": REPO / "daemon",
    "interlock.components": REPO / "components",
    "interlock.config": REPO / "config",
}
#: The rooms of the daemon, top to bottom: a room imports only from rooms below it.
ROOMS = ("cli", "service", "observe", "core", "kit", "store", "config")
#: Modules that import nothing of ours (or only each other) and that every room may use.
LEAVES = frozenset({"errors", "events", "delivery", "outcome", "cadence", "graph", "secrets"})
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module of ours."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for prefix, root in SOURCES.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join((prefix, *rel))] = path
    return found


MODULES = _modules()


def _resolve(source: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(source: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "interlock":
                    yield Import(source, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(source, path, node)
            if module.split(".")[0] != "interlock":
                continue
            plain = []
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if sub in MODULES:
                    yield Import(source, sub, (), node.lineno)
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                yield Import(source, module, tuple(plain), node.lineno)


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports(name, path)]


def _room(module: str) -> str | None:
    """The room of a daemon module (``None`` for the package itself and components)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "components":
        return None
    return "leaf" if parts[1] in LEAVES else parts[1]


def _rank(room: str) -> int:
    return len(ROOMS) if room == "leaf" else ROOMS.index(room)


def test_every_daemon_module_is_in_a_room_or_is_a_leaf() -> None:
    """Nothing sits loose at the top of the package beside the rooms and the leaves."""
    loose = [
        m
        for m in MODULES
        if (room := _room(m)) is not None and room != "leaf" and room not in ROOMS
    ]
    assert loose == []


def test_every_package_says_what_lives_there_and_what_it_may_import() -> None:
    """Each package's ``__init__`` opens with a docstring of at least two lines."""
    thin = []
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if len(doc.strip().splitlines()) < 2:
                thin.append(name)
    assert thin == []


def test_rooms_import_only_downwards() -> None:
    """cli -> service -> observe -> core -> kit -> store -> config -> leaves, never up."""
    wrong = []
    for imp in IMPORTS:
        mine, theirs = _room(imp.source), _room(imp.target)
        if mine is None or theirs is None or mine == theirs:
            continue
        if mine == "leaf" or _rank(theirs) < _rank(mine):
            wrong.append(f"{imp.source}:{imp.line} ({mine}) imports {imp.target} ({theirs})")
    assert wrong == []


def test_core_never_imports_service_cli_or_observe() -> None:
    """The engine stands alone: it knows nothing of how it is served, driven or watched."""
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if _room(imp.source) == "core" and _room(imp.target) in {"service", "cli", "observe"}
    ]
    assert wrong == []


def _component_package(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "components":
        return parts[2]
    return None


def test_components_import_only_the_kit_the_config_and_the_leaves() -> None:
    """A component (or its library) reaches the daemon only through the kit and the leaves."""
    wrong = []
    for imp in IMPORTS:
        mine = _component_package(imp.source)
        if mine is None:
            continue
        theirs = _component_package(imp.target)
        if theirs == mine:
            continue
        # The stand-ins sign and shape replies as the real APIs do, with the same code.
        if mine == "standins" and theirs is not None:
            continue
        if theirs is None and _room(imp.target) in {"kit", "config", "leaf"}:
            continue
        if imp.target == "interlock.components":
            continue
        wrong.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert wrong == []


def test_the_daemon_reaches_components_only_through_the_registry() -> None:
    """No daemon module imports a component; the registry loads them by name at run time.

    The demo and ``interlock standins`` are the exceptions: they start the stand-in
    servers, which are not components.
    """
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if _room(imp.source) is not None
        and _component_package(imp.target) is not None
        and not (
            imp.source in {"interlock.cli.demo", "interlock.cli.standins"}
            and _component_package(imp.target) == "standins"
        )
    ]
    assert wrong == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_names_a_cycle() -> None:
    """The checker itself finds a planted cycle and names it in order."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_anywhere() -> None:
    """Following imports never leads back to where it started."""
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.target in MODULES and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module: str) -> None:
    """Modules stay one concept each; a long one is split by concept."""
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(REPO)} has {lines} lines"


def _package(module: str) -> str:
    path = MODULES.get(module)
    return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]


def test_private_names_are_not_imported_across_packages() -> None:
    """A leading underscore means 'this package only'."""
    wrong = [
        f"{imp.source}:{imp.line} imports {name} from {imp.target}"
        for imp in IMPORTS
        for name in imp.names
        if name.startswith("_") and _package(imp.source) != _package(imp.target)
    ]
    assert wrong == []


def test_the_checks_see_the_whole_source() -> None:
    """The walk found every room and every built-in component (a guard on the guard)."""
    rooms = {_room(m) for m in MODULES}
    assert set(ROOMS) | {"leaf"} <= rooms
    assert {"gtfs_schedule", "gtfs_realtime", "ptv_timetable", "datavic", "standins"} <= {
        _component_package(m) for m in MODULES
    }
    assert len(IMPORTS) > 300
