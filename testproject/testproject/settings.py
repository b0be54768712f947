"""Settings of the demo project; the database comes from DATABASE_URL (django-environ)."""

from pathlib import Path

import environ

import django_sqla_pool.dburl  # noqa: F401  (the postgres-pool:// and postgis-pool:// schemes)

from .embedded_pg import ensure_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
ensure_database_url()

SECRET_KEY = env("SECRET_KEY", default="demo-only-not-secret")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sqla_pool",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The pool's options may ride on the URL: postgres-pool://.../db?pool_size=5&max_overflow=5,
# and postgis-pool:// selects the pooled PostGIS ENGINE (GeoDjango).
DATABASES = {"default": env.db_url("DATABASE_URL")}
# The demo pools plain postgres:// and postgis:// URLs too (the README's `make test` examples).
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "django_sqla_pool.backends.postgresql",
    "django.contrib.gis.db.backends.postgis": "django_sqla_pool.backends.postgis",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
# GeoDjango imports GDAL, so its apps are installed only when the URL asks for PostGIS.
if DATABASES["default"]["ENGINE"] == "django_sqla_pool.backends.postgis":
    INSTALLED_APPS += ["django.contrib.gis", "geodemo"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})
for key, value in {
    "pool_size": 5,
    "max_overflow": 5,
    "pool_timeout": 10,
    "statement_timeout": 30000,
}.items():
    DATABASES["default"]["OPTIONS"].setdefault(key, value)

# The token that shows /health/'s numbers and /metrics/ to callers that cannot
# log in (Authorization: Bearer ...); unset: only users with view_poolstats.
DJANGO_SQLA_POOL_STATS_TOKEN = env("METRICS_TOKEN", default=None)

TEST_RUNNER = "demo.runner.QueryFirstRunner"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_sqla_pool": {
            "handlers": ["console"],
            "level": env("POOL_LOG_LEVEL", default="WARNING"),
        }
    },
}
