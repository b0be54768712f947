"""Database-URL schemes for this package's ENGINEs, in django-environ and dj-database-url.

One line in settings.py, above the line that parses the URL::

    import django_sqla_pool.dburl  # noqa: F401  (registers postgres-pool://, postgis-pool://, mysql-pool://)

Then ``postgres-pool://user:password@host:5432/name?pool_size=10`` gives the pooled
PostgreSQL ENGINE, ``postgis-pool://...`` the pooled PostGIS one and
``mysql-pool://user:password@host:3306/name`` the pooled MySQL/MariaDB one, with
``environ.Env().db_url()`` and ``dj_database_url.config()`` alike. Both libraries
put query-string keys in OPTIONS: the pool's keys are then coerced and validated
as any OPTIONS value is (at the first connection and by the system checks), the
others (``sslmode``, ``connect_timeout``, ...) reach libpq.

Importing this module needs neither settings nor apps: it only adds entries to
the scheme tables of whichever of the two libraries is installed.
"""

from __future__ import annotations

import warnings

from .conf import URL_SCHEMES

__all__ = ["URL_SCHEMES"]

#: The libraries' own scheme whose handling each of ours shares (PostgreSQL's otherwise).
_LIKE = {"mysql-pool": "mysql"}


def _register_environ() -> None:
    try:
        import environ
    except ImportError:
        return
    env_class = environ.Env
    env_class.DB_SCHEMES.update(URL_SCHEMES)
    # Its PostgreSQL handling (a socket directory as HOST, several hosts) is
    # applied to the schemes in this list only.
    for scheme in URL_SCHEMES:
        if _LIKE.get(scheme, "postgres") == "postgres" and scheme not in env_class.POSTGRES_FAMILY:
            env_class.POSTGRES_FAMILY.append(scheme)


def _register_dj_database_url() -> None:
    try:
        import dj_database_url
    except ImportError:
        return
    register = getattr(dj_database_url, "register", None)
    if register is None:  # before 3.0: no registration API
        warnings.warn(
            "django_sqla_pool.dburl: dj-database-url "
            f"{getattr(dj_database_url, '__version__', '< 3.0')} has no register(); "
            "the postgres-pool:// and postgis-pool:// schemes need dj-database-url 3.0 "
            "or newer (pip install -U dj-database-url).",
            stacklevel=3,
        )
        return
    # The same post-processing as its postgres:// (currentSchema= becomes search_path)
    # or mysql:// (ssl-ca= becomes OPTIONS["ssl"]).
    for scheme, engine in URL_SCHEMES.items():
        like = dj_database_url.ENGINE_SCHEMES[_LIKE.get(scheme, "postgres")]
        register(scheme, engine)(like.postprocess)


_register_environ()
_register_dj_database_url()
