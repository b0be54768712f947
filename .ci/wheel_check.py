"""Use the installed wheel as a PyPI user would; run by .ci/build-check in a clean venv.

``wheel_check.py SOURCE_TREE``: the package imports from site-packages (not
from SOURCE_TREE), reports its version, carries LICENSE and the project's
metadata, and Django finds its ENGINE, admin template, migration and checks.
With DATABASE_URL set, the ENGINE runs a query on that server too.

``wheel_check.py --sdist UNPACKED SOURCE_TREE``: the unpacked sdist holds
what its own tests and docs need.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

DIST = "django-sqla-pool"
ENGINE = "django_sqla_pool.backends.postgresql"


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"wheel_check: FAILED: {what}")
    print(f"  ok: {what}")


def check_sdist(unpacked: Path) -> None:
    for relative in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "pyproject.toml",
        "testproject/manage.py",
        "testproject/testproject/settings.py",
        "tests/conftest.py",
        "tests/test_docs.py",
        "docs/observability.md",
        "django_sqla_pool/migrations/0001_initial.py",
        "django_sqla_pool/templates/django_sqla_pool/poolstats.html",
    ):
        check((unpacked / relative).is_file(), f"sdist contains {relative}")
    stray = [p for p in unpacked.rglob("*") if p.suffix in (".pyc", ".pyo") or p.name == ".pgdata"]
    check(not stray, f"sdist has no caches or data ({stray[:3]})")


def check_wheel(source_tree: Path) -> None:
    import django_sqla_pool

    location = Path(django_sqla_pool.__file__).resolve()
    check(
        "site-packages" in location.parts and source_tree not in location.parents,
        f"imported from the installed wheel ({location})",
    )
    version = metadata.version(DIST)
    check(django_sqla_pool.__version__ == version, f"__version__ == metadata ({version})")

    meta = metadata.metadata(DIST)
    check(meta.get("License-Expression") == "MIT", "License-Expression: MIT")
    files = metadata.files(DIST) or []
    licenses = [f for f in files if f.name == "LICENSE"]
    check(
        bool(licenses) and "Permission is hereby granted" in licenses[0].read_text(),
        "LICENSE in the wheel's dist-info",
    )
    urls = dict(line.split(", ", 1) for line in meta.get_all("Project-URL") or [])
    check(
        {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls),
        f"project URLs {sorted(urls)}",
    )
    classifiers = meta.get_all("Classifier") or []
    check("Framework :: Django :: 6.1" in classifiers, "classifier Django 6.1")
    check("Programming Language :: Python :: 3.13" in classifiers, "classifier Python 3.13")
    readme = meta.get_payload()  # type: ignore[attr-defined]
    check("](docs/" not in readme and "](http" in readme, "README links are absolute")

    check_django(location.parent)


def _database() -> dict[str, object]:
    """DATABASE_URL, or a server that is never contacted, for the ENGINE's settings."""
    import os
    from urllib.parse import parse_qs, unquote, urlsplit

    url = os.environ.get("DATABASE_URL")
    if not url:
        return {"NAME": "never_contacted", "HOST": "127.0.0.1"}
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": query.pop("host", None) or parts.hostname or "",
        "PORT": query.pop("port", None) or parts.port or "",
        "OPTIONS": {"pool_size": 1, "max_overflow": 0, **query},
    }


def check_django(package_dir: Path) -> None:
    import os

    import django
    from django.conf import settings

    database = _database()
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_sqla_pool",
        ],
        DATABASES={"default": {"ENGINE": ENGINE, "CONN_MAX_AGE": 0, **database}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        SECRET_KEY="wheel-check",
        USE_TZ=True,
    )
    django.setup()

    from django.core.management import call_command
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader
    from django.template.loader import get_template

    connection = connections["default"]
    check(type(connection).__module__ == f"{ENGINE}.base", f"ENGINE {ENGINE} loads")
    template = Path(get_template("django_sqla_pool/poolstats.html").origin.name)
    check(package_dir in template.parents, f"admin template found in the wheel ({template})")
    loader = MigrationLoader(None, ignore_no_migrations=True)
    check(
        ("django_sqla_pool", "0001_initial") in loader.disk_migrations,
        "migration django_sqla_pool.0001_initial found",
    )
    call_command("check", verbosity=0)  # raises SystemCheckError on any error
    print("  ok: manage.py check passes")
    if os.environ.get("DATABASE_URL"):
        from django_sqla_pool import pool_stats, release_connections

        with release_connections(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            one = cursor.fetchone()
        pools = pool_stats("default")["pools"]
        check(
            one == (1,) and pools[0]["counters"]["checkins"] == 1,
            "a query through the pooled ENGINE, connection returned",
        )


if __name__ == "__main__":
    if sys.argv[1] == "--sdist":
        check_sdist(Path(sys.argv[2]))
    else:
        check_wheel(Path(sys.argv[1]).resolve())
