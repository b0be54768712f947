"""pool_stats() under a known load: the numbers match what happened.

Invalidation causes and single timeouts are covered in test_backend.py;
this file checks the snapshot as a whole under concurrent use.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from django_sqla_pool import PoolTimeout, pool_stats
from django_sqla_pool.conf import PoolSettings

from .conftest import backend_pid, pool_of

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def documented_snapshot_keys(doc: Path) -> set[str]:
    """The keys the pool_stats() table in ``doc`` lists, as dotted paths.

    A row's first key may carry a prefix (``.gauges.pool_size``); the keys after
    it in the same row share that prefix (``.wait_ms_total``, ``.wait_ms_max``).
    Keys under ``pools[]`` start with a dot.
    """
    lines = doc.read_text().splitlines()
    start = lines.index("| key | meaning |") + 2  # the first such table is pool_stats()'s
    keys: set[str] = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        prefix = ""
        for name in names:
            if name.endswith("[]"):
                continue  # "pools[]" introduces the per-pool keys
            if name == ".config.<option>":  # one key per field of PoolSettings
                keys |= {f"pools[].config.{f.name}" for f in dataclasses.fields(PoolSettings)}
                continue
            if name.startswith(".") and name.count(".") > 1 and not prefix:
                prefix = name.rsplit(".", 1)[0]
                keys.add(f"pools[]{name}")
            elif prefix:
                keys.add(f"pools[]{prefix}{name}")
            else:
                keys.add(f"pools[]{name}" if name.startswith(".") else name)
    return keys


def flattened_keys(value: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        if key == "pools":
            for pool in item:
                keys |= flattened_keys(pool, "pools[]")
        elif key == "servers":  # keyed by the servers the connections reached
            keys.add(f"{path}.<host:port>")
        elif isinstance(item, dict):
            keys |= flattened_keys(item, path)
        else:
            keys.add(path)
    return keys


def test_stats_count_every_checkout_wait_and_hold_of_concurrent_threads(make_wrapper) -> None:
    threads, rounds, hold = 6, 5, 0.01
    probe = make_wrapper("load", pool_size=2, max_overflow=0, pool_timeout=10)
    backend_pid(probe)
    probe.close()
    errors: list[BaseException] = []

    def work() -> None:
        db = make_wrapper("load", pool_size=2, max_overflow=0, pool_timeout=10)
        try:
            for _ in range(rounds):
                with db.cursor() as cursor:
                    cursor.execute("SELECT 1")
                time.sleep(hold)  # hold the connection, as a slow request does
                db.close()
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert not errors
    [snapshot] = pool_stats("load")["pools"]
    counters, timings, gauges = snapshot["counters"], snapshot["timings"], snapshot["gauges"]
    assert counters["checkouts"] == counters["checkins"] == 1 + threads * rounds
    assert counters["connections_opened"] == 2  # never more than pool_size
    assert counters["timeouts"] == 0 and snapshot["last_timeout_at"] is None
    assert gauges == {
        "pool_size": 2,
        "max_overflow": 0,
        "checked_out": 0,
        "idle": 2,
        "overflow": 0,
        "waiting": 0,
    }
    # Six threads on two connections, each held >= 10 ms: someone waited.
    assert timings["wait_ms_max"] >= hold * 1000 / 2
    assert timings["held_ms_max"] >= hold * 1000
    assert timings["held_ms_total"] >= threads * rounds * hold * 1000
    assert timings["held_ms_p50"] <= timings["held_ms_p99"] <= timings["held_ms_max"]
    assert timings["connect_ms_total"] > 0 and timings["connect_ms_max"] > 0


@pytest.mark.parametrize("doc", ["README.md", "docs/observability.md"])
def test_snapshot_has_the_documented_keys_and_is_json(make_wrapper, doc: str) -> None:
    holder = make_wrapper("keys", pool_size=1, max_overflow=0, pool_timeout=0.05)
    backend_pid(holder)
    waiter = make_wrapper("keys", pool_size=1, max_overflow=0, pool_timeout=0.05)
    before = time.time()
    for _ in range(2):
        with pytest.raises(PoolTimeout):
            waiter.ensure_connection()
    stats = pool_stats("keys")
    assert json.loads(json.dumps(stats)) == stats
    # Every key the snapshot has is documented, and every documented key is there.
    documented = documented_snapshot_keys(ROOT / doc)
    assert len(documented) > 40
    assert flattened_keys(stats) == documented
    [snapshot] = stats["pools"]
    assert snapshot["counters"]["timeouts"] == 2
    assert snapshot["counters"]["checkouts"] == 1
    assert before <= snapshot["last_timeout_at"] <= time.time()
    assert snapshot["gauges"]["checked_out"] == 1
    assert pool_of(holder).stats.timeouts == 2
