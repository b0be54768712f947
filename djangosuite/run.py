#!/usr/bin/env python
"""Run Django's own test suite with this package's ENGINE.

Django's tests ship in its sdist, not its wheel: this script downloads the
sdist of the Django installed in the running Python (``pip download``, cached
outside the repository), installs what the chosen apps need from its
tests/requirements, writes a settings module for the server in DATABASE_URL,
runs ``tests/runtests.py`` on a list of apps and compares the tests that
failed with djangosuite/expected_failures.txt. It exits 1 when a test fails
that the file does not list (or when the run itself breaks), and warns about
listed tests that passed.

    python djangosuite/run.py                       # the default apps, our ENGINE
    python djangosuite/run.py --apps backends basic
    python djangosuite/run.py --engine django_sqla_pool.backends.postgis --apps gis_tests
    python djangosuite/run.py --compare             # also on Django's own backend: which
                                                    # failures are ours, which Django's

Every file it makes (the sdist, the unpacked tree, settings, the log) lives
under --cache (default ~/.cache/django-sqla-pool/django-suite). See
djangosuite/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import django

HERE = Path(__file__).resolve().parent
OUR_ENGINE = "django_sqla_pool.backends.postgresql"
DJANGO_ENGINE = "django.db.backends.postgresql"
OUR_MYSQL_ENGINE = "django_sqla_pool.backends.mysql"
DJANGO_MYSQL_ENGINE = "django.db.backends.mysql"
# For --compare: the Django backend each ENGINE of ours extends.
DJANGO_EQUIVALENT = {
    OUR_ENGINE: DJANGO_ENGINE,
    "django_sqla_pool.backends.postgis": "django.contrib.gis.db.backends.postgis",
    OUR_MYSQL_ENGINE: DJANGO_MYSQL_ENGINE,
}
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/djsuite"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/djsuite"
# DATABASE_URL schemes per database family; the ENGINE decides the family.
URL_SCHEMES = {
    "postgresql": ("postgres", "postgresql", "pgsql", "postgis"),
    "mysql": ("mysql", "mariadb"),
}
# MySQL and MariaDB: the test databases in utf8mb4 whatever the server's default
# (Debian's MariaDB 10.11 defaults to utf8mb4 already; a stock MySQL 5.7 to latin1).
MYSQL_TEST_SETTINGS = {"CHARSET": "utf8mb4"}
# The pool settings of issue 10's reference run; small enough that --parallel 2
# with two aliases stays far below the server's max_connections.
POOL_OPTIONS = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 10}

# Apps that exercise the database layer: connections and their setup, transactions,
# querying, PostgreSQL-only features, time zones, async, and three contrib apps whose
# tests do real work through the ORM.
DEFAULT_APPS = [
    "backends",
    "transactions",
    "transaction_hooks",
    "basic",
    "select_for_update",
    "queries",
    "model_fields",
    "db_functions",
    "test_utils",
    "get_or_create",
    "delete",
    "update",
    "postgres_tests",
    "timezones",
    "expressions",
    "aggregation",
    "dbshell",
    "db_utils",
    "async",
    "sessions_tests",
    "auth_tests",
    "admin_views",
]

# The apps whose tests depend on the driver (adaptation, connection setup,
# transactions, PostgreSQL types, time zones, COPY, cursors): a second driver is
# run on these, to keep CI's time in bounds.
DRIVER_APPS = [
    "backends",
    "transactions",
    "select_for_update",
    "queries",
    "model_fields",
    "db_functions",
    "postgres_tests",
    "timezones",
    "expressions",
    "dbshell",
    "db_utils",
    "async",
]
# MySQL/MariaDB: the database apps plus those that exercise what differs most on
# MySQL (DDL outside transactions, introspection, bulk inserts, fixtures). With
# Django's backend on MariaDB 10.11 they add ~30 s to a run (docs/mysql-notes.md).
MYSQL_EXTRA_APPS = [
    "schema",
    "migrations",
    "introspection",
    "inspectdb",
    "bulk_create",
    "indexes",
    "raw_query",
    "fixtures",
    "model_regress",
]
APP_SETS = {
    "database": DEFAULT_APPS,
    "driver": DRIVER_APPS,
    "mysql": [app for app in DEFAULT_APPS if app != "postgres_tests"] + MYSQL_EXTRA_APPS,
}

# From tests/requirements/py3.txt, what the database apps use (hashers, images,
# YAML fixtures, tracebacks from parallel workers ...). Left out: memcached, redis,
# watchman, selenium, black and the mail server, which only other apps use, and
# some of which need C libraries to build.
WANTED_REQUIREMENTS = {
    "asgiref",
    "argon2-cffi",
    "bcrypt",
    "docutils",
    "jinja2",
    "numpy",
    "pillow",
    "pyyaml",
    "sqlparse",
    "tblib",
    "tzdata",
}
# Per app, what else it needs from py3.txt.
APP_REQUIREMENTS = {"gis_tests": {"geoip2"}}


def engine_family(engine: str) -> str:
    """The family of an ENGINE: mysql (Django's MySQL backend or ours), else postgresql."""
    last = engine.rsplit(".", 1)[-1]
    return "mysql" if last == "mysql" or engine.endswith(".mysql.base") else "postgresql"


def driver_name(family: str = "postgresql") -> str:
    if family == "mysql":
        # Django's MySQL backend supports mysqlclient (MySQLdb) only.
        return "mysqlclient"
    # The driver Django picked, by Django's own rule (psycopg 3 when importable).
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return "psycopg3" if is_psycopg3 else "psycopg2"


def log(message: str) -> None:
    print(f"[djangosuite] {message}", flush=True)


# --- the sdist ----------------------------------------------------------------


def fetch_sdist(version: str, cache: Path) -> Path:
    """The unpacked sdist of Django ``version``, downloaded once into ``cache``."""
    tree = cache / f"django-{version}"
    if (tree / "tests" / "runtests.py").is_file():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    archives = list(cache.glob(f"[dD]jango-{version}.tar.gz"))
    if not archives:
        log(f"downloading the sdist of Django {version}")
        subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"Django=={version}", "--dest", str(cache)),
            ],
            check=True,
        )
        archives = list(cache.glob(f"[dD]jango-{version}.tar.gz"))
    if not archives:
        sys.exit(f"pip download left no Django-{version}.tar.gz in {cache}")
    # Unpacked beside, then moved in place whole: a run that starts meanwhile
    # (another venv, another helper) never sees half a tree.
    partial = cache / f".django-{version}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archives[0]) as archive:
        archive.extractall(partial, filter="data")
    (top,) = partial.iterdir()
    if not (tree / "tests" / "runtests.py").is_file():
        shutil.rmtree(tree, ignore_errors=True)
        top.rename(tree)
    shutil.rmtree(partial, ignore_errors=True)
    return tree


