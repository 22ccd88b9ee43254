"""The dependency graph: ordering, cycles, closure, and who may overlap whom.

Pure functions over plain mappings so the scheduler, ``plan`` and the config
checker share one definition of every rule.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]``, or None when the graph is acyclic.

    Only edges between known nodes are followed (unknown names are reported elsewhere).
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        # Iterative DFS: a deep chain of components must not hit the recursion limit.
        path: list[str] = [root]
        iters = [iter(deps[root])]
        colour[root] = grey
        while iters:
            child = next(iters[-1], None)
            if child is None:
                colour[path.pop()] = black
                iters.pop()
                continue
            if child not in colour:
                continue
            if colour[child] == grey:
                return [*path[path.index(child) :], child]
            if colour[child] == white:
                colour[child] = grey
                path.append(child)
                iters.append(iter(deps[child]))
    return None


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Order nodes so each comes after its dependencies; ties keep the mapping's order.

    Raises ValueError on a cycle; callers validate with :func:`find_cycle` first.
    """
    remaining = {name: {d for d in ds if d in deps} for name, ds in deps.items()}
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in remaining.items():
        for d in ds:
            dependents[d].append(name)
    position = {name: i for i, name in enumerate(deps)}
    ready = [name for name, ds in remaining.items() if not ds]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__, reverse=True)
        name = ready.pop()
        order.append(name)
        for child in dependents[name]:
            remaining[child].discard(name)
            if not remaining[child]:
                ready.append(child)
    if len(order) != len(remaining):
        raise ValueError(f"dependency cycle: {find_cycle(deps)}")
    return order


def upstream_closure(deps: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """``names`` plus everything they depend on, transitively."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in deps:
            continue
        seen.add(name)
        stack.extend(deps[name])
    return seen


def groups_by_component(groups: Mapping[str, Collection[str]]) -> dict[str, frozenset[str]]:
    """Invert ``{group: members}`` into ``{component: groups it belongs to}``."""
    out: dict[str, set[str]] = {}
    for group, members in groups.items():
        for member in members:
            out.setdefault(member, set()).add(group)
    return {name: frozenset(gs) for name, gs in out.items()}


def may_overlap(
    candidate: str,
    running: Collection[str],
    member_of: Mapping[str, frozenset[str]],
    grouping: bool,
) -> bool:
    """Whether ``candidate`` may start while ``running`` run (the parallel-group rule).

    Without configured groups anything may overlap. With groups, two components
    overlap only if they share a group; a component in no group runs alone.
    """
    if not running or not grouping:
        return True
    mine = member_of.get(candidate, frozenset())
    if not mine:
        return False
    return all(mine & member_of.get(other, frozenset()) for other in running)
