"""Extra DATABASES aliases for one test, for the health and metrics tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections

from django_sqla_pool.core import registry
from django_sqla_pool.observe import health

CLOSED_PORT = 25441  # in observe's port range: nothing listens there


def extra_aliases() -> Iterator[Any]:
    """For a fixture: yields ``add(alias, options, **keys)``, which adds a DATABASES alias
    (a copy of the test database's entry with changes); removes them all afterwards."""
    added: list[str] = []

    def add(alias: str, options: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
        base = connections["default"].settings_dict
        entry = {**base, **keys, "OPTIONS": {**base["OPTIONS"], **(options or {})}}
        # DATABASES and the connection handler's copy are the same dict.
        settings.DATABASES[alias] = entry
        connections.settings[alias] = entry
        added.append(alias)
        return entry

    yield add
    for alias in added:
        wait_for_probes(alias)
        if hasattr(connections._connections, alias):
            connections[alias].close()
            del connections[alias]
        settings.DATABASES.pop(alias, None)
        connections.settings.pop(alias, None)
        registry.close_pools(alias)


def wait_for_probes(alias: str, timeout: float = 30.0) -> None:
    """Until no health probe of ``alias`` runs (a stuck one ends when its server goes)."""
    deadline = time.monotonic() + timeout
    while any(p.alias == alias for p in list(health._running)):
        assert time.monotonic() < deadline, "a health probe thread did not finish"
        time.sleep(0.02)