def requirement_name(line: str) -> str:
    for stop in "<>=!~;[ ":
        line = line.split(stop, 1)[0]
    return line.strip().lower().replace("_", "-")


def install_requirements(tree: Path, apps: list[str], driver: str) -> None:
    wanted = set(WANTED_REQUIREMENTS)
    for app in apps:
        wanted |= APP_REQUIREMENTS.get(app.split(".")[0], set())
    lines = []
    requirements = tree / "tests" / "requirements"
    for raw in (requirements / "py3.txt").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and requirement_name(line) in wanted:
            lines.append(line)
    if driver == "mysqlclient":
        # Django's tests/requirements/mysql.txt names only mysqlclient: the
        # driver, which is the venv's choice and never changed here.
        pass
    elif driver == "psycopg3":
        # psycopg_pool, so that Django's tests of its own pool run (and are refused
        # by design, see expected_failures.txt) rather than being skipped. The
        # driver itself is the venv's choice, never replaced here.
        for raw in (requirements / "postgres.txt").read_text().splitlines():
            if requirement_name(raw) == "psycopg-pool":
                lines.append(raw.strip())
    marker = Path(sys.prefix) / f".djsuite-requirements-{django.__version__}"
    if marker.is_file() and marker.read_text().splitlines() == lines:
        return
    log("installing test requirements: " + ", ".join(lines))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *lines], check=True)
    marker.write_text("\n".join(lines) + "\n")


