"""The pool settings: one frozen dataclass, one function that parses and validates them.

Every default lives here. The same :func:`parse_pool_settings` raises at first
connection and backs the system check (``checks.py``), so a setting that is
wrong fails the same way in both places.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: OPTIONS keys that configure the pool and are removed before the driver sees them.
POOL_KEYS = (
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "pool_pre_ping",
    "pool_pre_ping_window",
    "pool_use_lifo",
    "pool_reset_on_return",
    "leak_detection_threshold",
)
#: OPTIONS keys that become PostgreSQL settings sent in the startup packet.
SERVER_KEYS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
OUR_KEYS = POOL_KEYS + SERVER_KEYS

#: Marks our connections' application_name: ``[prefix ]sqlapool:<alias>:<host>:<pid>``.
APP_NAME_MARK = "sqlapool"

RESET_CHOICES = ("rollback", "commit", "discard", "none")

# Keys that libpq, psycopg or Django's backend understand: never "did you mean"-ed.
_PASS_THROUGH = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslnegotiation",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "min_protocol_version",
        "max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
        "isolation_level",
        "assume_role",
        "server_side_binding",
        "prepare_threshold",
        "cursor_factory",
        "context",
        "autocommit",
        "row_factory",
    ]
)

_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


@dataclass(frozen=True)
class PoolSettings:
    """Validated pool settings of one database alias (see the README's options table)."""

    #: Connections kept open in the pool.
    pool_size: int = 5
    #: Extra connections opened under load and closed when returned.
    max_overflow: int = 10
    #: Seconds a request waits for a free connection before PoolTimeout.
    pool_timeout: float = 30.0
    #: Seconds after which a connection is replaced at checkout; None disables.
    pool_recycle: float | None = None
    #: Check that a connection is alive before handing it out.
    pool_pre_ping: bool = True
    #: Connections returned less than this many seconds ago skip the ping round trip.
    pool_pre_ping_window: float = 1.0
    #: Hand out the most recently returned connection first.
    pool_use_lifo: bool = False
    #: What happens to a connection when it is returned.
    pool_reset_on_return: str = "rollback"
    #: Seconds after which a connection still checked out is reported; None disables.
    leak_detection_threshold: float | None = None
    #: PostgreSQL settings in milliseconds, sent at connect time; None keeps the server's.
    statement_timeout: int | None = None
    lock_timeout: int | None = None
    idle_in_transaction_session_timeout: int | None = None

    @property
    def max_connections(self) -> int:
        return self.pool_size + self.max_overflow

    def server_options(self) -> str:
        """The ``-c name=value`` flags for libpq's ``options`` parameter."""
        return " ".join(
            f"-c {key}={getattr(self, key)}"
            for key in SERVER_KEYS
            if getattr(self, key) is not None
        )


_DEFAULTS = PoolSettings()


class InvalidPoolSetting(ImproperlyConfigured):
    """A DATABASES entry the pool cannot work with; ``check_id`` is its system check id."""

    def __init__(self, message: str, check_id: str = "django_sqla_pool.E001") -> None:
        super().__init__(message)
        self.check_id = check_id


def _fail(alias: str, key: str, value: Any, rule: str) -> InvalidPoolSetting:
    return InvalidPoolSetting(
        f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] = {value!r} is invalid: {rule}."
    )


def _as_number(
    alias: str, key: str, value: Any, kind: type, *, minimum: float, allow_none: bool, rule: str
) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        if allow_none:
            return None
        raise _fail(alias, key, value, rule)
    if isinstance(value, bool):
        raise _fail(alias, key, value, rule)
    try:
        number = kind(value.strip()) if isinstance(value, str) else kind(value)
    except (TypeError, ValueError):
        raise _fail(alias, key, value, rule) from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise _fail(alias, key, value, rule)
    if number < minimum:
        raise _fail(alias, key, value, rule)
    return number


