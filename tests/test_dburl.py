"""Database-URL schemes (django_sqla_pool.dburl) with the real django-environ and dj-database-url.

settings.py imports django_sqla_pool.dburl, so the schemes are registered in
this process; what happens without that import runs in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
import environ
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.backends.postgresql.psycopg_any import is_psycopg3

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.checks import pool_setting_errors, raise_for_unregistered_url_scheme
from django_sqla_pool.conf import InvalidPoolSetting, PoolSettings, parse_pool_settings

ROOT = Path(__file__).resolve().parents[1]
PG = "django_sqla_pool.backends.postgresql"
GIS = "django_sqla_pool.backends.postgis"

#: The two parsers as a settings.py calls them, each from a URL.
PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "django-environ": environ.Env.db_url_config,
    "dj-database-url": lambda url: dict(dj_database_url.parse(url)),
}
parsers = pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())


@parsers
@pytest.mark.parametrize(("scheme", "engine"), [("postgres-pool", PG), ("postgis-pool", GIS)])
def test_each_scheme_gives_its_engine(parse, scheme, engine) -> None:
    config = parse(f"{scheme}://app@db.example:5433/shop")
    assert config["ENGINE"] == engine
    assert (config["USER"], config["HOST"], config["PORT"], config["NAME"]) == (
        "app",
        "db.example",
        5433,
        "shop",
    )


@parsers
def test_every_kind_of_pool_value_is_coerced_from_the_query_string(parse) -> None:
    config = parse(
        "postgres-pool://app@db/shop?pool_size=10&max_overflow=0&pool_timeout=2.5"
        "&pool_recycle=-1&pool_pre_ping=false&pool_use_lifo=on&pool_reset_on_return=discard"
        "&leak_detection_threshold=none&statement_timeout=30000&lock_timeout=0"
    )
    assert parse_pool_settings("default", config) == PoolSettings(
        pool_size=10,
        max_overflow=0,
        pool_timeout=2.5,
        pool_recycle=None,
        pool_pre_ping=False,
        pool_use_lifo=True,
        pool_reset_on_return="discard",
        leak_detection_threshold=None,
        statement_timeout=30000,
        lock_timeout=0,
    )


@parsers
@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "pool_size=lots",
            "DATABASES['default']['OPTIONS']['pool_size'] = 'lots' is invalid: "
            "use a whole number of connections, 1 or more.",
        ),
        ("pool_pre_ping=maybe", "['pool_pre_ping'] = 'maybe' is invalid: use true or false"),
        ("pool_sise=5", "['pool_sise'] is not an option of django_sqla_pool. Did you mean"),
    ],
)
def test_a_bad_value_in_the_url_gets_our_message(parse, query, message) -> None:
    config = parse(f"postgres-pool://app@db/shop?{query}")
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_pool_settings("default", config)
    assert message in str(raised.value)
    [error] = pool_setting_errors({"default": config})  # the system check says the same
    assert error.id == "django_sqla_pool.E001" and message in error.msg


@parsers
@pytest.mark.django_db
def test_a_bad_value_fails_when_the_wrapper_is_built(parse) -> None:
    # Validated when Django builds the connection wrapper (and in ready()), so a
    # worker refuses to boot instead of failing at its first query.
    settings_dict = {
        **connection.settings_dict,
        **parse("postgres-pool://app@db/shop?pool_timeout=0"),
    }
    with pytest.raises(InvalidPoolSetting, match=r"\['pool_timeout'\] = 0 is invalid"):
        DatabaseWrapper(settings_dict, alias="url_bad")


@parsers
def test_a_percent_encoded_password_round_trips(parse) -> None:
    password = "p@ss:w/rd%?#&="
    config = parse(f"postgres-pool://app:{quote(password, safe='')}@db:5432/shop")
    assert config["PASSWORD"] == password
    assert (config["USER"], config["HOST"], config["NAME"]) == ("app", "db", "shop")
    wrapper = DatabaseWrapper({**connection.settings_dict, **config}, alias="url_password")
    assert wrapper.get_connection_params()["password"] == password


def url_for_the_test_database(scheme: str, query: str) -> str:
    """A URL of ours for the suite's test database (over TCP or a socket directory)."""
    sd = connection.settings_dict
    user = quote(sd["USER"] or "postgres", safe="")
    host = sd["HOST"] or sd["OPTIONS"].get("host") or "127.0.0.1"
    port = sd["PORT"] or sd["OPTIONS"].get("port") or 5432
    if str(host).startswith("/"):
        return f"{scheme}://{user}@/{sd['NAME']}?host={quote(host, safe='/')}&port={port}&{query}"
    return f"{scheme}://{user}@{host}:{port}/{sd['NAME']}?{query}"