# --- settings -----------------------------------------------------------------


def database_settings(url: str, engine: str) -> dict[str, dict[str, object]]:
    parts = urlsplit(url)
    family = engine_family(engine)
    if parts.scheme not in URL_SCHEMES[family]:
        example = URL_SCHEMES[family][0]
        sys.exit(
            f"DATABASE_URL={url!r} does not suit ENGINE {engine}: "
            f"use {example}://user[:password]@host:port/dbname"
        )
    name = unquote(parts.path.lstrip("/")) or "djsuite"
    ours = engine.startswith("django_sqla_pool.")
    base: dict[str, object] = {
        "ENGINE": engine,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Django's own backend refuses the pool's keys; it runs with no OPTIONS.
        # (Django's MySQL backend would hand them to MySQLdb.connect(), which
        # rejects them: ours must take them out of OPTIONS before connecting.)
        "OPTIONS": dict(POOL_OPTIONS) if ours else {},
    }
    if family == "mysql":
        base["TEST"] = dict(MYSQL_TEST_SETTINGS)
    # Django's suite needs both aliases; their test databases are test_<NAME>.
    return {
        "default": {**base, "NAME": name},
        "other": {
            **base,
            "NAME": f"{name}_other",
            "OPTIONS": dict(base["OPTIONS"]),  # type: ignore[call-overload]
            **({"TEST": dict(MYSQL_TEST_SETTINGS)} if family == "mysql" else {}),
        },
    }


