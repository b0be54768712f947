"""``pool_stats()``: everything this process knows about its pools, as one JSON-able snapshot."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from ..core import registry


def pool_stats(alias: str | None = None) -> dict[str, Any]:
    """Everything this process knows about its pools, JSON-serialisable.

    The keys are documented in docs/observability.md; they are stable.
    """
    pools = []
    for pool in registry.pools(alias):
        credentials = pool.credentials
        pools.append(
            {
                "alias": pool.alias,
                "name": pool.name,
                # Every field of PoolSettings, so a new option shows up here, in
                # poolstats --format json and on the admin page without a second list.
                "config": pool.settings.public(),
                "gauges": pool.gauges(),
                "counters": pool.stats.counters(),
                "timings": pool.stats.timings(),
                "histograms": pool.stats.histograms(),
                "last_timeout_at": pool.stats.last_timeout_at,
                "created_at": pool.stats.created_at,
                "last_connect_error_at": pool.stats.last_connect_error_at,
                # Open connections by the host:port they reached (multi-host HOST).
                "servers": pool.servers(),
                # The provider by name and how often it was called: never its secret.
                "credentials": {
                    "provider": credentials.name if credentials else None,
                    "calls": credentials.calls if credentials else 0,
                    "errors": credentials.errors if credentials else 0,
                },
            }
        )
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "time": time.time(),
        "pools": pools,
    }
