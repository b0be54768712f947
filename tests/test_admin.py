"""The admin page: who may see it, what it shows, and that it looks like the admin."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from django_sqla_pool import pool_stats
from django_sqla_pool.core import registry
from django_sqla_pool.observe.chart import chart
from django_sqla_pool.observe.history import Sample

from . import dialect
from .conftest import backend_pid

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/django_sqla_pool/poolstats/"


class Stats(HTMLParser):
    """Collects ``{(pool name or alias, data-stat): text}`` from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self._scope: list[str] = []
        self._depth: list[int] = []
        self._open: tuple[str, str] | None = None
        self._level = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("section", "div"):
            self._level += 1
            scope = attributes.get("data-pool") or attributes.get("data-alias")
            if scope:
                self._scope.append(scope)
                self._depth.append(self._level)
        if attributes.get("data-stat") and self._scope:
            self._open = (self._scope[-1], attributes["data-stat"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("section", "div"):
            if self._depth and self._depth[-1] == self._level:
                self._depth.pop()
                self._scope.pop()
            self._level -= 1

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.values[self._open] = data.strip()
            self._open = None


def stats_on_page(html: str) -> dict[tuple[str, str], str]:
    parser = Stats()
    parser.feed(html)
    return parser.values


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("staff", password="pw", is_staff=True)


@pytest.fixture
def permitted(staff: Any) -> Any:
    staff.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="django_sqla_pool", codename="view_poolstats"
        )
    )
    return staff


