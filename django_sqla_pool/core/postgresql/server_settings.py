"""The PostgreSQL settings a pool asks for (statement_timeout, ...): sent, then verified.

In ``server_settings_mode="startup"`` they ride in libpq's ``options``
startup parameter (no round trip); in ``"set"`` mode they are set with
``set_config()`` right after connecting. Either way every new connection
reads back what the server applied, in one round trip, so a pooler that
refuses or silently drops the startup parameter (PgBouncer, pgcat,
Odyssey, cloud proxies) is reported instead of leaving requests without
the timeouts they were configured with.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ServerSettingsError
from ..settings import PoolSettings
from . import driver

_UNITS_MS = {"": 1, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_SHOWN = re.compile(r"^\s*(\d+)\s*(ms|s|min|h|d)?\s*$")

_FIXES = (
    "Fixes: set them on the server side with ALTER ROLE <user> SET statement_timeout = ... "
    "(or ALTER DATABASE <db> SET ...), which applies through any pooler (then remove them "
    "from OPTIONS, or keep the same values there: the check passes when the server has "
    "them); or use the "
    "pooler's own limit (PgBouncer: query_timeout); or, behind a SESSION-mode pooler, "
    "set OPTIONS['server_settings_mode'] = 'set' to send them with SET after connecting. "
    "Behind a TRANSACTION-mode pooler a session SET does not stick to your connection, "
    "so 'set' does not work there. See docs/pgbouncer.md."
)


def _milliseconds(shown: str) -> int | None:
    """A time setting as the server shows it ('200ms', '5s', '0') in milliseconds."""
    match = _SHOWN.match(shown or "")
    if match is None:
        return None
    return int(match.group(1)) * _UNITS_MS[match.group(2) or ""]


def apply_and_verify(conn: Any, settings: PoolSettings, where: str) -> None:
    """Set (in "set" mode) and check the settings on a new connection: one round trip.

    Raises ServerSettingsError when the server does not have what was asked.
    Nothing is sent when no such setting is configured.
    """
    wanted = settings.server_values()
    if not wanted:
        return
    if settings.server_settings_mode == "set":
        columns = ", ".join(f"set_config('{key}', '{ms}', false)" for key, ms in wanted.items())
    else:
        columns = ", ".join(f"current_setting('{name}')" for name in wanted)
    row = driver.fetch_outside_transaction(conn, f"SELECT {columns}")
    shown = dict(zip(wanted, row, strict=True))
    wrong = {key: shown[key] for key in wanted if _milliseconds(str(shown[key])) != wanted[key]}
    if not wrong:
        return
    asked = ", ".join(f"{name}={wanted[name]} ms" for name in wrong)
    got = ", ".join(f"{name}={shown!r}" for name, shown in wrong.items())
    if settings.server_settings_mode == "set":
        cause = "with set_config() after connecting"
    else:
        cause = (
            "in libpq's 'options' startup parameter. Something between this process and "
            "PostgreSQL dropped the parameter: most likely a connection pooler such as "
            "PgBouncer with ignore_startup_parameters = options"
        )
    raise ServerSettingsError(
        f"django_sqla_pool: {where}: the server applied {got}, but {asked} was asked for "
        f"{cause}. " + _FIXES
    )


def explain_refusal(error: BaseException, params: dict[str, Any], where: str) -> str | None:
    """The message for a connect refused because of the 'options' startup parameter, if it was."""
    if "options" not in params or "unsupported startup parameter" not in str(error):
        return None
    return (
        f"django_sqla_pool: {where}: the server refused libpq's 'options' startup parameter "
        f"(options={params['options']!r}, which carries statement_timeout, lock_timeout or "
        "idle_in_transaction_session_timeout): a connection pooler such as PgBouncer is in "
        f"front of PostgreSQL and does not accept it ({driver_message(error)}). " + _FIXES
    )


def driver_message(error: BaseException) -> str:
    return " ".join(str(error).split())
