"""Settings of the harness's project; every knob comes from the environment.

FAULTS_BACKEND picks what serves the database:
  sqla    this package's ENGINE (CONN_MAX_AGE=0, its pool)
  djpool  Django's PostgreSQL backend with its own pool (OPTIONS["pool"], psycopg_pool)
  plain   Django's PostgreSQL backend, persistent connections (CONN_MAX_AGE=60, health checks)
FAULTS_FAMILY=mysql (faults/mariadb.py) serves a MariaDB instead, with:
  sqla     this package's MySQL ENGINE (CONN_MAX_AGE=0, its pool)
  plain0   Django's MySQL backend, a connection per request (CONN_MAX_AGE=0)
  plain60  Django's MySQL backend, persistent connections (CONN_MAX_AGE=60, health checks)
"""

import json
import os

BACKEND = os.environ.get("FAULTS_BACKEND", "sqla")
SECRET_KEY = "faults-harness-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "faultsite.urls"
WSGI_APPLICATION = "faultsite.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIDDLEWARE: list[str] = []
INSTALLED_APPS = ["django.contrib.contenttypes", "faultsite"]
if BACKEND == "sqla":
    INSTALLED_APPS.append("django_sqla_pool")

_host = os.environ.get("FAULTS_DB_HOST", "127.0.0.1")
_port = int(os.environ.get("FAULTS_DB_PORT", "25431"))
# Pool sizes: one connection per request thread at most, as a user would size them.
_threads = int(os.environ.get("FAULTS_THREADS", "8"))
_timeout_ms = os.environ.get("FAULTS_STATEMENT_TIMEOUT")  # set in the PgBouncer scenarios
_extra = json.loads(os.environ.get("FAULTS_OPTIONS", "{}"))  # e.g. PgBouncer: prepare_threshold

_db = {
    "NAME": "faults",
    "USER": "postgres",
    "HOST": _host,
    "PORT": _port,
    "OPTIONS": {"application_name": f"faults-{BACKEND}"},
    "DISABLE_SERVER_SIDE_CURSORS": os.environ.get("FAULTS_PGBOUNCER_MODE") == "transaction",
}
if BACKEND == "sqla":
    _db["ENGINE"] = "django_sqla_pool.backends.postgresql"
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"].update(pool_size=_threads, max_overflow=4, pool_timeout=5)
    if _timeout_ms:
        _db["OPTIONS"]["statement_timeout"] = int(_timeout_ms)
    _db["OPTIONS"].update(json.loads(os.environ.get("FAULTS_SQLA_OPTIONS", "{}")))
else:
    _db["ENGINE"] = "django.db.backends.postgresql"
    if _timeout_ms:  # Django's documented way: libpq's startup options
        _db["OPTIONS"]["options"] = f"-c statement_timeout={_timeout_ms}"
    if BACKEND == "djpool":
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"]["pool"] = {"min_size": 2, "max_size": _threads + 4, "timeout": 5}
    else:
        _db["CONN_MAX_AGE"] = 60
        _db["CONN_HEALTH_CHECKS"] = True
_db["OPTIONS"].update(_extra)

if os.environ.get("FAULTS_FAMILY") == "mysql":
    _db = {"NAME": "faults", "USER": "root", "PASSWORD": "", "HOST": _host, "PORT": _port}
    if BACKEND == "sqla":
        _db["ENGINE"] = "django_sqla_pool.backends.mysql"
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"] = {"pool_size": _threads, "max_overflow": 4, "pool_timeout": 5}
        _db["OPTIONS"].update(json.loads(os.environ.get("FAULTS_SQLA_OPTIONS", "{}")))
    else:
        _db["ENGINE"] = "django.db.backends.mysql"
        _db["CONN_MAX_AGE"] = 60 if BACKEND == "plain60" else 0
        _db["CONN_HEALTH_CHECKS"] = BACKEND == "plain60"
DATABASES = {"default": _db}

CELERY_BROKER_URL = os.environ.get("FAULTS_REDIS_URL", "redis://127.0.0.1:6379/11")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_sqla_pool": {"handlers": ["console"], "level": "WARNING"}},
}
