"""The PostgreSQL family: psycopg 3 or psycopg2 (as Django chose), libpq, pg_stat_activity."""

from __future__ import annotations

from typing import Any

from ..family import Family
from ..settings import PoolSettings
from . import activity, driver, params, server_settings, transient


def _pool_name(alias: str, conn_params: dict[str, Any]) -> str:
    host = conn_params.get("host") or "localhost"
    port = conn_params.get("port") or 5432
    user = conn_params.get("user") or ""
    dbname = conn_params.get("dbname") or ""
    return f"{alias}:{user}@{host}:{port}/{dbname}"


def _discard(conn: Any, settings: PoolSettings, where: str) -> None:
    # DISCARD ALL needs no open transaction, so roll back first (free when idle).
    conn.rollback()
    driver.execute_outside_transaction(conn, "DISCARD ALL")
    if settings.server_settings_mode == "set":  # DISCARD ALL reset them
        server_settings.apply_and_verify(conn, settings, where)


POSTGRESQL = Family(
    name="postgresql",
    Error=driver.DriverError,
    query_canceled=driver.QueryCanceled,
    connect=driver.connect,
    prepare_params=params.prepare,
    pool_name=_pool_name,
    is_transient=transient.is_transient,
    explain_refusal=server_settings.explain_refusal,
    is_auth_failure=transient.is_auth_failure,
    server_address=driver.server_address,
    is_broken=driver.is_broken,
    backend_pid=driver.backend_pid,
    socket_watch=driver.SocketWatch,
    idle_and_open=driver.idle_and_open,
    ping=driver.ping,
    time_zone_is=driver.time_zone_is,
    is_failover_error=driver.is_failover_error,
    is_read_only=driver.is_read_only,
    verify_session=server_settings.apply_and_verify,
    discard=_discard,
    read_limits=activity.read_limits,
    read_backends=activity.read_backends,
    hostname=params.HOSTNAME,
    driver_options=params.DRIVER_OPTIONS,
)
