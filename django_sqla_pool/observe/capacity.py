"""Capacity: what a deployment may open against what the server has room for.

``processes x (pool_size + max_overflow)``, summed over the pooled aliases
that use one server, is the most connections a deployment can hold there;
the server has ``max_connections`` minus its reserved slots minus what other
clients hold now. The database-tagged system check (``checks.py``, run by
``manage.py check --database default``) warns when the first exceeds the
second; ``advice.py`` prints the same arithmetic as a table.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from ..conf import InvalidPoolSetting, is_pooled, parse_pool_settings
from ..core.family import Family

#: The Django setting (or environment variable) with the number of processes,
#: on every host, that use these DATABASES.
PROCESSES_SETTING = "DJANGO_SQLA_POOL_PROCESSES"

W_OVER = "django_sqla_pool.W010"
W_UNREACHABLE = "django_sqla_pool.W011"
E_PROCESSES = "django_sqla_pool.E010"


@dataclass(frozen=True)
class Processes:
    """How many processes use these DATABASES, and where that number comes from."""

    count: int
    source: str


@dataclass(frozen=True)
class ServerBudget:
    """The server's connection slots, as seen now."""

    max_connections: int
    reserved: int  # superuser_reserved_connections + reserved_connections
    connections: int  # client connections open now
    pooled: int  # of which opened by this package's pools (any process)
    processes_seen: int  # distinct processes holding pooled connections now

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved

    @property
    def other(self) -> int:
        return self.connections - self.pooled

    @property
    def budget(self) -> int:
        """Slots this deployment's pools may use: available minus other clients' now."""
        return self.available - self.other


def _gunicorn_workers(args: str) -> str | None:
    words = shlex.split(args)
    for index, word in enumerate(words):
        if word in ("-w", "--workers") and index + 1 < len(words):
            return words[index + 1]
        match = re.fullmatch(r"(?:--workers=|-w)(\S+)", word)
        if match:
            return match[1]
    return None


def configured_processes() -> Processes | None:
    """The process count from the setting, WEB_CONCURRENCY or gunicorn's arguments; None if unknown.

    Raise ImproperlyConfigured naming the source when the value is not a
    whole number of processes, 1 or more.
    """
    candidates: list[tuple[Any, str]] = [
        (getattr(settings, PROCESSES_SETTING, None), f"settings.{PROCESSES_SETTING}"),
        (os.environ.get(PROCESSES_SETTING), f"the environment variable {PROCESSES_SETTING}"),
        (os.environ.get("WEB_CONCURRENCY"), "WEB_CONCURRENCY (one host)"),
    ]
    gunicorn_args = os.environ.get("GUNICORN_CMD_ARGS")
    if gunicorn_args:
        workers = _gunicorn_workers(gunicorn_args)
        candidates.append((workers, "GUNICORN_CMD_ARGS --workers (one host)"))
    for value, source in candidates:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            count = int(str(value).strip()) if not isinstance(value, bool) else 0
        except ValueError:
            count = 0
        if count < 1:
            raise ImproperlyConfigured(
                f"{source} = {value!r} is invalid: use a whole number of processes, 1 or more "
                f"(every process, on every host, that uses these DATABASES: web workers, "
                f"task workers, ...). Set {PROCESSES_SETTING} to the fleet's total."
            )
        return Processes(count, source)
    return None


def server_budget(connection: Any) -> ServerBudget:
    """Ask the server, through this Django connection, how many slots it has and who holds them."""
    family: Family = connection.pool_family
    with connection.cursor() as cursor:
        limits = family.read_limits(cursor)
        backends = family.read_backends(cursor)
    pooled = [b.mark for b in backends if b.mark is not None]
    return ServerBudget(
        max_connections=limits.max_connections,
        reserved=limits.superuser_reserved + limits.reserved,
        connections=len(backends),
        pooled=len(pooled),
        processes_seen=len({(host, pid) for _, host, pid in pooled}),
    )


def server_key(settings_dict: Mapping[str, Any]) -> tuple[str, str]:
    """Which server an alias uses: (host, port) as configured."""
    return (
        str(settings_dict.get("HOST") or "localhost"),
        str(settings_dict.get("PORT") or "5432"),
    )


def _connection(alias: str) -> Any:
    return connections[alias]


def capacity_messages(
    databases: Mapping[str, Mapping[str, Any]],
    aliases: Iterable[str],
    connection_for: Callable[[str], Any] = _connection,
    processes: Processes | None = None,
) -> list[CheckMessage]:
    """The capacity check for the servers of ``aliases``: a Warning per server that may overflow.

    ``processes``: the fleet's process count (default: ``configured_processes()``,
    else the processes seen holding pooled connections on the server, at least 1).
    """
    if processes is None:
        try:
            processes = configured_processes()
        except ImproperlyConfigured as error:
            return [Error(str(error), id=E_PROCESSES)]
    groups: dict[tuple[str, str], list[tuple[str, int, str]]] = {}
    for alias, settings_dict in databases.items():
        if not is_pooled(settings_dict):
            continue
        try:
            pool_settings = parse_pool_settings(alias, settings_dict)
        except InvalidPoolSetting:
            continue  # reported by check_pool_settings
        detail = f"{alias!r} {pool_settings.pool_size} + {pool_settings.max_overflow}"
        groups.setdefault(server_key(settings_dict), []).append(
            (alias, pool_settings.max_connections, detail)
        )
    messages: list[CheckMessage] = []
    wanted = set(aliases)
    for (host, port), members in groups.items():
        checked = [alias for alias, _, _ in members if alias in wanted]
        if not checked:
            continue
        connection = connection_for(checked[0])
        was_open = connection.connection is not None
        try:
            budget = server_budget(connection)
        except (DatabaseError, ImproperlyConfigured) as error:
            messages.append(
                Warning(
                    f"django_sqla_pool: cannot check the capacity of {host}:{port} through "
                    f"alias {checked[0]!r}: {error}".strip(),
                    hint="Run the check where the database is reachable.",
                    id=W_UNREACHABLE,
                )
            )
            continue
        finally:
            if not was_open:
                connection.close()  # back to the pool
        fleet = processes or Processes(
            max(1, budget.processes_seen), "processes holding pooled connections now"
        )
        per_process = sum(limit for _, limit, _ in members)
        demand = fleet.count * per_process
        if demand <= budget.budget:
            continue
        sizes = ", ".join(detail for _, _, detail in members)
        fits = max(0, budget.budget) // fleet.count
        messages.append(
            Warning(
                f"django_sqla_pool: {fleet.count} processes x {per_process} connections "
                f"(pool_size + max_overflow of {sizes}) = {demand} may be opened on "
                f"{host}:{port}, but the server has room for {budget.budget}: "
                f"max_connections {budget.max_connections} - {budget.reserved} reserved - "
                f"{budget.other} held by other clients now. Process count: {fleet.source}.",
                hint=(
                    f"At most {fits} connections per process fit ({budget.budget} // "
                    f"{fleet.count}). Lower pool_size + max_overflow, run fewer processes, "
                    "raise the server's max_connections or put PgBouncer in front; "
                    "`manage.py poolstats --advise` sizes the pool from observed load."
                ),
                id=W_OVER,
            )
        )
    return messages
