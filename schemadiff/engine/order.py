"""Ordering the diff engine's statements.

Each statement (a :class:`Node`) says which objects it needs (from the
desired state's dependency graph), which it depended on before (from the
current state's), which it creates, drops or alters, and which relation or
type names it frees or takes. :func:`order` sorts them topologically:

- a statement runs after the one creating or altering what it needs;
- a statement that stops depending on an object runs before its drop;
- a drop runs before the creation of the same object, and a name is freed
  before it is claimed again.

Ties are broken by a fixed phase order (ranks below), then by name, then by
emission order, so that the same inputs always give the same bytes.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from .change import Change
from ..errors import OrderingCycle
from .model import Key

# Phase order, used only to break ties between statements the dependency
# graph leaves unordered.
R_RENAME = 0
R_DROP = {"policy": 10, "trigger": 11, "rule": 11, "statistics": 11, "view": 12, "index": 13, "fk": 14, "constraint": 15, "column": 16,
          "table": 17, "function": 18, "sequence": 19, "type": 20, "extension": 21, "schema": 22}
R_ALTER_TYPE, R_ALTER_SEQUENCE, R_REPLACE_FUNCTION, R_ALTER_TABLE, R_ALTER_COLUMN = 30, 31, 32, 33, 34
R_CREATE = {"schema": 40, "extension": 41, "type": 42, "sequence": 43, "table": 45, "column": 46,
            "function": 47, "owned by": 48, "pk": 49, "constraint": 50, "fk": 51, "index": 52, "view": 53,
            "view default": 53, "statistics": 53, "trigger": 54, "rule": 54, "policy": 55, "table option": 56,
            "comment": 60}


@dataclass
class Node:
    """One planned statement as a node of the ordering graph: its change and the keys and names it
    needs, had, provides, removes, modifies, takes and frees (the module docstring says how each orders it).

    Only the ordering reads this; the ordered result is the changes, whose ``needs`` and ``frees``
    (keys removed) are copied from here.
    """
    change: Change
    rank: int
    needs: set[Key] = field(default_factory=set)  # must exist (desired graph)
    had: set[Key] = field(default_factory=set)  # depended on before (current graph)
    provides: set[Key] = field(default_factory=set)
    removes: set[Key] = field(default_factory=set)
    modifies: set[Key] = field(default_factory=set)
    names_taken: set[str] = field(default_factory=set)  # relation / type names ("rel:public.t") it takes
    names_freed: set[str] = field(default_factory=set)  # ... and frees


def order(steps: list[Node]) -> list[Node]:
    """Topological order of the steps; ties broken by (rank, name, emission order).

    The name comes before emission order because emission follows catalog
    order, which differs between two databases built from the same SQL:
    the same inputs must give the same bytes on every machine.

    Raises :class:`OrderingCycle`, naming the statements of one cycle, when
    the steps depend on each other in a circle: releasing one of them
    anyway would print an order that cannot run.
    """
    providers: dict[Key, list[int]] = defaultdict(list)
    removers: dict[Key, list[int]] = defaultdict(list)
    modifiers: dict[Key, list[int]] = defaultdict(list)
    claimers: dict[str, list[int]] = defaultdict(list)
    for i, step in enumerate(steps):
        for key in step.provides:
            providers[key].append(i)
        for key in step.removes:
            removers[key].append(i)
        for key in step.modifies:
            modifiers[key].append(i)
        for name in step.names_taken:
            claimers[name].append(i)
    edges: dict[int, set[int]] = defaultdict(set)

    def edge(first: int, then: int) -> None:
        if first != then:
            edges[first].add(then)

    for i, step in enumerate(steps):
        for key in step.needs:
            for j in providers.get(key, ()):
                edge(j, i)
            if key not in step.modifies:
                for j in modifiers.get(key, ()):
                    edge(j, i)
        for key in step.had:
            for j in removers.get(key, ()):
                edge(i, j)
            if step.change.action == "drop" and key not in step.modifies:
                for j in modifiers.get(key, ()):
                    edge(i, j)
        for key in step.removes:
            for j in providers.get(key, ()):
                edge(i, j)
        for name in step.names_freed:
            for j in claimers.get(name, ()):
                edge(i, j)
    indegree = [0] * len(steps)
    for first, thens in edges.items():
        for then in thens:
            indegree[then] += 1
    ready = [(step.rank, step.change.name, i) for i, step in enumerate(steps) if indegree[i] == 0]
    heapq.heapify(ready)
    done = [False] * len(steps)
    ordered: list[Node] = []
    while len(ordered) < len(steps):
        if not ready:
            raise _cycle_error(steps, edges, done)
        _, _, i = heapq.heappop(ready)
        if done[i]:
            continue
        done[i] = True
        ordered.append(steps[i])
        for then in edges.get(i, ()):
            indegree[then] -= 1
            if indegree[then] == 0 and not done[then]:
                heapq.heappush(ready, (steps[then].rank, steps[then].change.name, then))
    return ordered


def _cycle_error(steps: list[Node], edges: dict[int, set[int]], done: list[bool]) -> OrderingCycle:
    """The error for a dependency cycle among the steps not yet ordered, naming one cycle's statements."""
    remaining = {i for i in range(len(steps)) if not done[i]}
    # Every remaining step has a remaining predecessor, so walking backwards
    # from any of them must revisit a step: the walk from there is a cycle.
    predecessors: dict[int, int] = {}
    for first, thens in edges.items():
        if first in remaining:
            for then in thens:
                if then in remaining:
                    predecessors.setdefault(then, first)
    seen: list[int] = []
    current = min(remaining)
    while current not in seen:
        seen.append(current)
        current = predecessors[current]
    cycle = list(reversed(seen[seen.index(current):]))
    listed = "\n".join(
        f"  - {steps[i].change.action} {steps[i].change.kind} {steps[i].change.name}" for i in cycle
    )
    return OrderingCycle(
        f"the changes depend on each other in a cycle, so no order of them can run:\n{listed}",
        "Split the change into smaller steps (one migration each), or write this migration by hand"
        " (then run `schemadiff hash`); please report the case.",
    )
