"""Errors this package raises: subclasses of Django's, so existing handlers keep working."""

from __future__ import annotations

from django.db.utils import OperationalError


class PoolTimeout(OperationalError):
    """No connection became free within ``pool_timeout`` seconds (the pool is exhausted)."""


class PoolConnectError(OperationalError):
    """The pool needed a new connection and the server could not be reached."""


class ServerSettingsError(PoolConnectError):
    """The server did not apply statement_timeout, lock_timeout, ... (a pooler in front)."""
