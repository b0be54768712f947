"""The pool's OPTIONS that mean nothing on MySQL, refused with the reason."""

from __future__ import annotations

from typing import Any

from . import driver

_POSTGRESQL_ONLY = {
    "idle_in_transaction_session_timeout": (
        "PostgreSQL's idle_in_transaction_session_timeout has no MySQL/MariaDB counterpart "
        "(wait_timeout closes every idle connection, in a transaction or not). Remove it; "
        "leak_detection_threshold reports connections held too long"
    ),
    "server_settings_mode": (
        "it chooses how PostgreSQL settings reach the server; on MySQL/MariaDB "
        "statement_timeout and lock_timeout are always set with SET SESSION after "
        "connecting. Remove it"
    ),
}


def refuse(key: str, value: Any) -> str | None:
    """Why OPTIONS[key] = value cannot work on MySQL/MariaDB, or None."""
    if key in _POSTGRESQL_ONLY:
        return _POSTGRESQL_ONLY[key] + "."
    if (
        key == "pool_reset_on_return"
        and str(value).strip().lower() == "discard"
        and not hasattr(driver.Connection, "reset_connection")
    ):
        version = ".".join(map(str, driver.Database.version_info[:3]))
        return (
            f"'discard' needs COM_RESET_CONNECTION, which this mysqlclient ({version}) "
            "does not expose. Use 'rollback' (the default: "
            "session variables, temporary tables and user locks then stay with the "
            "connection), or close connections that changed their session"
        )
    return None