def _as_bool(alias: str, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _fail(alias, key, value, "use true or false (strings like 'true', '0', 'off' work too)")


def _coerce(alias: str, key: str, value: Any) -> Any:
    if key in ("pool_size",):
        return _as_number(
            alias,
            key,
            value,
            int,
            minimum=1,
            allow_none=False,
            rule="use a whole number of connections, 1 or more",
        )
    if key == "max_overflow":
        return _as_number(
            alias,
            key,
            value,
            int,
            minimum=0,
            allow_none=False,
            rule="use a whole number of extra connections, 0 or more",
        )
    if key == "pool_timeout":
        number = _as_number(
            alias,
            key,
            value,
            float,
            minimum=0,
            allow_none=False,
            rule="use a number of seconds greater than 0",
        )
        if number <= 0:
            raise _fail(alias, key, value, "use a number of seconds greater than 0")
        return number
    if key == "pool_recycle":
        if value is not None and str(value).strip() == "-1":
            return None
        number = _as_number(
            alias,
            key,
            value,
            float,
            minimum=0,
            allow_none=True,
            rule="use a number of seconds greater than 0, or None to disable",
        )
        if number is not None and number <= 0:
            raise _fail(
                alias, key, value, "use a number of seconds greater than 0, or None to disable"
            )
        return number
    if key == "leak_detection_threshold":
        number = _as_number(
            alias,
            key,
            value,
            float,
            minimum=0,
            allow_none=True,
            rule="use a number of seconds greater than 0, or None to disable",
        )
        if number is not None and number <= 0:
            raise _fail(
                alias, key, value, "use a number of seconds greater than 0, or None to disable"
            )
        return number
    if key == "pool_pre_ping_window":
        return _as_number(
            alias,
            key,
            value,
            float,
            minimum=0,
            allow_none=False,
            rule="use a number of seconds, 0 or more",
        )
    if key in ("pool_pre_ping", "pool_use_lifo"):
        return _as_bool(alias, key, value)
    if key == "pool_reset_on_return":
        text = "none" if value in (None, False) else str(value).strip().lower()
        if text not in RESET_CHOICES:
            raise _fail(alias, key, value, "use one of " + ", ".join(map(repr, RESET_CHOICES)))
        return text
    # SERVER_KEYS: milliseconds, as in postgresql.conf.
    return _as_number(
        alias,
        key,
        value,
        int,
        minimum=0,
        allow_none=True,
        rule="use a whole number of milliseconds, 0 or more (0 disables)",
    )


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, OUR_KEYS, n=1, cutoff=0.75)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_pool_settings(alias: str, settings_dict: Mapping[str, Any]) -> PoolSettings:
    """Validate the pool part of one DATABASES entry and return it.

    Raise InvalidPoolSetting (an ImproperlyConfigured) naming the key, the
    value and the rule.
    """
    options = settings_dict.get("OPTIONS") or {}
    if "pool" in options:
        raise InvalidPoolSetting(
            f"DATABASES[{alias!r}]['OPTIONS']['pool'] turns on Django's own psycopg pool, "
            "which would sit under this package's pool. Remove it and configure "
            "django_sqla_pool with pool_size, max_overflow, pool_timeout, ... instead.",
            "django_sqla_pool.E003",
        )
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    if max_age is None or str(max_age).strip() not in ("0", "0.0"):
        raise InvalidPoolSetting(
            f"DATABASES[{alias!r}]['CONN_MAX_AGE'] = {max_age!r} is invalid with "
            "django_sqla_pool: set it to 0. A persistent per-thread connection would "
            "bypass the pool and leak under ASGI, where every request runs in a new thread.",
            "django_sqla_pool.E002",
        )
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key in OUR_KEYS:
            values[key] = _coerce(alias, key, value)
        elif key not in _PASS_THROUGH and (key.startswith("pool_") or _suggest(key)):
            raise InvalidPoolSetting(
                f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] is not an option of "
                f"django_sqla_pool.{_suggest(key)} Known options: {', '.join(OUR_KEYS)}."
            )
    return PoolSettings(**values)


def defaults() -> dict[str, Any]:
    """Every option and its default, for documentation and ``poolstats``."""
    return {f.name: getattr(_DEFAULTS, f.name) for f in fields(PoolSettings)}
