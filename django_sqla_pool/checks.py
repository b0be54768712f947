"""System checks: the same validator that runs at first connection, as check errors.

Ids are stable: E001 an invalid or unknown OPTIONS key, E002 CONN_MAX_AGE
other than 0, E003 Django's own ``pool`` option set alongside this backend,
E004 an invalid health or metrics setting. Database-tagged (``manage.py
check --database default``): W010 the fleet may open more connections than
the server has room for, W011 the server could not be asked, E010 an invalid
process count (``capacity.py``), W012 idle pooled connections may outlive
the server's own idle limit (MySQL's wait_timeout; each ENGINE's
``pool_server_messages()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .conf import (
    HEALTH_TIMEOUT_SETTING,
    STATS_TOKEN_SETTING,
    URL_SCHEMES,
    InvalidPoolSetting,
    health_timeout,
    is_pooled,
    parse_pool_settings,
    stats_token,
)
from .observe.capacity import capacity_messages

#: The project's home (pyproject.toml's Homepage; tests/test_docs.py keeps them equal).
HOME_URL = "https://github.com/django-sqla-pool/django-sqla-pool"

_HINTS = {
    "django_sqla_pool.E001": f"See the options table in the README: {HOME_URL}#options",
    "django_sqla_pool.E002": "Set CONN_MAX_AGE to 0; the pool keeps the connections open.",
    "django_sqla_pool.E003": "Set OPTIONS['pool'] to False or remove it; use pool_size.",
    "django_sqla_pool.E004": "See docs/observability.md, 'Settings'.",
}


def pool_setting_errors(databases: Mapping[str, Mapping[str, Any]]) -> list[CheckMessage]:
    """One Error per DATABASES entry of our ENGINEs whose pool settings are invalid."""
    errors: list[CheckMessage] = []
    for alias, settings_dict in databases.items():
        if not is_pooled(settings_dict):
            continue
        try:
            parse_pool_settings(alias, settings_dict)
        except InvalidPoolSetting as error:
            errors.append(Error(str(error), hint=_HINTS[error.check_id], id=error.check_id))
    return errors


# Not tagged "database": those checks run only when asked for, and this one
# reads settings alone, so it can run with every `manage.py check`.
@register()
def check_pool_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return pool_setting_errors(settings.DATABASES)


# Tagged "database": it queries the server, so it runs only when asked for
# (`manage.py check --database default`, at deploy), never at every import.
@register(Tags.database)
def check_capacity(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases:
        return []
    return capacity_messages(settings.DATABASES, databases)


@register(Tags.database)
def check_server_limits(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias in databases or ():
        settings_dict = settings.DATABASES.get(alias, {})
        if is_pooled(settings_dict) and not pool_setting_errors({alias: settings_dict}):
            wrapper: Any = connections[alias]
            messages.extend(wrapper.pool_server_messages())
    return messages


@register()
def check_observe_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E004: the health view's timeout and the stats token, validated as the views do."""
    errors: list[CheckMessage] = []
    for name, parse in (
        (HEALTH_TIMEOUT_SETTING, health_timeout),
        (STATS_TOKEN_SETTING, stats_token),
    ):
        try:
            parse(getattr(settings, name, None))
        except InvalidPoolSetting as error:
            errors.append(Error(str(error), hint=_HINTS[error.check_id], id=error.check_id))
    return errors


def raise_for_unregistered_url_scheme(databases: Mapping[str, Mapping[str, Any]]) -> None:
    """ImproperlyConfigured if an ENGINE is one of our URL schemes, as parsed without them.

    django-environ copies a scheme it does not know into ENGINE. Called when
    the app config is created, because Django imports the ENGINE (and fails
    with "No module named 'postgres-pool'") as soon as a models module is
    imported, long before any system check runs.
    """
    for alias, settings_dict in databases.items():
        engine = settings_dict.get("ENGINE")
        if engine in URL_SCHEMES:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]['ENGINE'] = {engine!r} is a database-URL scheme of "
                "django_sqla_pool, read by a URL parser that did not know it. Add "
                "`import django_sqla_pool.dburl` to settings.py above the line that parses "
                f"the URL; {engine}:// then gives ENGINE {URL_SCHEMES[engine]!r}."
            )
