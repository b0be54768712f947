"""RDS and Aurora IAM authentication tokens as the password (extra: ``rds-iam``).

With IAM database authentication the password is a token that boto3 signs
locally (``generate_db_auth_token``, no network call once AWS credentials are
resolved) and that the server accepts for 15 minutes after signing. Name
:func:`auth_token` as the alias's ``OPTIONS["credentials"]`` and it signs one
for the alias's ``HOST``, ``PORT`` and ``USER``, in the region of
``AWS_REGION``, else boto3's default (``AWS_DEFAULT_REGION``, the profile's
config); use :func:`provider` to set any of these yourself. The pool calls it
when it opens a connection and reuses the token until shortly before it
expires, so a burst of connects signs once; open sessions outlive their token,
as RDS checks it only when a connection is opened::

    DATABASES["default"]["OPTIONS"]["credentials"] = "django_sqla_pool.contrib.rds_iam.auth_token"
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

try:
    import boto3
    import botocore.exceptions
except ImportError as error:
    raise ImportError(
        "django_sqla_pool.contrib.rds_iam needs boto3: pip install 'django-sqla-pool[rds-iam]'"
    ) from error

from django.conf import settings

#: Seconds RDS accepts a token after it was signed (boto3 signs with X-Amz-Expires=900).
TOKEN_LIFETIME = 900
#: ``expires_at`` is this much before the end of that lifetime: this host's clock may be
#: behind AWS's, and a token is checked against AWS's clock.
CLOCK_MARGIN = 60

#: Errors of boto3 while it resolves AWS credentials (instance metadata, the container
#: endpoint, STS) that may heal on their own: the pool retries them within connect_grace.
_TRANSIENT = (
    botocore.exceptions.HTTPClientError,  # connection refused, timeouts
    botocore.exceptions.CredentialRetrievalError,
)


class TokenUnavailable(Exception):
    """AWS credentials could not be fetched right now (see ``_TRANSIENT``)."""

    transient = True


class _AuthToken:
    """A credentials provider that signs IAM tokens; built by :func:`provider`."""

    def __init__(
        self,
        *,
        region: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        user: str | None = None,
    ) -> None:
        self.region = region
        self.host = host
        self.port = port
        self.user = user
        self._lock = threading.Lock()
        self._clients: dict[str | None, Any] = {}

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}"
            for name in ("region", "host", "port", "user")
            if (value := getattr(self, name)) is not None
        )
        return f"rds_iam.provider({fields})"

    def __call__(self, alias: str) -> dict[str, Any]:
        database = settings.DATABASES[alias]
        host = _one(alias, "HOST", self.host or database.get("HOST"))
        port = int(_one(alias, "PORT", str(self.port or database.get("PORT") or 5432)))
        user = self.user or database.get("USER")
        if not user:
            raise ValueError(
                f"DATABASES[{alias!r}] has no USER: an IAM token is signed for a database "
                "user; set USER (or rds_iam.provider(user=...))"
            )
        signed_at = time.time()
        try:
            token = self._client().generate_db_auth_token(host, port, user)
        except _TRANSIENT as error:
            raise TokenUnavailable(f"{type(error).__name__}: {error}") from error
        answer = {"password": token, "expires_at": signed_at + TOKEN_LIFETIME - CLOCK_MARGIN}
        if self.user:
            answer["user"] = user  # the token is for this user, whatever USER says
        return answer

    def _client(self) -> Any:
        region = self.region or os.environ.get("AWS_REGION") or None
        client = self._clients.get(region)
        if client is None:
            # A session per provider: boto3's default session is not safe to build
            # clients from in several threads at once. A client is, once built.
            with self._lock:
                client = self._clients.get(region)
                if client is None:
                    try:
                        client = boto3.session.Session().client("rds", region_name=region)
                    except botocore.exceptions.NoRegionError:
                        raise ValueError(
                            "no AWS region for the RDS IAM token: set AWS_REGION (or "
                            "AWS_DEFAULT_REGION), or use rds_iam.provider(region=...)"
                        ) from None
                    self._clients[region] = client
        return client


def _one(alias: str, key: str, value: Any) -> str:
    """The single endpoint a token is signed for; a multi-host HOST or PORT has none."""
    text = str(value or "").strip()
    if not text or text.startswith("/"):
        raise ValueError(
            f"DATABASES[{alias!r}][{key!r}] is {value!r}: an IAM token is signed for one "
            "TCP endpoint (the instance's or the cluster's host name); set it"
        )
    if "," in text:
        raise ValueError(
            f"DATABASES[{alias!r}][{key!r}] is {value!r}, several endpoints: an IAM token "
            "is signed for one host name and port. Use the Aurora cluster endpoint (it "
            "follows the writer), or one alias per instance"
        )
    return text


def provider(
    *,
    region: str | None = None,
    host: str | None = None,
    port: int | str | None = None,
    user: str | None = None,
) -> _AuthToken:
    """A provider for ``OPTIONS["credentials"]`` with any of these set explicitly.

    Each one left out comes from where :func:`auth_token` reads it. ``host``
    is the endpoint the token is signed for: set it when ``HOST`` names
    something else on the way (a proxy, an SSH tunnel to the instance).
    """
    return _AuthToken(region=region, host=host, port=port, user=user)


_default = _AuthToken()


def auth_token(alias: str) -> dict[str, Any]:
    """A token for ``DATABASES[alias]``: name this function as ``OPTIONS["credentials"]``."""
    return _default(alias)