def write_settings(folder: Path, databases: dict[str, dict[str, object]]) -> str:
    """Django's own test settings (tests/test_sqlite.py) with our DATABASES."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "suite_runner.py", folder / "djsuite_runner.py")
    (folder / "djsuite_settings.py").write_text(
        "# Written by djangosuite/run.py: Django's test settings, this package's ENGINE.\n"
        "from test_sqlite import *  # noqa: F403\n\n"
        f"DATABASES = {databases!r}\n"
        'TEST_RUNNER = "djsuite_runner.RecordingRunner"\n'
    )
    return "djsuite_settings"


def check_mysql_server(databases: dict[str, dict[str, object]]) -> None:
    """Log the server's version; warn when its time zone tables are empty.

    Django's MySQL backend converts time zones with CONVERT_TZ(), which returns
    NULL for a named zone without them: 9 tests of db_functions, timezones and
    admin_views then fail (Debian's MariaDB ships them empty).
    """
    try:
        import MySQLdb
    except ImportError:
        return
    settings = databases["default"]
    params: dict[str, object] = {"user": settings["USER"], "password": settings["PASSWORD"]}
    params["host"] = settings["HOST"] or "localhost"
    if settings["PORT"]:
        params["port"] = int(str(settings["PORT"]))
    try:
        conn = MySQLdb.connect(**params, connect_timeout=10)
    except MySQLdb.Error as exc:
        log(f"warning: cannot connect to check the server: {exc}")
        return
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION(), (SELECT COUNT(*) FROM mysql.time_zone_name)")
        version, zones = cursor.fetchone()
    except MySQLdb.Error as exc:
        log(f"warning: cannot read the server's version and time zones: {exc}")
        return
    finally:
        conn.close()
    log(f"server {version}, {zones} named time zones")
    if not zones:
        log(
            "warning: the server has no time zone tables: time zone tests will fail; "
            "load them: mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb -uroot mysql"
        )


# --- expected failures ----------------------------------------------------------


@dataclass
class Expected:
    test: str
    reason: str
    line: int


def section_applies(header: str, version: str, driver: str, engine: str) -> bool:
    """``[django=5.2 driver=psycopg2 engine=...]``; ``[*]`` for every run."""
    for condition in header.split():
        if condition == "*":
            continue
        key, _, value = condition.partition("=")
        if key == "django":
            if not (version == value or version.startswith(value + ".")):
                return False
        elif key == "driver":
            if driver != value:
                return False
        elif key == "engine":
            if engine != value:
                return False
        else:
            raise ValueError(f"unknown condition {condition!r} in [{header}]")
    return True


def read_expected(path: Path, version: str, driver: str, engine: str) -> list[Expected]:
    entries: list[Expected] = []
    applies = True
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            applies = section_applies(line.strip("[]"), version, driver, engine)
            continue
        test, sep, reason = line.partition("#")
        if not sep or not reason.strip() or len(test.split()) != 1:
            sys.exit(f"{path}:{number}: write '<test id>  # one-line reason'")
        if applies:
            entries.append(Expected(test.strip(), reason.strip(), number))
    return entries


def covers(entry: str, test: str) -> bool:
    # An entry names a test, or a class or module and then covers all of it.
    return test == entry or test.startswith(entry + ".")


def in_apps(entry: str, apps: list[str]) -> bool:
    return any(covers(app, entry) or covers(entry, app) for app in apps)


# --- a run ----------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    run: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    exit_code: int = 0
    complete: bool = False


def run_suite(args: argparse.Namespace, tree: Path, engine: str) -> Result:
    work = args.cache / f"run-{os.getpid()}-{engine.rsplit('.', 1)[-1]}"
    shutil.rmtree(work, ignore_errors=True)
    databases = database_settings(args.database_url, engine)
    module = write_settings(work, databases)
    if engine_family(engine) == "mysql":
        check_mysql_server(databases)
    results_path = work / "results.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")])),
        "DJSUITE_RESULTS": str(results_path),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "runtests.py",
        f"--settings={module}",
        f"--parallel={args.parallel}",
        "--noinput",
        f"--verbosity={args.verbosity}",
        *args.runtests_args,
        *args.apps,
    ]
    log(
        f"ENGINE {engine}, databases {databases['default']['NAME']} and "
        f"{databases['other']['NAME']} on {databases['default']['HOST']}"
    )
    log(f"settings in {work}; running in {tree / 'tests'}:")
    log("  " + " ".join(command))
    result = Result(engine)
    start = time.monotonic()
    # Its own process group, so that a timeout also ends the parallel workers.
    process = subprocess.Popen(command, cwd=tree / "tests", env=env, start_new_session=True)
    try:
        result.exit_code = process.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        log(f"timed out after {args.timeout} s: stopping the run")
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        result.exit_code = -1
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    result.seconds = time.monotonic() - start
    if results_path.is_file():
        data = json.loads(results_path.read_text())
        result.run, result.skipped, result.failed = data["run"], data["skipped"], data["failed"]
        result.complete = True
    shutil.rmtree(work, ignore_errors=True)
    return result


def report(args: argparse.Namespace, result: Result, expected: list[Expected]) -> bool:
    """Print the verdict for our ENGINE's run; True when it passes."""
    failed = result.failed
    expected_hits = {e.test for e in expected if any(covers(e.test, t) for t in failed)}
    unexpected = sorted(t for t in failed if not any(covers(e.test, t) for e in expected))
    passed_anyway = [
        e for e in expected if in_apps(e.test, args.apps) and e.test not in expected_hits
    ]
    listed_failures = len(failed) - len(unexpected)
    log(
        f"Django {django.__version__}, {args.driver}, {result.engine}: "
        f"{result.run} tests run, {len(failed)} failed or errored "
        f"({listed_failures} expected, {len(unexpected)} unexpected), "
        f"{result.skipped} skipped, {result.seconds:.0f} s wall time"
    )
    for entry in passed_anyway:
        log(
            f"warning: expected to fail but passed: {entry.test} "
            f"(expected_failures.txt line {entry.line}: remove it if it keeps passing)"
        )
    for test in unexpected:
        log(f"UNEXPECTED {failed[test]}: {test}")
    if not result.complete:
        log(
            f"the run did not finish (runtests.py exit code {result.exit_code}): "
            "see the output above"
        )
        return False
    return not unexpected


def compare(ours: Result, theirs: Result) -> None:
    only_ours = sorted(set(ours.failed) - set(theirs.failed))
    both = sorted(set(ours.failed) & set(theirs.failed))
    only_theirs = sorted(set(theirs.failed) - set(ours.failed))
    log(
        f"compared with {theirs.engine}: {theirs.run} tests run, "
        f"{len(theirs.failed)} failed or errored, {theirs.seconds:.0f} s wall time"
    )
    for title, tests in (
        (f"fail only with {ours.engine}", only_ours),
        ("fail with both (Django's own)", both),
        (f"fail only with {theirs.engine}", only_theirs),
    ):
        log(f"{title}: {len(tests)}")
        for test in tests:
            log(f"  {test}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Arguments after -- go to runtests.py (e.g. -- --keepdb -k test_signal).",
    )
    parser.add_argument(
        "--apps",
        nargs="+",
        metavar="APP",
        help="test labels for runtests.py (default: --app-set database)",
    )
    parser.add_argument(
        "--app-set",
        choices=sorted(APP_SETS),
        default="database",
        help="a named list of apps: database (the 22 database apps), driver (the 12 "
        "of them whose tests depend on the driver), mysql (the database apps but "
        "postgres_tests, plus 9 for MySQL: schema, migrations, introspection ...)",
    )
    parser.add_argument(
        "--engine",
        default=OUR_ENGINE,
        help=f"the ENGINE to test (default {OUR_ENGINE}); a MySQL one "
        f"({OUR_MYSQL_ENGINE}, {DJANGO_MYSQL_ENGINE}) runs on MySQL/MariaDB",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="then run the same apps on the Django backend the ENGINE "
        f"extends ({DJANGO_ENGINE} for ours) and list the failures "
        "each has",
    )
    parser.add_argument("--parallel", default="2", help="runtests.py --parallel (default 2)")
    parser.add_argument("--verbosity", type=int, default=1)
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds before a run is stopped and counted as failed",
    )
    parser.add_argument(
        "--expected",
        type=Path,
        help="the expected failures (default expected_failures.txt, "
        "expected_failures_mysql.txt for a MySQL ENGINE)",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "django-sqla-pool" / "django-suite"
    )
    parser.add_argument(
        "--database-url",
        help=f"the server (default $DATABASE_URL, else {DEFAULT_URL}; for a MySQL "
        f"ENGINE $MYSQL_DATABASE_URL, else $DATABASE_URL if mysql://, else "
        f"{DEFAULT_MYSQL_URL})",
    )
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    args.runtests_args = extra
    if not args.apps:
        args.apps = APP_SETS[args.app_set]
    family = engine_family(args.engine)
    if args.expected is None:
        name = "expected_failures_mysql.txt" if family == "mysql" else "expected_failures.txt"
        args.expected = HERE / name
    if args.database_url is None:
        args.database_url = default_database_url(family)
    args.driver = driver_name(family)
    return args