def libpq_parameters(raw: Any) -> dict[str, str]:
    """The parameters libpq holds for this driver connection (never the password)."""
    if is_psycopg3:
        return dict(raw.info.get_parameters())
    return dict(raw.get_dsn_parameters())


@parsers
@pytest.mark.django_db(transaction=True)
def test_driver_options_reach_libpq_and_pool_options_the_pool(parse) -> None:
    url = url_for_the_test_database(
        "postgres-pool",
        "sslmode=disable&connect_timeout=7&application_name=web"
        "&pool_size=3&max_overflow=1&statement_timeout=30000",
    )
    wrapper = DatabaseWrapper({**connection.settings_dict, **parse(url)}, alias="url_options")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "30s"
            cursor.execute("SHOW application_name")
            assert cursor.fetchone()[0].startswith("web sqlapool:url_options:")
        libpq = libpq_parameters(wrapper.connection)
        assert (libpq["sslmode"], libpq["connect_timeout"]) == ("disable", "7")
        assert not any(key.startswith("pool_") for key in libpq)
        assert wrapper.pool_settings.max_connections == 4
    finally:
        wrapper.close()
        from django_sqla_pool.core import registry

        registry.close_pools("url_options")


def test_environ_reads_a_socket_directory_as_for_postgres() -> None:
    # Its PostgreSQL family handling: a path in place of the host is the socket directory.
    config = environ.Env.db_url_config("postgres-pool:////var/run/postgresql/shop")
    assert (config["ENGINE"], config["HOST"], config["NAME"]) == (PG, "/var/run/postgresql", "shop")
    several = environ.Env.db_url_config("postgis-pool://app@h1:5432,h2:5433/shop")
    assert (several["ENGINE"], several["HOST"], several["PORT"]) == (GIS, "h1,h2", "5432,5433")


def test_dj_database_url_applies_current_schema_as_for_postgres() -> None:
    config = dj_database_url.parse("postgres-pool://app@db/shop?currentSchema=tenant1")
    assert config["OPTIONS"] == {"options": "-c search_path=tenant1"}


def test_an_engine_that_is_our_scheme_names_the_import() -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        raise_for_unregistered_url_scheme({"geo": {"ENGINE": "postgis-pool"}})
    assert str(raised.value) == (
        "DATABASES['geo']['ENGINE'] = 'postgis-pool' is a database-URL scheme of "
        "django_sqla_pool, read by a URL parser that did not know it. Add "
        "`import django_sqla_pool.dburl` to settings.py above the line that parses the URL; "
        "postgis-pool:// then gives ENGINE 'django_sqla_pool.backends.postgis'."
    )
    raise_for_unregistered_url_scheme({"default": {"ENGINE": PG}})  # ours: nothing to say


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", **env},
    )


SETTINGS = """\
import environ
{import_line}
SECRET_KEY = "test"
INSTALLED_APPS = ["django_sqla_pool"]
DATABASES = {{"default": environ.Env().db_url("DATABASE_URL")}}
"""