def test_anonymous_users_are_sent_to_the_login_page(client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={URL}"


def test_staff_without_the_permission_get_403(client, staff) -> None:
    client.force_login(staff)
    assert client.get(URL).status_code == 403
    assert "django_sqla_pool" not in client.get("/admin/").content.decode()


def test_non_staff_with_the_permission_are_sent_to_the_login_page(client, permitted) -> None:
    permitted.is_staff = False
    permitted.save()
    client.force_login(permitted)
    assert client.get(URL).status_code == 302


def test_permission_exists_after_migrate_and_no_table_was_created(server) -> None:
    codenames = set(
        Permission.objects.filter(content_type__app_label="django_sqla_pool").values_list(
            "codename", flat=True
        )
    )
    assert codenames == {"view_poolstats"}
    with connection.cursor() as cursor:
        cursor.execute(dialect.TABLE_MISSING_SQL, ["django_sqla_pool_poolstats"])
        assert bool(cursor.fetchone()[0]) is True


def test_admin_index_links_to_the_page_in_its_own_app(admin_client) -> None:
    html = admin_client.get("/admin/").content.decode()
    assert "Connection pool" in html
    assert f'href="{URL}"' in html
    assert reverse("admin:django_sqla_pool_poolstats_changelist") == URL


def test_permitted_staff_see_numbers_that_match_the_stats_api(
    client, permitted, make_wrapper
) -> None:
    db = make_wrapper("adminprobe", pool_size=4, max_overflow=2)
    for _ in range(3):
        backend_pid(db)
        db.close()
    backend_pid(db)  # one checked out while the page renders
    client.force_login(permitted)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    values = stats_on_page(html)
    [pool] = pool_stats("adminprobe")["pools"]
    name = pool["name"]
    for section in ("gauges", "counters", "timings"):
        for key, value in pool[section].items():
            if isinstance(value, dict):
                for sub, number in value.items():
                    assert values[name, f"{section}.{key}.{sub}"] == str(number)
            else:
                assert values[name, f"{section}.{key}"] == str(value), key
    assert values[name, "counters.checkouts"] == "4"
    assert values[name, "gauges.checked_out"] == "1"
    assert values[name, "gauges.pool_size"] == "4"
    # The default alias: configuration, and the server's headroom.
    assert values["default", "config.pool_size"] == str(
        connection.settings_dict["OPTIONS"]["pool_size"]
    )
    assert int(values["default", "server.headroom"]) > 0
    assert 'data-process="' in html and "(this process)" in html
    assert "<svg" in html and 'class="sqlapool-chart"' in html


def test_page_looks_native_and_refreshes_itself(admin_client) -> None:
    response = admin_client.get(URL)
    html = response.content.decode()
    assert response.templates[0].name == "django_sqla_pool/poolstats.html"
    assert "admin/base_site.html" in [t.name for t in response.templates]
    assert '<div class="breadcrumbs">' in html and 'href="/admin/django_sqla_pool/"' in html
    assert 'id="nav-sidebar"' in html  # each_context(): the admin's sidebar
    assert "var(--" in html  # colours from the admin's variables: dark mode works
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "http-equiv" not in admin_client.get(URL + "?refresh=0").content.decode()


@pytest.mark.postgresql_only("sets a password that trust authentication ignores")
def test_page_never_shows_the_database_password(admin_client) -> None:
    password = "admin-page-pw-must-not-show-51b2"
    connection.close()
    connection.settings_dict["PASSWORD"] = password  # trust auth: accepted and ignored
    try:
        html = admin_client.get(URL).content.decode()
        assert password not in html
    finally:
        connection.close()
        connection.settings_dict["PASSWORD"] = ""
        registry.close_pools("default")


def test_chart_draws_utilisation_waiting_and_timeouts() -> None:
    now = 10_000.0
    samples = [
        # time, checked_out, capacity, waiting, checkouts, timeouts, wait_ms_total
        Sample(now - 60, 0, 10, 0, 1, 0, 0.0),
        Sample(now - 30, 5, 10, 2, 5, 0, 1.0),
        Sample(now, 10, 10, 4, 9, 1, 9.0),
        Sample(now - 3600, 10, 10, 0, 0, 0, 0.0),
    ]
    drawn = chart(sorted(samples), now, span=600)
    assert drawn["samples"] == 3 and drawn["enough"]
    ys = [float(point.split(",")[1]) for point in drawn["utilisation"].split()]
    assert ys == [drawn["bottom"], (drawn["top"] + drawn["bottom"]) / 2, drawn["top"]]
    xs = [float(point.split(",")[0]) for point in drawn["utilisation"].split()]
    assert xs[-1] == drawn["right"] and xs[0] < xs[1] < xs[2]
    assert drawn["max_waiting"] == 4
    assert drawn["timeouts"] == [drawn["right"]]
    assert [t["label"] for t in drawn["x_ticks"]][-1] == "now"


def test_page_shows_the_sizing_advice_and_the_room_on_the_server(admin_client) -> None:
    connection.close()
    registry.close_pools("default")  # a new pool: too young to advise on (MIN_SPAN_S)
    html = admin_client.get(URL).content.decode()
    values = stats_on_page(html)
    assert values["default", "advice.current"].startswith("pool_size 5 + max_overflow 5 = 10")
    assert values["default", "advice.recommended"].startswith("none yet: too little data")
    with connection.cursor() as cursor:
        cursor.execute(dialect.AVAILABLE_CONNECTIONS_SQL)
        available = cursor.fetchone()[0]
    assert 0 < int(values["default", "advice.room"]) <= available
    assert 'data-fits="no"' in html and "<s>2560</s>" in html  # 32 workers x 8 hosts x 10


def test_heading_and_breadcrumb_give_the_page_one_name(admin_client) -> None:
    import re

    html = admin_client.get(URL).content.decode()
    [heading] = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.DOTALL)
    breadcrumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.DOTALL)
    assert breadcrumbs is not None
    last = breadcrumbs.group(1).split("&rsaquo;")[-1].strip()
    assert heading.strip() == last == "Connection pool stats"
    assert "<title>Connection pool stats |" in html


def test_a_pool_that_cannot_connect_is_not_shown_as_ok(admin_client) -> None:
    from django_sqla_pool import PoolConnectError
    from django_sqla_pool.backends.postgresql.base import DatabaseWrapper

    dead = DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}, alias="down"
    )
    try:
        with pytest.raises(PoolConnectError):
            dead.ensure_connection()
        html = admin_client.get(URL).content.decode()
    finally:
        registry.close_pools("down")
    [pool] = [part for part in html.split('<div class="pool"')[1:] if "down:" in part[:200]]
    assert '<span data-status class="status-bad">(cannot connect: connect_errors)</span>' in pool
    assert 'data-problem="connect_errors"' in html
