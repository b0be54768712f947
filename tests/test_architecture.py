"""The package's import graph: no circles, and the layers of docs/architecture.md.

``make lint`` runs the same contract with lint-imports; this test reads the
graph itself, so a circle fails the suite too, with the modules named.
"""

from __future__ import annotations

import subprocess
import sys

import grimp
import pytest

PACKAGE = "django_sqla_pool"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
    return groups


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    modules = {m for m in graph.modules if m.startswith(PACKAGE)}
    return {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}


def test_no_module_of_the_package_is_part_of_an_import_circle(import_graph) -> None:
    circles = [sorted(g) for g in _strongly_connected(import_graph) if len(g) > 1]
    assert circles == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [g for g in _strongly_connected(graph) if len(g) > 1] == [{"a", "b", "c"}]


def test_the_core_imports_nothing_above_it(import_graph) -> None:
    upward = {
        (module, target)
        for module, targets in import_graph.items()
        if module.startswith(f"{PACKAGE}.core")
        for target in targets
        if not target.startswith(f"{PACKAGE}.core")
    }
    assert upward == set()


def test_importing_the_core_loads_nothing_above_it() -> None:
    # The root package imports lazily: the pool core must not drag the Django side in.
    code = (
        "import sys, django_sqla_pool.core.registry; "
        "print(sorted(m for m in sys.modules if m.startswith('django_sqla_pool.') "
        "and not m.startswith('django_sqla_pool.core')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