@pytest.mark.parametrize("registered", [False, True], ids=["without-import", "with-import"])
def test_environ_without_the_import_says_what_to_import(tmp_path, registered) -> None:
    import_line = "import django_sqla_pool.dburl" if registered else ""
    (tmp_path / "url_settings.py").write_text(SETTINGS.format(import_line=import_line))
    result = run_python(
        """
        import django
        from django.db import connections
        django.setup()
        print(connections["default"].settings_dict["ENGINE"])
        """,
        tmp_path,
        DJANGO_SETTINGS_MODULE="url_settings",
        DATABASE_URL="postgres-pool://app@db.example/shop",
    )
    if registered:
        assert (result.returncode, result.stdout.strip()) == (0, PG), result.stderr
    else:
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            "django.core.exceptions.ImproperlyConfigured: DATABASES['default']['ENGINE'] = "
            "'postgres-pool' is a database-URL scheme of django_sqla_pool, read by a URL parser "
            "that did not know it. Add `import django_sqla_pool.dburl` to settings.py above the "
            "line that parses the URL; postgres-pool:// then gives ENGINE "
            "'django_sqla_pool.backends.postgresql'."
        )


def test_dj_database_url_without_the_import_refuses_the_scheme(tmp_path) -> None:
    # dj-database-url raises while settings.py runs, before anything of ours
    # can: its own message is what a user sees (the README says what to import).
    result = run_python(
        """
        import dj_database_url
        dj_database_url.parse("postgres-pool://app@db.example/shop")
        """,
        tmp_path,
    )
    assert result.returncode == 1
    assert (
        "UnknownSchemeError: Scheme 'postgres-pool://' is unknown. "
        "Did you forget to register custom backend?"
    ) in result.stderr


def test_the_import_needs_no_settings_and_no_apps(tmp_path) -> None:
    result = run_python(
        """
        import django_sqla_pool.dburl
        import dj_database_url, environ
        from django.apps import apps
        from django.conf import settings
        assert not settings.configured and not apps.ready
        print(environ.Env.db_url_config("postgis-pool://db/x")["ENGINE"])
        print(dj_database_url.parse("postgis-pool://db/x")["ENGINE"])
        """,
        tmp_path,
        DJANGO_SETTINGS_MODULE="",
    )
    assert (result.returncode, result.stdout.split()) == (0, [GIS, GIS]), result.stderr


# The README's lines, copied: the test fails when either changes without the other.
README_ENVIRON = """\
import environ

import django_sqla_pool.dburl  # noqa: F401  (registers postgres-pool:// and postgis-pool://)

env = environ.Env()
DATABASES = {"default": env.db_url("DATABASE_URL")}
# DATABASE_URL=postgres-pool://app:s%40cret@db:5432/app?pool_size=10&max_overflow=10&statement_timeout=30000
"""
README_DJ_DATABASE_URL = """\
import dj_database_url

import django_sqla_pool.dburl  # noqa: F401

DATABASES = {"default": dj_database_url.config()}
"""
README_ENGINE_ARGUMENT = """\
DATABASES = {
    "default": env.db_url("DATABASE_URL", engine="django_sqla_pool.backends.postgresql"),
}
# DATABASE_URL=postgres://app@db:5432/app?pool_size=10
"""


@pytest.mark.parametrize(
    ("snippet", "setup"),
    [
        (README_ENVIRON, ""),
        (README_DJ_DATABASE_URL, ""),
        (README_ENGINE_ARGUMENT, "import environ\nenv = environ.Env()\n"),
    ],
    ids=["environ", "dj-database-url", "engine-argument"],
)
def test_the_readme_lines_work(snippet, setup, monkeypatch) -> None:
    assert snippet in (ROOT / "README.md").read_text()
    # The URL in the README's comment: the engine= example's own, else the scheme's.
    [url] = [
        line.split("=", 1)[1]
        for line in (snippet if "# DATABASE_URL=" in snippet else README_ENVIRON).splitlines()
        if line.startswith("# DATABASE_URL=")
    ]
    monkeypatch.setenv("DATABASE_URL", url)
    namespace: dict[str, Any] = {}
    exec(setup + snippet, namespace)
    config = namespace["DATABASES"]["default"]
    assert config["ENGINE"] == PG
    assert parse_pool_settings("default", config).pool_size == 10
    if "engine=" not in snippet:
        assert config["PASSWORD"] == "s@cret"
        assert parse_pool_settings("default", config).statement_timeout == 30000
