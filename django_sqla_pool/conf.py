"""Reading the pool settings from DATABASES: one function that parses and validates them.

The defaults live on the dataclass (``core/settings.py``, re-exported here as
``PoolSettings``). The same :func:`parse_pool_settings` raises at first
connection and backs the system check (``checks.py``), so a setting that is
wrong fails the same way in both places.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.utils import load_backend
from django.utils.module_loading import import_string

from .core.family import Family
from .core.settings import SERVER_KEYS, PoolSettings

#: The ENGINEs of this package: every DATABASES entry naming one of them is pooled.
ENGINES = (
    "django_sqla_pool.backends.postgresql",
    "django_sqla_pool.backends.postgis",
    "django_sqla_pool.backends.mysql",
)

#: Database-URL schemes of those ENGINEs (registered by ``django_sqla_pool.dburl``).
#: No underscore: urllib does not read a name with one as a scheme.
URL_SCHEMES = {
    "postgres-pool": "django_sqla_pool.backends.postgresql",
    "postgis-pool": "django_sqla_pool.backends.postgis",
    "mysql-pool": "django_sqla_pool.backends.mysql",
}


def is_pooled(settings_dict: Mapping[str, Any]) -> bool:
    """True when this DATABASES entry uses one of this package's ENGINEs."""
    return settings_dict.get("ENGINE") in ENGINES


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
    "connect_grace",
    "ping_timeout",
    "server_settings_mode",
    "pool_min_size",
    "pool_idle_timeout",
    "pool_recycle_jitter",
    "credentials",
    "credentials_ttl",
)
#: OPTIONS keys that become PostgreSQL settings sent in the startup packet.
OUR_KEYS = POOL_KEYS + SERVER_KEYS

RESET_CHOICES = ("rollback", "commit", "discard", "none")

#: How SERVER_KEYS reach the server: in the startup packet (no round trip;
#: refused or dropped by PgBouncer and other poolers), or with SET right
#: after connecting (one round trip; works behind a session-mode pooler).
SERVER_SETTINGS_MODES = ("startup", "set")

_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


def pool_option_off(value: Any) -> bool:
    """True when ``OPTIONS["pool"] = value`` leaves Django's own pool off.

    Django takes any false value as off (its tests set False to bypass its
    pool); an env file or URL gives strings, which Django would take as on,
    so "false", "0", "none", "off", "no" count as off here too.
    """
    if isinstance(value, str):
        return value.strip().lower() in _FALSE | {"none", ""}
    return not value


class InvalidPoolSetting(ImproperlyConfigured):
    """A DATABASES entry the pool cannot work with; ``check_id`` is its system check id."""

    def __init__(self, message: str, check_id: str = "django_sqla_pool.E001") -> None:
        super().__init__(message)
        self.check_id = check_id


def _fail(alias: str, key: str, value: Any, rule: str) -> InvalidPoolSetting:
    return InvalidPoolSetting(
        f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] = {value!r} is invalid: {rule}."
    )


@dataclass(frozen=True)
class _Number:
    """How one numeric option is read: its type, its lower bound, and the rule to quote."""

    kind: type
    minimum: float
    rule: str
    exclusive: bool = False  # the minimum itself is not allowed
    allow_none: bool = False
    maximum: float = math.inf


_SECONDS_OR_NONE = "use a number of seconds greater than 0, or None to disable"
_MILLISECONDS = (
    "use a whole number of milliseconds or a duration with a unit as in postgresql.conf "
    "(500ms, 30s, 2min, 1h; units us, ms, s, min, h, d), 0 or more (0 disables), "
    "or None to keep the server's setting"
)
_NUMBERS = {
    "pool_size": _Number(int, 1, "use a whole number of connections, 1 or more"),
    "max_overflow": _Number(int, 0, "use a whole number of extra connections, 0 or more"),
    "pool_timeout": _Number(float, 0, "use a number of seconds greater than 0", exclusive=True),
    "pool_recycle": _Number(
        float,
        0,
        "use a number of seconds greater than 0, or -1 or None to never recycle",
        exclusive=True,
        allow_none=True,
    ),
    "leak_detection_threshold": _Number(
        float, 0, _SECONDS_OR_NONE, exclusive=True, allow_none=True
    ),
    "pool_pre_ping_window": _Number(float, 0, "use a number of seconds, 0 or more"),
    "connect_grace": _Number(float, 0, "use a number of seconds, 0 or more (0 disables)"),
    "ping_timeout": _Number(float, 0, "use a number of seconds greater than 0", exclusive=True),
    "pool_min_size": _Number(int, 0, "use a whole number of connections, 0 or more"),
    "pool_idle_timeout": _Number(float, 0, _SECONDS_OR_NONE, exclusive=True, allow_none=True),
    "pool_recycle_jitter": _Number(
        float, 0, "use a fraction of pool_recycle from 0 (no spread) to 0.5", maximum=0.5
    ),
    "credentials_ttl": _Number(float, 0, "use a number of seconds greater than 0", exclusive=True),
    **{key: _Number(int, 0, _MILLISECONDS, allow_none=True) for key in SERVER_KEYS},
}

