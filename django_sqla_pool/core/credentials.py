"""Rotating credentials: a provider called at physical connects, its secret cached.

Managed databases hand out short-lived secrets: RDS and Aurora IAM tokens live
15 minutes, Azure Entra tokens about an hour, Vault leases as long as the lease.
The server checks a secret only when a connection is opened, and an open session
outlives its token. So the provider is called when a connection is opened, never
on checkout. Its answer is cached until shortly before it expires, because token
endpoints are rate-limited (RDS allows about 200 new IAM connections per second).
Threads that connect at the same time share one call. The secret lives only in
this object and in the driver parameters of the connect call. It never goes into
the pool's name, its key in the registry, the stats, or a log line.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import CredentialsError
from .settings import dotted_name

#: A secret is fetched again this long before it expires: a tenth of its lifetime,
#: at most REFRESH_MARGIN_MAX seconds, so a connect never sends a secret about to lapse.
REFRESH_MARGIN_MAX = 30.0


def _expiry(value: Any, where: str) -> float | None:
    """``expires_at`` as epoch seconds: a number, or an aware datetime; None if absent."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise CredentialsError(
                f"{where} returned expires_at={value!r}, a naive datetime: give an aware "
                "datetime (datetime.now(timezone.utc) + ...) or epoch seconds"
            )
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CredentialsError(
        f"{where} returned expires_at={value!r}: give epoch seconds or an aware datetime"
    )


class Credentials:
    """The provider's current secret for one pool.

    ``provider(alias)`` returns the password as a string, or a mapping with
    ``password`` and optionally ``user`` and ``expires_at``.
    """

    def __init__(self, provider: Callable[[str], Any], alias: str, ttl: float) -> None:
        self.provider = provider
        self.name = dotted_name(provider)
        self.alias = alias
        self.ttl = ttl
        self._where = f"credentials provider {self.name!r} of database alias {alias!r}"
        self._lock = threading.Lock()
        self._values: dict[str, str] | None = None
        self._refresh_at = 0.0  # time.time() after which the cache is not used
        #: Calls of the provider, and how many of them raised.
        self.calls = 0
        self.errors = 0

    def current(self) -> tuple[dict[str, str], bool]:
        """The parameters to connect with (``password``, maybe ``user``), and whether fresh.

        Fresh means fetched by this call: a connect that fails authentication
        with a secret that was not fresh is worth one more try with a new one.
        """
        values = self._values
        if values is not None and time.time() < self._refresh_at:
            return values, False
        with self._lock:
            # Another thread may have fetched it while this one waited for the lock.
            values = self._values
            if values is not None and time.time() < self._refresh_at:
                return values, False
            return self._fetch(), True

    def forget(self, stale: Mapping[str, str]) -> None:
        """Drop the cached secret if it is still ``stale`` (the server refused it)."""
        with self._lock:
            if self._values is stale:
                self._values = None

    def _fetch(self) -> dict[str, str]:
        self.calls += 1
        started = time.time()
        try:
            answer = self.provider(self.alias)
        except Exception as error:
            self.errors += 1
            failure = CredentialsError(
                f"{self._where} failed: {type(error).__name__}: {error}".rstrip(": "),
                transient=bool(getattr(error, "transient", False)),
            )
            raise failure from error
        if isinstance(answer, str):
            password, user, expires = answer, None, None
        elif isinstance(answer, Mapping) and isinstance(answer.get("password"), str):
            password, user = answer["password"], answer.get("user")
            expires = _expiry(answer.get("expires_at"), self._where)
            if user is not None and not isinstance(user, str):
                self.errors += 1
                raise CredentialsError(f"{self._where} returned a user that is not a string")
        else:
            self.errors += 1
            raise CredentialsError(
                f"{self._where} returned a {type(answer).__name__}: return the password as a "
                "string, or a mapping with 'password' (and optionally 'user', 'expires_at')"
            )
        values = {"password": password} if user is None else {"password": password, "user": user}
        if expires is None:
            refresh_at = started + self.ttl
        else:
            lifetime = max(0.0, expires - started)
            refresh_at = expires - min(REFRESH_MARGIN_MAX, lifetime / 10)
        self._values, self._refresh_at = values, refresh_at
        return values
