"""The MySQL/MariaDB family: mysqlclient (as Django's MySQL backend uses), the processlist."""

from __future__ import annotations

from typing import Any

from ..family import Family
from ..settings import PoolSettings
from . import activity, driver, options, params, session, transient


def _pool_name(alias: str, conn_params: dict[str, Any]) -> str:
    host = conn_params.get("unix_socket") or conn_params.get("host") or "localhost"
    port = conn_params.get("port") or 3306
    user = conn_params.get("user") or ""
    database = conn_params.get("database") or conn_params.get("db") or ""
    return f"{alias}:{user}@{host}:{port}/{database}"


def _connect(conn_params: dict[str, Any]) -> Any:
    return driver.connect(conn_params, params.alias_of(conn_params))


def _discard(conn: Any, settings: PoolSettings, where: str) -> None:
    session.reset_connection(conn, settings, where)


MYSQL = Family(
    name="mysql",
    Error=driver.DriverError,
    query_canceled=driver.QueryCanceled,
    connect=_connect,
    prepare_params=params.prepare,
    pool_name=_pool_name,
    is_transient=transient.is_transient,
    explain_refusal=transient.explain_refusal,
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
    verify_session=session.apply_and_verify,
    discard=_discard,
    read_limits=activity.read_limits,
    read_backends=activity.read_backends,
    hostname=params.HOSTNAME,
    product="MySQL/MariaDB",
    activity_source="information_schema.PROCESSLIST",
    driver_options=params.DRIVER_OPTIONS,
    refuse=options.refuse,
)
