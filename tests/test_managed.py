"""Managed and highly available PostgreSQL: rotating credentials, failover, drain, jitter.

Against throwaway clusters of their own (port range 25455-25457): one with
password authentication, whose password the tests rotate with ALTER ROLE; and
servers made read-only with ``default_transaction_read_only`` and a reload, as
a switchover leaves the old primary.
"""

from __future__ import annotations

import datetime
import gc
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connections
from django.db.utils import DatabaseError

from django_sqla_pool import PoolConnectError, drain, pool_stats
from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.conf import parse_pool_settings
from django_sqla_pool.core import registry
from django_sqla_pool.core.errors import CredentialsError
from django_sqla_pool.observe import health

from .aliases import extra_aliases
from .throwaway import Cluster, wait_until

PASSWORD_PORT = 25455
READ_ONLY_PORT = 25456
OTHER_PORT = 25457


class Rotating:
    """A credentials provider: a new password at each call, set on the server first.

    ``rotate_every``: calls that return the same password before the next one
    (the provider's own cache). ``expires_in``: seconds until expires_at.
    """

    def __init__(self, cluster: Cluster, expires_in: float | None = None) -> None:
        self.cluster = cluster
        self.expires_in = expires_in
        self.calls = 0
        self.passwords: list[str] = []
        self.lock = threading.Lock()

    def new_password(self) -> str:
        password = f"s3cret-{len(self.passwords)}-{time.monotonic_ns()}"
        self.cluster.execute(f"ALTER ROLE postgres PASSWORD '{password}'")
        self.passwords.append(password)
        return password

    def __call__(self, alias: str) -> Any:
        with self.lock:
            self.calls += 1
            password = self.passwords[-1] if self.passwords else self.new_password()
        if self.expires_in is None:
            return password
        return {"password": password, "expires_at": time.time() + self.expires_in}


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[Cluster]:
    with Cluster(PASSWORD_PORT) as cluster:
        cluster.start(password="initial-password")
        yield cluster


@pytest.fixture(autouse=True)
def _unblocked(django_db_blocker: Any) -> Iterator[None]:
    # These tests use servers of their own (and no test data): no TestCase around them.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def aliases() -> Iterator[Any]:
    yield from extra_aliases()


def admin_page() -> str:
    """The admin page as a superuser sees it (an unsaved user: no test database needed)."""
    from django.contrib.admin import site
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from django_sqla_pool.models import PoolStats

    request = RequestFactory().get("/admin/django_sqla_pool/poolstats/")
    request.user = User(username="admin", is_staff=True, is_superuser=True, is_active=True)
    response = site._registry[PoolStats].changelist_view(request)
    return str(response.render().content.decode())


def managed_alias(add: Any, cluster: Cluster, alias: str, **options: Any) -> dict[str, Any]:
    """A DATABASES alias on ``cluster`` whose password comes from OPTIONS['credentials']."""
    entry = cluster.settings_dict(connections["default"].settings_dict, **options)
    entry["PASSWORD"] = ""  # only the provider knows it
    return add(alias, entry["OPTIONS"], **{k: v for k, v in entry.items() if k != "OPTIONS"})


