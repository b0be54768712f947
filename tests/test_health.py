"""The health view and the liveness view: statuses, bounds, who sees numbers, no secrets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from django_sqla_pool import access
from django_sqla_pool.core import registry
from django_sqla_pool.observe import health

from .aliases import CLOSED_PORT, extra_aliases, wait_for_probes
from .conftest import run_in_child
from .helpers import asgi_get

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "health-token-0123456789abcdef"
BOUND = 1.0  # DJANGO_SQLA_POOL_HEALTH_TIMEOUT in these tests
SILENT_PORT = 25442
PASSWORD = "pw-never-shown-7d1e"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.DJANGO_SQLA_POOL_STATS_TOKEN = TOKEN
    settings.DJANGO_SQLA_POOL_HEALTH_TIMEOUT = BOUND


@pytest.fixture
def add_alias() -> Iterator[Any]:
    yield from extra_aliases()


def get(client: Any, path: str = "/health/", token: str | None = None) -> tuple[int, Any, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start = time.monotonic()
    response = client.get(path, headers=headers)
    elapsed = time.monotonic() - start
    return response.status_code, json.loads(response.content), elapsed


def view_poolstats() -> Permission:
    return Permission.objects.get(
        content_type__app_label="django_sqla_pool", codename="view_poolstats"
    )


def pool_for(alias: str) -> Any:
    return health._pool_of(alias)


def test_a_healthy_pool_answers_200_ok_with_statuses_only_for_anyone(client) -> None:
    status, body, _ = get(client)
    assert status == 200
    assert body == {"status": "ok", "databases": {"default": {"status": "ok"}}}


def test_the_token_shows_the_numbers_and_a_wrong_one_does_not(client) -> None:
    assert get(client, token="wrong-token-0123456789abcdef")[1] == {
        "status": "ok",
        "databases": {"default": {"status": "ok"}},
    }
    status, body, _ = get(client, token=TOKEN)
    assert status == 200 and body["status"] == "ok"
    default = body["databases"]["default"]
    assert default["reason"] == "SELECT 1 answered"
    assert default["server"]["headroom"] > 0
    [pool] = [p for p in default["pools"] if p["name"] == pool_for("default").name]
    assert pool["gauges"]["checked_out"] == 0
    assert pool["counters"]["checkouts"] >= 1
    assert pool["saturation"] == []
    assert body["timeout_s"] == BOUND


def test_numbers_need_the_permission_when_logged_in(client, django_user_model) -> None:
    user = django_user_model.objects.create_user("watcher", password="pw")
    client.force_login(user)
    assert set(get(client)[1]["databases"]["default"]) == {"status"}
    user.user_permissions.add(view_poolstats())
    body = get(client)[1]
    assert body["databases"]["default"]["server"]["headroom"] > 0
    assert "pools" in body["databases"]["default"]


def test_the_token_is_compared_in_constant_time(client, monkeypatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = access.hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    get(client, token="nearly-" + TOKEN)
    get(client, token=TOKEN)
    assert calls == [(b"nearly-" + TOKEN.encode(), TOKEN.encode()), (TOKEN.encode(),) * 2]


def test_no_token_configured_means_no_token_access(client, settings) -> None:
    settings.DJANGO_SQLA_POOL_STATS_TOKEN = ""
    assert set(get(client, token=TOKEN)[1]["databases"]["default"]) == {"status"}
    assert set(get(client, path="/health/", token=" ")[1]["databases"]["default"]) == {"status"}


def test_bad_settings_are_named_by_the_system_check(settings) -> None:
    settings.DJANGO_SQLA_POOL_STATS_TOKEN = "short"
    settings.DJANGO_SQLA_POOL_HEALTH_TIMEOUT = "soon"
    messages = [m for m in run_checks() if m.id == "django_sqla_pool.E004"]
    assert len(messages) == 2
    text = " ".join(m.msg for m in messages)
    assert "DJANGO_SQLA_POOL_STATS_TOKEN" in text and "at least 16 characters" in text
    assert "short" not in text  # a token, even a bad one, is never printed
    assert "DJANGO_SQLA_POOL_HEALTH_TIMEOUT = 'soon'" in text
    with pytest.raises(ImproperlyConfigured, match="HEALTH_TIMEOUT"):
        health.configured_timeout()
    settings.DJANGO_SQLA_POOL_HEALTH_TIMEOUT = "2.5"  # from the environment: a string
    assert health.configured_timeout() == 2.5


def test_a_server_that_is_down_gives_503_within_the_bound(client, add_alias) -> None:
    add_alias(
        "gone",
        {"pool_timeout": 60, "connect_timeout": 30},
        PORT=CLOSED_PORT,
        HOST="127.0.0.1",
        PASSWORD=PASSWORD,
    )
    status, body, elapsed = get(client)
    assert status == 503
    assert body == {
        "status": "down",
        "databases": {"default": {"status": "ok"}, "gone": {"status": "down"}},
    }
    # Bounded by the health timeout, not by pool_timeout (60 s) or connect_timeout (30 s).
    assert elapsed < BOUND + 5
    status, body, _ = get(client, token=TOKEN)
    assert status == 503
    gone = body["databases"]["gone"]
    assert gone["reason"].startswith("cannot connect") and str(CLOSED_PORT) in gone["reason"]
    assert gone["server"] is None
    assert PASSWORD not in json.dumps(body) and "postgres://" not in json.dumps(body)


def test_a_silent_server_gives_503_and_never_more_than_one_probe_connection(
    client, add_alias, settings
) -> None:
    # libpq waits at least 2 s (its smallest connect_timeout) for a server that
    # accepts TCP connections (the kernel does, from the backlog) and never
    # answers: the probe is still stuck when a request bounded at 0.5 s returns.
    settings.DJANGO_SQLA_POOL_HEALTH_TIMEOUT = 0.5
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", SILENT_PORT))
    listener.listen(16)
    try:
        # Over TCP even when the suite's server listens on a socket directory
        # (the embedded one puts it in OPTIONS["host"]).
        add_alias(
            "silent",
            {"connect_timeout": 20, "pool_timeout": 60, "host": "127.0.0.1"},
            HOST="127.0.0.1",
            PORT=SILENT_PORT,
        )
        status, body, elapsed = get(client, token=TOKEN)
        assert status == 503 and body["databases"]["silent"]["status"] == "down"
        assert body["databases"]["silent"]["reason"].startswith("no answer: no connection after")
        assert elapsed < 0.5 + 5
        # A second request reports the probe still stuck instead of starting another:
        # it reports the time since the first request's probe started.
        status, body, _ = get(client, token=TOKEN)
        reason = body["databases"]["silent"]["reason"]
        assert status == 503 and reason.startswith("no answer: no connection after")
        assert float(reason.split(" after ")[1].split()[0]) > 0.75
        assert [p.alias for p in health._running].count("silent") == 1
        assert pool_for("silent").checkedout() <= 1
        # A forked child (gunicorn --preload) has no such thread: it must not wait for it.
        assert run_in_child(lambda: 0 if not health._running else 1) == 0
    finally:
        listener.close()  # the stuck connection attempt fails, and the probe thread ends
    wait_for_probes("silent")
    assert pool_for("silent").checkedout() == 0


def test_an_exhausted_pool_is_degraded_not_hung_and_says_so(client, add_alias) -> None:
    add_alias("tiny", {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60})
    pool = pool_for("tiny")
    held = pool.checkout()  # as a request would hold it
    try:
        status, body, elapsed = get(client, token=TOKEN)
        assert status == 200
        tiny = body["databases"]["tiny"]
        assert tiny["status"] == "degraded" and body["status"] == "degraded"
        assert tiny["reason"].startswith("pool exhausted: the probe got no connection")
        assert "1 of 1 in use" in tiny["reason"]
        assert elapsed < BOUND + 5  # not pool_timeout (60 s)
        assert get(client)[1]["databases"]["tiny"] == {"status": "degraded"}
    finally:
        pool.checkin(held)
    # Free again, but a checkout timed out within the last minute: still degraded, and why.
    body = get(client, token=TOKEN)[1]
    assert body["databases"]["tiny"]["status"] == "degraded"
    assert body["databases"]["tiny"]["reason"] == "reachable but saturated (timeouts)"


def test_the_probe_takes_one_connection_and_returns_it(client) -> None:
    get(client)  # the pool exists and has an idle connection
    pool = pool_for("default")
    before = pool.stats.counters()
    status, _, _ = get(client)
    after = pool.stats.counters()
    assert status == 200
    assert after["checkouts"] - before["checkouts"] == 1
    assert after["checkins"] - before["checkins"] == 1
    assert after["connections_opened"] == before["connections_opened"]
    assert pool.checkedout() == 0


def test_the_request_returns_its_own_connection_before_probing(
    client, django_user_model, monkeypatch
) -> None:
    user = django_user_model.objects.create_user("one", password="pw")
    user.user_permissions.add(view_poolstats())
    client.force_login(user)
    connections["default"].close()
    # A pool of one connection: the session and permission queries take it;
    # the probe only gets it because the view handed it back first.
    monkeypatch.setitem(
        connections["default"].settings_dict,
        "OPTIONS",
        {**connections["default"].settings_dict["OPTIONS"], "pool_size": 1, "max_overflow": 0},
    )
    try:
        status, body, _ = get(client)
        assert status == 200 and body["databases"]["default"]["status"] == "ok"
        pool = pool_for("default")
        assert pool.settings.pool_size == 1
        assert pool.stats.counters()["connections_opened"] == 1
        assert pool.stats.counters()["timeouts"] == 0
    finally:
        registry.close_pools("default")  # the one-connection pool goes with this test


def test_head_is_allowed_and_post_is_not(client) -> None:
    assert client.head("/health/").status_code == 200
    assert client.post("/health/").status_code == 405


def test_responses_are_never_cached(client) -> None:
    response = client.get("/health/")
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_the_health_view_works_under_asgi() -> None:
    status, body = asgi_get("/health/")
    assert status == 200 and body == {"status": "ok", "databases": {"default": {"status": "ok"}}}