def default_database_url(family: str) -> str:
    """The server when --database-url is not given, for the ENGINE's family.

    A MySQL run reads $MYSQL_DATABASE_URL first, then $DATABASE_URL only when
    it is a mysql:// one: a PostgreSQL DATABASE_URL left in the environment
    (as CI sets it) does not send a MySQL run to PostgreSQL.
    """
    url = os.environ.get("DATABASE_URL", "")
    if family == "mysql":
        mysql_url = os.environ.get("MYSQL_DATABASE_URL", "")
        if mysql_url:
            return mysql_url
        if urlsplit(url).scheme in URL_SCHEMES["mysql"]:
            return url
        return DEFAULT_MYSQL_URL
    return url or DEFAULT_URL


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = django.__version__
    expected = read_expected(args.expected, version, args.driver, args.engine)
    tree = fetch_sdist(version, args.cache)
    install_requirements(tree, args.apps, args.driver)
    result = run_suite(args, tree, args.engine)
    passed = report(args, result, expected)
    if args.compare:
        fallback = DJANGO_MYSQL_ENGINE if engine_family(args.engine) == "mysql" else DJANGO_ENGINE
        theirs = DJANGO_EQUIVALENT.get(args.engine, fallback)
        compare(result, run_suite(args, tree, theirs))
    log("PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