#: PostgreSQL's time units (postgresql.conf syntax, case-sensitive), in milliseconds.
_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_MAX_MILLISECONDS = 2**31 - 1  # the server refuses the connection above this
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)\s*")


def _as_milliseconds(alias: str, key: str, value: Any) -> Any:
    """A server timeout: milliseconds as a number, or a string with a PostgreSQL unit."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        milliseconds = _as_number(alias, key, value, _NUMBERS[key])
    else:
        number, unit = match.groups()
        if unit not in _TIME_UNITS:
            raise _fail(alias, key, value, _NUMBERS[key].rule)
        exact = float(number) * _TIME_UNITS[unit]
        milliseconds = int(exact + 0.5)  # PostgreSQL rounds to its base unit, ms
        if milliseconds == 0 and exact > 0:
            # Rounded to 0 it would disable the timeout instead of setting a tiny one.
            raise _fail(alias, key, value, "below 1 ms, which PostgreSQL would round to 0 (off)")
    if milliseconds is not None and milliseconds > _MAX_MILLISECONDS:
        limit = f"at most {_MAX_MILLISECONDS} ms (about 24.8 days), PostgreSQL's limit"
        raise _fail(alias, key, value, limit)
    return milliseconds


def _as_number(alias: str, key: str, value: Any, spec: _Number) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        if spec.allow_none:
            return None
        raise _fail(alias, key, value, spec.rule)
    if isinstance(value, bool) or (
        spec.kind is int and isinstance(value, float) and not value.is_integer()
    ):
        raise _fail(alias, key, value, spec.rule)
    try:
        number = spec.kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise _fail(alias, key, value, spec.rule) from None
    # float("nan") and float("inf") parse; NaN compares false with every bound
    # and an infinite time or size means nothing here (None disables).
    if not math.isfinite(number):
        raise _fail(alias, key, value, spec.rule)
    if number < spec.minimum or (spec.exclusive and number == spec.minimum):
        raise _fail(alias, key, value, spec.rule)
    if number > spec.maximum:
        raise _fail(alias, key, value, spec.rule)
    return number


def _as_provider(alias: str, key: str, value: Any) -> Any:
    """A callable, or the dotted path of one (a string from a URL or an env file)."""
    if value is None or callable(value):
        return value
    rule = (
        "use a callable that takes the alias and returns the password (or a mapping with "
        "'password' and optionally 'user', 'expires_at'), or its dotted path as a string"
    )
    if not isinstance(value, str) or not value.strip():
        raise _fail(alias, key, value, rule)
    try:
        provider = import_string(value.strip())
    except ImportError as error:
        raise _fail(alias, key, value, f"cannot import it ({error}); {rule}") from None
    if not callable(provider):
        raise _fail(alias, key, value, f"it names a {type(provider).__name__}; {rule}")
    return provider


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
    if key == "pool_recycle" and str(value).strip() == "-1":
        return None  # SQLAlchemy's spelling of "never"
    if key in SERVER_KEYS:
        return _as_milliseconds(alias, key, value)
    if key in _NUMBERS:
        return _as_number(alias, key, value, _NUMBERS[key])
    if key in ("pool_pre_ping", "pool_use_lifo"):
        return _as_bool(alias, key, value)
    if key == "credentials":
        return _as_provider(alias, key, value)
    if key == "server_settings_mode":
        text = str(value).strip().lower()
        if text not in SERVER_SETTINGS_MODES:
            rule = "use one of " + ", ".join(map(repr, SERVER_SETTINGS_MODES))
            raise _fail(alias, key, value, rule)
        return text
    # pool_reset_on_return
    text = "none" if value in (None, False) else str(value).strip().lower()
    if text not in RESET_CHOICES:
        raise _fail(alias, key, value, "use one of " + ", ".join(map(repr, RESET_CHOICES)))
    return text


def _family(settings_dict: Mapping[str, Any]) -> Family:
    """The database family of this entry's ENGINE (PostgreSQL's when it names none of ours).

    Read from the ENGINE's DatabaseWrapper class, found as Django finds it:
    each family says which OPTIONS its driver takes and which of the pool's
    it cannot honour, so this module needs no branch per family.
    """
    engine = settings_dict.get("ENGINE")
    backend = load_backend(engine if engine in ENGINES else ENGINES[0])
    family: Family = backend.DatabaseWrapper.pool_family
    return family


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, OUR_KEYS, n=1, cutoff=0.75)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_pool_settings(alias: str, settings_dict: Mapping[str, Any]) -> PoolSettings:
    """Validate the pool part of one DATABASES entry and return it.

    Raise InvalidPoolSetting (an ImproperlyConfigured) naming the key, the
    value and the rule.
    """
    options = settings_dict.get("OPTIONS") or {}
    if not pool_option_off(options.get("pool")):
        raise InvalidPoolSetting(
            f"DATABASES[{alias!r}]['OPTIONS']['pool'] = {options['pool']!r} turns on "
            "Django's own psycopg pool, which would sit under this package's pool. Remove "
            "it (or set it to False) and configure django_sqla_pool with pool_size, "
            "max_overflow, pool_timeout, ... instead.",
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
    family = _family(settings_dict)
    values: dict[str, Any] = {}
    for key, value in options.items():
        refused = family.refuse(key, value)
        if refused is not None:
            raise InvalidPoolSetting(f"DATABASES[{alias!r}]['OPTIONS'][{key!r}]: {refused}")
        if key in OUR_KEYS:
            values[key] = _coerce(alias, key, value)
        elif (
            key != "pool"  # Django's own pool: allowed only when off (see pool_option_off)
            and key not in family.driver_options
            and (key.startswith("pool_") or _suggest(key))
        ):
            raise InvalidPoolSetting(
                f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] is not an option of "
                f"django_sqla_pool.{_suggest(key)} Known options: {', '.join(OUR_KEYS)}."
            )
    pool_settings = PoolSettings(**values)
    if pool_settings.pool_min_size > pool_settings.max_connections:
        raise _fail(
            alias,
            "pool_min_size",
            options["pool_min_size"],
            f"at most pool_size + max_overflow ({pool_settings.pool_size} + "
            f"{pool_settings.max_overflow} = {pool_settings.max_connections}); lower it "
            "or raise pool_size",
        )
    return pool_settings


def validate_pooled_databases(databases: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise InvalidPoolSetting for the first DATABASES entry of our ENGINEs that is invalid.

    Run when Django starts (AppConfig.ready) so that a misconfigured worker
    refuses to boot instead of answering every request with an error.
    """
    for alias, settings_dict in databases.items():
        if is_pooled(settings_dict):
            parse_pool_settings(alias, settings_dict)


