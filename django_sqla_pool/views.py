"""The health endpoints: readiness (a bounded probe per pooled alias) and liveness.

Include ``django_sqla_pool.urls`` to serve them at ``health/`` and
``health/live/``. Anyone gets the statuses; the reasons, gauges, counters
and server headroom need the shared token or ``view_poolstats`` (see
``access.py``). Nothing here prints a password or a DSN.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from django.db import connections, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .access import may_see_numbers
from .conf import HEALTH_WINDOW
from .observe import health
from .observe.report import pooled_aliases, saturation
from .observe.stats import pool_stats


def _return_request_connections(aliases: list[str]) -> None:
    # Checking the caller's permission may have taken a connection (session
    # and user queries); hand it back first, so the probe never competes with
    # this very request for a pool slot.
    for alias in aliases:
        wrapper = connections[alias]
        if wrapper.connection is not None and not wrapper.in_atomic_block:
            wrapper.close()


def _details(probe: health.Probe, now: float) -> dict[str, Any]:
    pools = [
        {**entry, "saturation": saturation(entry, now, HEALTH_WINDOW)}
        for entry in pool_stats(probe.alias)["pools"]
    ]
    return {
        "status": probe.status,
        "reason": probe.reason,
        "probe_ms": probe.probe_ms,
        "server": probe.server,
        "pools": pools,
    }


# Not atomic even with ATOMIC_REQUESTS: a transaction would take a
# connection before the view runs.
@transaction.non_atomic_requests
@never_cache
@require_safe
def health_view(request: HttpRequest) -> JsonResponse:
    """200 with ``ok`` or ``degraded``, 503 with ``down``; JSON."""
    numbers = may_see_numbers(request)
    aliases = pooled_aliases()
    _return_request_connections(aliases)
    probes = health.check(aliases, numbers=numbers)
    status = health.worst([p.status for p in probes])
    body: dict[str, Any] = {"status": status}
    if numbers:
        now = time.time()
        body["process"] = f"{socket.gethostname()}:{os.getpid()}"
        body["time"] = now
        body["timeout_s"] = health.configured_timeout()
        body["databases"] = {p.alias: _details(p, now) for p in probes}
    else:
        body["databases"] = {p.alias: {"status": p.status} for p in probes}
    return JsonResponse(body, status=503 if status == health.DOWN else 200)


@transaction.non_atomic_requests
@never_cache
@require_safe
def liveness_view(request: HttpRequest) -> JsonResponse:
    """Always 200 while the process serves requests: never touches a database.

    For Kubernetes' livenessProbe: a database outage must not restart every
    web pod. Use the health view for readinessProbe.
    """
    return JsonResponse({"status": "alive"})
