"""django-health-check (v4) checks, one per pooled alias (extra: ``health-check``).

Each check runs the same bounded probe as the health view
(``django_sqla_pool.health``): ``degraded`` raises ``ServiceWarning``,
``down`` raises ``ServiceUnavailable``. Messages carry only the reason's
summary ("cannot connect", "pool exhausted", ...), never a host, port,
user or driver message, since django-health-check shows them to anyone::

    from health_check.views import HealthCheckView
    from django_sqla_pool.contrib.health_check import pool_checks

    urlpatterns = [
        path("ht/", HealthCheckView.as_view(checks=[*pool_checks(), "health_check.checks.Cache"])),
    ]

or name aliases yourself: ``("django_sqla_pool.contrib.health_check.ConnectionPool",
{"alias": "replica"})``.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from ..observe import health
from ..observe.report import pooled_aliases


@dataclasses.dataclass
class ConnectionPool(HealthCheck):
    """One pooled alias: a connection within the bound and ``SELECT 1``, and no saturation."""

    alias: str = "default"

    @property
    def timeout(self) -> datetime.timedelta:
        # django-health-check gives up after this (plus a second); the probe's
        # own bound, DJANGO_SQLA_POOL_HEALTH_TIMEOUT, comes first.
        return datetime.timedelta(seconds=health.configured_timeout())

    def run(self) -> None:
        [probe] = health.check([self.alias])
        if probe.status == health.DOWN:
            raise ServiceUnavailable(probe.summary)
        if probe.status == health.DEGRADED:
            raise ServiceWarning(probe.summary)


def pool_checks() -> list[tuple[type[ConnectionPool], dict[str, Any]]]:
    """``HealthCheckView`` check entries: one :class:`ConnectionPool` per pooled alias."""
    return [(ConnectionPool, {"alias": alias}) for alias in pooled_aliases()]