# -- The health view and the metrics endpoints: Django settings, not OPTIONS --

#: Seconds the health probe may take per alias: the wait for a connection and
#: SELECT 1 together. Never pool_timeout: a saturated pool must not hang it.
HEALTH_TIMEOUT_SETTING = "DJANGO_SQLA_POOL_HEALTH_TIMEOUT"
HEALTH_TIMEOUT = 2.0
#: Seconds a checkout timeout (PoolTimeout) keeps its alias "degraded".
HEALTH_WINDOW = 60.0
#: A shared secret that shows the numbers (health details, metrics) to a
#: caller that cannot log in: sent as ``Authorization: Bearer <token>``.
STATS_TOKEN_SETTING = "DJANGO_SQLA_POOL_STATS_TOKEN"
STATS_TOKEN_MIN_LENGTH = 16


def health_timeout(value: Any) -> float:
    """The probe's bound from the setting's value (None: the default), validated."""
    if value is None:
        return HEALTH_TIMEOUT
    rule = "use a number of seconds greater than 0 (it bounds each health probe)"
    if isinstance(value, bool):
        raise InvalidPoolSetting(
            f"{HEALTH_TIMEOUT_SETTING} = {value!r} is invalid: {rule}.", "django_sqla_pool.E004"
        )
    try:
        seconds = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidPoolSetting(
            f"{HEALTH_TIMEOUT_SETTING} = {value!r} is invalid: {rule}.", "django_sqla_pool.E004"
        ) from None
    if not seconds > 0 or seconds == math.inf:
        raise InvalidPoolSetting(
            f"{HEALTH_TIMEOUT_SETTING} = {value!r} is invalid: {rule}.", "django_sqla_pool.E004"
        )
    return seconds


def stats_token(value: Any) -> str | None:
    """The shared token from the setting's value; None or "" turn token access off."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value.strip()) < STATS_TOKEN_MIN_LENGTH:
        raise InvalidPoolSetting(
            f"{STATS_TOKEN_SETTING} is invalid: use a string of at least "
            f"{STATS_TOKEN_MIN_LENGTH} characters (for example from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
            "or None to allow only users with django_sqla_pool.view_poolstats.",
            "django_sqla_pool.E004",
        )
    return value.strip()