def query(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    connections[alias].close()
    return pid


def alive(server: Any, pid: int) -> bool:
    return bool(server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone())


def run_threads(count: int, body: Any) -> list[Any]:
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(body())
        except Exception as error:
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# -- Settings ------------------------------------------------------------------


def provider_for_tests(alias: str) -> str:
    return "not-used"


def test_credentials_accepts_a_callable_or_its_dotted_path() -> None:
    path = f"{__name__}.provider_for_tests"
    from_path = parse_pool_settings("x", {"OPTIONS": {"credentials": path}})
    direct = parse_pool_settings("x", {"OPTIONS": {"credentials": provider_for_tests}})
    assert from_path.credentials is provider_for_tests and direct == from_path
    assert from_path.public()["credentials"] == path  # shown by name, never called


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("credentials", "no.such.module.provider", "cannot import it"),
        ("credentials", 42, "use a callable"),
        ("credentials", f"{__name__}.PASSWORD_PORT", "it names a int"),
        ("credentials_ttl", "0", "greater than 0"),
        ("credentials_ttl", "soon", "greater than 0"),
        ("pool_recycle_jitter", "0.6", "to 0.5"),
        ("pool_recycle_jitter", -0.1, "to 0.5"),
    ],
)
def test_a_wrong_managed_option_names_the_key_and_the_rule(key: str, value: Any, says: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_pool_settings("db", {"OPTIONS": {key: value}})
    assert f"['OPTIONS'][{key!r}] = {value!r} is invalid" in str(caught.value)
    assert says in str(caught.value)


# -- Rotating credentials ------------------------------------------------------


@pytest.mark.parametrize("expires_in", [None, 2.0, 600.0])
def test_rotation_keeps_every_request_working_with_one_pool(
    password_cluster: Cluster, aliases: Any, expires_in: float | None
) -> None:
    provider = Rotating(password_cluster, expires_in)
    managed_alias(aliases, password_cluster, "rotating", credentials=provider)
    first = query("rotating")
    # Hold the first connection while the password changes under it.
    held = connections["rotating"]
    held.ensure_connection()
    before = held.connection.info.backend_pid
    for _ in range(3):
        provider.new_password()  # rotation: the cached secret is now refused by the server
        results = run_threads(4, lambda: query("rotating"))
        assert all(isinstance(pid, int) for pid in results), results
        [pool] = registry.pools("rotating")
        pool.drain()  # the next round opens new connections: each must authenticate
    with held.cursor() as cursor:  # opened before every rotation, still working
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == before
    held.close()
    assert first and len(registry.pools("rotating")) == 1
    stats = pool_stats("rotating")["pools"][0]
    assert stats["credentials"]["errors"] == 0
    # Never more calls than physical connects (the cache holds across a round).
    assert provider.calls <= stats["counters"]["connections_opened"] + 3


def test_a_burst_of_concurrent_connects_calls_the_provider_once(
    password_cluster: Cluster, aliases: Any
) -> None:
    provider = Rotating(password_cluster, expires_in=600.0)
    managed_alias(aliases, password_cluster, "burst", credentials=provider, pool_size=20)
    barrier = threading.Barrier(20)

    def connect() -> int:
        barrier.wait(10)
        connections["burst"].ensure_connection()
        time.sleep(0.2)  # hold it: 20 connections open at once
        return query("burst")

    results = run_threads(20, connect)
    assert all(isinstance(pid, int) for pid in results), results
    assert pool_stats("burst")["pools"][0]["counters"]["connections_opened"] == 20
    assert provider.calls == 1


def test_the_secret_appears_in_no_output(
    password_cluster: Cluster, aliases: Any, caplog: Any, settings: Any
) -> None:
    settings.DJANGO_SQLA_POOL_STATS_TOKEN = "t" * 32
    provider = Rotating(password_cluster)
    managed_alias(aliases, password_cluster, "secret", credentials=provider)
    caplog.set_level(logging.DEBUG, logger="django_sqla_pool")
    query("secret")
    provider.new_password()
    registry.pools("secret")[0].drain()
    query("secret")  # a refused secret, a new one: both logged about
    out = io.StringIO()
    call_command("poolstats", "--database", "secret", stdout=out)
    call_command("poolstats", "--database", "secret", "--format", "json", stdout=out)
    seen = [
        out.getvalue(),
        caplog.text,
        json.dumps(pool_stats()),
        admin_page(),
        json.dumps([h.__dict__ for h in health.check(["secret"])], default=str),
    ]
    try:
        from prometheus_client import CollectorRegistry, generate_latest

        from django_sqla_pool.contrib.prometheus import PoolCollector

        metrics = CollectorRegistry()
        metrics.register(PoolCollector())
        seen.append(generate_latest(metrics).decode())
    except ImportError:
        pass
    assert "credentials refused" in caplog.text
    assert len(provider.passwords) == 2
    for password in provider.passwords:
        assert not [text for text in seen if password in text]


class Throttled(Exception):
    transient = True


def test_a_provider_that_raises_names_the_alias_and_the_provider(
    password_cluster: Cluster, aliases: Any
) -> None:
    def broken(alias: str) -> str:
        raise RuntimeError("token endpoint said no")

    managed_alias(aliases, password_cluster, "broken", credentials=broken)
    with pytest.raises(PoolConnectError) as caught:
        query("broken")
    message = str(caught.value)
    assert "credentials provider" in message and "broken" in message
    assert "'broken'" in message and "token endpoint said no" in message
    assert pool_stats("broken")["pools"][0]["counters"]["connect_errors"] == 1


def test_a_transient_provider_failure_is_retried_within_connect_grace(
    password_cluster: Cluster, aliases: Any
) -> None:
    calls = []
    password = Rotating(password_cluster).new_password()

    def flaky(alias: str) -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise Throttled("rate exceeded")
        return password

    managed_alias(aliases, password_cluster, "flaky", credentials=flaky, connect_grace=5)
    assert query("flaky") > 0
    assert len(calls) == 3
    stats = pool_stats("flaky")["pools"][0]
    assert stats["counters"]["server_waits"] == 1 and stats["credentials"]["errors"] == 2


def test_a_permanent_provider_failure_fails_at_once(
    password_cluster: Cluster, aliases: Any
) -> None:
    calls = []

    def wrong(alias: str) -> dict[str, Any]:
        calls.append(alias)
        return {"password": "x", "expires_at": datetime.datetime(2030, 1, 1)}  # naive

    managed_alias(aliases, password_cluster, "naive", credentials=wrong, connect_grace=5)
    started = time.monotonic()
    with pytest.raises(CredentialsError, match="naive datetime"):
        query("naive")
    assert time.monotonic() - started < 1 and calls == ["naive"]


def test_get_connection_params_override_rotation_keeps_one_pool(
    password_cluster: Cluster, aliases: Any
) -> None:
    # The usual recipe before OPTIONS["credentials"]: a subclass that puts a fresh
    # token in get_connection_params(). Keyed without the password, it is one pool.
    provider = Rotating(password_cluster)

    class TokenWrapper(DatabaseWrapper):
        def get_connection_params(self) -> dict[str, Any]:
            return {**super().get_connection_params(), "password": provider("tokens")}

    entry = managed_alias(aliases, password_cluster, "tokens")
    wrapper = TokenWrapper(entry, alias="tokens")
    try:
        for _ in range(3):
            wrapper.ensure_connection()
            wrapper.close()
            provider.new_password()
            registry.pools("tokens")[0].drain()
        assert len(registry.pools("tokens")) == 1
    finally:
        wrapper.close()


# -- Failover to a read-only server --------------------------------------------


def read_only_setting(cluster: Cluster) -> str:
    return str(cluster.execute("SHOW default_transaction_read_only")[0][0])


def set_read_only(cluster: Cluster, on: bool) -> None:
    value = "on" if on else "off"
    cluster.execute(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
    cluster.execute("SELECT pg_reload_conf()")


def write(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")


@pytest.fixture(scope="module")
def flipping_cluster() -> Iterator[Cluster]:
    with Cluster(READ_ONLY_PORT) as cluster:
        cluster.start()
        yield cluster


def test_a_read_only_server_replaces_every_older_connection_once(
    flipping_cluster: Cluster, aliases: Any, caplog: Any
) -> None:
    add = aliases
    add("flip", {}, **{k: v for k, v in flipping_cluster.settings_dict({}).items()})
    others = run_threads(3, lambda: query("flip"))  # three idle connections in the pool
    assert len(set(others)) >= 1
    write("flip")
    set_read_only(flipping_cluster, True)
    try:
        wait_until(lambda: read_only_setting(flipping_cluster) == "on")
        # The write in flight fails: no silent retry.
        with caplog.at_level(logging.WARNING, "django_sqla_pool"), pytest.raises(DatabaseError):
            for _ in range(50):  # until this session has seen the reload
                write("flip")
                connections["flip"].close()
                time.sleep(0.05)
        connections["flip"].close()
        counters = pool_stats("flip")["pools"][0]["counters"]
        assert counters["failovers"] == 1
        assert counters["invalidations"]["failover"] >= 1
        assert "server refuses writes" in caplog.text
        # Health sees a read-only server: degraded, not ok.
        [probe] = health.check(["flip"])
        assert probe.status == health.DEGRADED and probe.summary == "read-only server"
    finally:
        set_read_only(flipping_cluster, False)
    wait_until(
        lambda: flipping_cluster.execute("SHOW default_transaction_read_only")[0][0] == "off"
    )
    deadline = time.monotonic() + 5
    while True:  # writable again: new connections write, without a restart
        try:
            write("flip")
            break
        except DatabaseError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        finally:
            connections["flip"].close()


def test_a_read_only_transaction_of_the_application_is_not_a_failover(
    flipping_cluster: Cluster, aliases: Any
) -> None:
    aliases("own", {}, **{k: v for k, v in flipping_cluster.settings_dict({}).items()})
    own = connections["own"]
    with pytest.raises(DatabaseError, match="read-only transaction"), own.cursor() as cursor:
        cursor.execute(
            "BEGIN READ ONLY; CREATE TEMP TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)"
        )
    connections["own"].close()
    assert pool_stats("own")["pools"][0]["counters"]["failovers"] == 0


@pytest.mark.parametrize(
    ("window", "most_failed"),
    [
        # Used within pool_pre_ping_window: only the socket is checked, so the first
        # write on the old writer's session fails (and replaces every older one).
        (1.0, 1),
        # Pinged: the ping's answer carries the server's new read-only state, so the
        # pool replaces the connection before any write is sent to it.
        (0, 0),
    ],
)
def test_two_hosts_with_target_session_attrs_follow_the_writer(
    flipping_cluster: Cluster, aliases: Any, window: float, most_failed: int
) -> None:
    with Cluster(OTHER_PORT) as standby:
        standby.start()
        set_read_only(standby, True)  # not -c on the command line: ALTER SYSTEM must win
        entry = flipping_cluster.settings_dict(
            {}, target_session_attrs="read-write", pool_pre_ping_window=window
        )
        entry["HOST"] = "127.0.0.1,127.0.0.1"
        entry["PORT"] = f"{standby.port},{flipping_cluster.port}"
        aliases("pair", entry["OPTIONS"], **{k: v for k, v in entry.items() if k != "OPTIONS"})
        write("pair")
        connections["pair"].close()
        assert pool_stats("pair")["pools"][0]["servers"] == {
            f"127.0.0.1:{flipping_cluster.port}": 1
        }
        # The switchover: the writer becomes read-only, the other one writable.
        set_read_only(flipping_cluster, True)
        set_read_only(standby, False)
        deadline = time.monotonic() + 5
        failed = 0
        while True:
            try:
                write("pair")
                break
            except DatabaseError:
                failed += 1
                assert time.monotonic() < deadline, "writes did not recover"
                time.sleep(0.05)
            finally:
                connections["pair"].close()
        set_read_only(flipping_cluster, False)
        assert failed <= most_failed
        assert pool_stats("pair")["pools"][0]["counters"]["failovers"] == 1
        assert pool_stats("pair")["pools"][0]["servers"] == {f"127.0.0.1:{standby.port}": 1}
        out = io.StringIO()
        call_command("poolstats", "--database", "pair", stdout=out)
        assert f"connected to 127.0.0.1:{standby.port} x1" in out.getvalue()


# -- Drain -----------------------------------------------------------------------


def test_drain_closes_idle_connections_now_and_busy_ones_when_returned(
    make_wrapper: Any, server: Any
) -> None:
    busy, idle = make_wrapper("drained"), make_wrapper("drained")
    busy.ensure_connection()
    idle.ensure_connection()
    busy_pid, idle_pid = busy.connection.info.backend_pid, idle.connection.info.backend_pid
    idle.close()

    closed = registry.drain("drained")
    assert closed == {registry.pools("drained")[0].name: 1}
    wait_until(lambda: not alive(server, idle_pid), what="the idle connection closed")
    with busy.cursor() as cursor:  # the request in flight goes on
        cursor.execute("SELECT 1")
    assert alive(server, busy_pid)
    busy.close()
    wait_until(lambda: not alive(server, busy_pid), what="the busy connection closed when returned")
    busy.ensure_connection()  # the next checkout opens a new one
    assert busy.connection.info.backend_pid not in (busy_pid, idle_pid)
    counters = pool_stats("drained")["pools"][0]["counters"]
    assert counters["invalidations"]["drained"] == 2


def test_drain_refuses_an_alias_that_is_not_pooled() -> None:
    with pytest.raises(ImproperlyConfigured, match="does not use a django_sqla_pool"):
        drain("nope")


def test_poolstats_drain_asks_every_worker_sharing_the_stats_dir(
    aliases: Any, settings: Any, tmp_path: Any
) -> None:
    from django_sqla_pool import operations

    aliases("fleetdrain")
    query("fleetdrain")  # one idle connection in this process's pool
    [pool] = registry.pools("fleetdrain")
    # This process's own sampler thread watches the stats dir too: it must not act
    # on the request this test makes there (the part below plays the other worker).
    operations._seen[str(tmp_path)] = float("inf")
    settings.DJANGO_SQLA_POOL_STATS_DIR = str(tmp_path)
    out = io.StringIO()
    call_command("poolstats", "--drain", "--database", "fleetdrain", stdout=out)
    assert f"drained alias 'fleetdrain' in this process (pid {os.getpid()}): " in out.getvalue()
    assert f"asked every process sharing {tmp_path}" in out.getvalue()
    assert (tmp_path / operations.DRAIN_REQUEST).exists()
    assert pool.stats.invalidations["drained"] == 1
    # Another worker, as its sampler thread does once a second (a directory of its
    # own here, so that this process's own sampler thread does not take the request).
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    query("fleetdrain")
    assert operations.follow_drain_requests(fleet) is None  # first look: nothing for it
    operations.request_drain(fleet, "fleetdrain")
    assert operations.follow_drain_requests(fleet) == {pool.name: 1}
    assert operations.follow_drain_requests(fleet) is None  # once per request
    assert pool.stats.invalidations["drained"] == 2


# -- Lifetime jitter ---------------------------------------------------------------


def test_a_fleet_that_started_together_recycles_over_a_quarter_of_the_lifetime(
    make_wrapper: Any,
) -> None:
    # Ten "processes" (pools) of five connections each, all opened at once.
    expiries: list[float] = []
    for process in range(10):
        settings = parse_pool_settings("jitter", {"OPTIONS": {"pool_recycle": 100}})
        pool = registry.get_pool(
            f"jitter{process}",
            make_wrapper(f"jitter{process}").get_connection_params(),
            settings,
            DatabaseWrapper.pool_family,
        )
        records = [pool.checkout() for _ in range(5)]
        expiries += [r.info["expires"] - r.info["born"] for r in records]
        for record in records:
            pool.checkin(record)
    assert all(75 <= lifetime <= 100 for lifetime in expiries)
    assert max(expiries) - min(expiries) > 15  # spread over most of the 25 s window
    spread_before = 100 * (0.975 - 0.95)  # the old fixed 2.5-5 %: all within 2.5 s
    assert max(expiries) - min(expiries) > 4 * spread_before


# -- The garbage-collection hook on a retired pool -----------------------------------


def test_a_connection_dropped_with_its_wrapper_after_the_pool_retired_is_closed(
    server: Any,
) -> None:
    settings_dict = dict(connections["default"].settings_dict)

    def forgotten_connection() -> tuple[Any, int]:
        wrapper = DatabaseWrapper(settings_dict, alias="orphan")
        wrapper.ensure_connection()
        [pool] = registry.pools("orphan")
        registry.close_pools("orphan")  # retired with the connection out (rotation, drain)
        assert pool.retired and len(pool.held) == 1
        return pool, wrapper.connection.info.backend_pid  # the wrapper is dropped here

    pool, pid = forgotten_connection()
    gc.collect()  # the finalizer hands the record to the retired pool
    wait_until(lambda: not pool.held, timeout=15, what="the orphan returned")
    wait_until(
        lambda: (
            not server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        ),
        what="the orphan's server connection closed",
    )
