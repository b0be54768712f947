"""Who may see the pools' numbers outside the admin: a permitted user, or the shared token.

The health view shows statuses to anyone and numbers only to these callers;
the metrics view answers only them. Probes and scrapers that cannot log in
send the token configured in ``DJANGO_SQLA_POOL_STATS_TOKEN`` as
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest

from .conf import STATS_TOKEN_SETTING, stats_token

#: The permission the admin page needs too (created by the migration).
PERMISSION = "django_sqla_pool.view_poolstats"


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(request: HttpRequest) -> bool:
    """True when a token is configured and the request carries it."""
    expected = stats_token(getattr(settings, STATS_TOKEN_SETTING, None))
    given = bearer_token(request)
    if expected is None or given is None:
        return False
    # Constant time: how long the comparison takes tells nothing about the token.
    return hmac.compare_digest(given.encode(), expected.encode())


def has_permission(request: HttpRequest) -> bool:
    """A logged-in, active user with ``django_sqla_pool.view_poolstats``."""
    user = getattr(request, "user", None)  # None without AuthenticationMiddleware
    return bool(user is not None and user.is_authenticated and user.has_perm(PERMISSION))


def may_see_numbers(request: HttpRequest) -> bool:
    """The token first: a scraper with it never makes the session and user queries."""
    return token_matches(request) or has_permission(request)
