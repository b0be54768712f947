"""The liveness view never touches a database: a dead database must not restart web pods.

No django_db mark: pytest-django makes any database access fail here.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connections

from django_sqla_pool.core import registry


def test_liveness_answers_200_without_touching_any_database(client, monkeypatch) -> None:
    # Even with ATOMIC_REQUESTS, which opens a transaction around ordinary views.
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    # And with the database unreachable.
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", 25441)
    checkouts_before = {id(p): p.stats.checkouts for p in registry.pools()}
    response = client.get("/health/live/")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "alive"}
    assert {id(p): p.stats.checkouts for p in registry.pools()} == checkouts_before
    assert connections["default"].connection is None


def test_liveness_is_not_cached(client: Any) -> None:
    assert "no-store" in client.get("/health/live/")["Cache-Control"]
