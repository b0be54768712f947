"""Errors this package raises: subclasses of Django's, so existing handlers keep working."""

from __future__ import annotations

from django.db.utils import OperationalError


class PoolTimeout(OperationalError):
    """No connection became free within ``pool_timeout`` seconds (the pool is exhausted)."""


class PoolConnectError(OperationalError):
    """The pool needed a new connection and the server could not be reached."""


class ServerSettingsError(PoolConnectError):
    """The server did not apply statement_timeout, lock_timeout, ... (a pooler in front)."""


class CredentialsError(PoolConnectError):
    """The credentials provider raised or returned something unusable.

    ``transient``: the provider said the failure may heal (it raised an exception
    with ``transient = True``, such as a throttled token endpoint); the pool then
    retries it within ``connect_grace`` as it would a restarting server.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
