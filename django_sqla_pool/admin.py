"""The admin page: every alias's configuration, pools, fleet, headroom and a chart.

Registered on ``admin.site``; on a custom AdminSite register it yourself::

    from django_sqla_pool.admin import PoolStatsAdmin
    from django_sqla_pool.models import PoolStats

    my_site.register(PoolStats, PoolStatsAdmin)

It needs staff status and ``django_sqla_pool.view_poolstats`` (superusers
have every permission).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.text import capfirst

from .conf import parse_pool_settings
from .core import registry
from .models import PoolStats
from .observe import history
from .observe.advice import advise
from .observe.chart import chart
from .observe.report import build_report, pooled_aliases

#: Seconds between the page's automatic reloads (``?refresh=N`` overrides; 0 stops them).
REFRESH = 5


def _flat(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            items.extend(_flat(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _config(alias: str) -> list[tuple[str, Any]]:
    if alias not in settings.DATABASES:
        return []
    try:
        pool_settings = parse_pool_settings(alias, settings.DATABASES[alias])
    except ImproperlyConfigured as error:
        return [("error", str(error))]
    return list(pool_settings.public().items())


class PoolStatsAdmin(admin.ModelAdmin):
    """One read-only page in place of the change list; no add, change or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # admin_view() already sent anonymous and non-staff users to the login page.
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            refresh = min(max(int(request.GET.get("refresh", REFRESH)), 0), 3600)
        except ValueError:
            refresh = REFRESH
        history.ensure_sampler()
        history.sample()
        now = time.time()
        aliases = pooled_aliases()
        aliases += sorted({p.alias for p in registry.pools()} - set(aliases))
        report = build_report(aliases)
        databases = []
        for db in report["databases"]:
            pools = [
                {
                    **pool,
                    "gauge_items": list(pool["gauges"].items()),
                    "counter_items": _flat(pool["counters"]),
                    "timing_items": list(pool["timings"].items()),
                    "chart": chart(history.samples(pool["name"]), now),
                }
                for pool in db["pools"]
            ]
            databases.append(
                {
                    **db,
                    "config": _config(db["alias"]),
                    "fleet_rows": [
                        {**p, "idle_in_transaction": p["states"]["idle in transaction"]}
                        for p in (db["fleet"] or {}).get("processes", [])
                    ],
                    "pools": pools,
                    "problems": [p for p in report["problems"] if p["alias"] == db["alias"]],
                    "advice": advise(db, report),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            # The admin index entry's and the breadcrumb's name: one name for the page.
            "title": capfirst(self.opts.verbose_name_plural),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "report": report,
            "databases": databases,
            "refresh": refresh,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "django_sqla_pool/poolstats.html", context)


admin.site.register(PoolStats, PoolStatsAdmin)
