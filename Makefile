# Two commands for a fresh clone: `make demo` and `make test`.
# Both create .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

.PHONY: install demo test lint tox bench build-check faults faults-short
install: $(BIN)/.installed

demo: $(BIN)/.installed
	cd testproject && ../$(BIN)/python manage.py migrate --noinput
	cd testproject && ../$(BIN)/python manage.py demo_setup --port $(PORT)
	cd testproject && ../$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

tox: $(BIN)/.installed
	$(BIN)/tox run

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

# The fault harness (faults/run.py): a throwaway PostgreSQL 15 on port 25431, real servers,
# PgBouncer, Celery on Redis db 11. Run as root (it runs PostgreSQL as the postgres user).
$(BIN)/.faults-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[faults]"
	touch $@

# Then faults/mariadb.py: a throwaway MariaDB on port 25407 (mariadb-install-db; needs Debian's
# mariadb-server and mysqlclient): restart, KILL storm and wait_timeout; the short run: restart only.
faults: $(BIN)/.faults-installed
	$(BIN)/python faults/run.py
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[mysql]"
	$(BIN)/python faults/mariadb.py

faults-short: $(BIN)/.faults-installed
	$(BIN)/python faults/run.py --short
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[mysql]"
	$(BIN)/python faults/mariadb.py --only restart
# Build the sdist and wheel, twine check, use the wheel in a clean venv, run
# the sdist's tests from the unpacked sdist (see .ci/build-check).
build-check: $(BIN)/.installed
	BIN=$(BIN) .ci/build-check
# Django's own test suite with this ENGINE (djangosuite/run.py), in a venv of
# its own per Django version and driver:
#   make django-suite DJANGO=6.1 DRIVER=psycopg3 [DJSUITE_ARGS="--apps backends"]
# MySQL/MariaDB (DRIVER=mysqlclient builds mysqlclient: needs libmariadb-dev, pkg-config, gcc):
#   make django-suite DJANGO=6.1 DRIVER=mysqlclient DJSUITE_ARGS="--engine django.db.backends.mysql"
DJANGO ?= 6.1
DRIVER ?= psycopg3
DJSUITE_PYTHON ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12) python3.12)
DJSUITE_VENV := .venv-djsuite-$(DJANGO)-$(DRIVER)
DJSUITE_DRIVER_PKG := $(if $(filter psycopg2,$(DRIVER)),psycopg2-binary,$(if $(filter mysqlclient,$(DRIVER)),mysqlclient>=2.2,psycopg[binary]))

$(DJSUITE_VENV)/bin/.installed: pyproject.toml
	$(if $(filter mysqlclient,$(DRIVER)),@pkg-config --exists libmariadb || pkg-config --exists mysqlclient || \
		{ echo "mysqlclient needs a client library to build: apt-get install libmariadb-dev pkg-config build-essential"; exit 1; })
	$(DJSUITE_PYTHON) -m venv $(DJSUITE_VENV)
	$(DJSUITE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DJSUITE_VENV)/bin/python -m pip install -q -e . "Django~=$(DJANGO).0" "$(DJSUITE_DRIVER_PKG)"
	touch $@

.PHONY: django-suite
django-suite: $(DJSUITE_VENV)/bin/.installed
	$(DJSUITE_VENV)/bin/python djangosuite/run.py $(DJSUITE_ARGS)

# The suite on the pooled PostGIS ENGINE, the GeoDjango tests included; needs a server with
# PostGIS (Debian: postgresql-15-postgis-3) and GDAL (gdal-bin). The test database gets
# CREATE EXTENSION postgis from Django's PostGIS backend.
GIS_DATABASE_URL ?= postgis-pool://postgres@127.0.0.1:5432/sqla_pool_gis
.PHONY: test-gis
test-gis: $(BIN)/.installed
	DATABASE_URL=$(GIS_DATABASE_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite's family-neutral tests on MySQL/MariaDB (the machine's server on 3306; PostgreSQL-only
# tests skip with their reason): backend, fork, fairness, timeouts, health, stats, poolstats, admin,
# release, overflow, threads, warm start and idle shrink, thread affinity, and tests/test_mysql.py.
# Needs mysqlclient (pip install ".[mysql]").
MYSQL_DATABASE_URL ?= mysql-pool://root@127.0.0.1:3306/sqla_pool_mysql
MYSQL_TESTS ?= tests/test_mysql.py tests/test_backend.py tests/test_fork.py tests/test_fairqueue.py \
	tests/test_checkout_timeout.py tests/test_statement_timeouts.py tests/test_health.py \
	tests/test_liveness.py tests/test_stats.py tests/test_poolstats_command.py tests/test_admin.py \
	tests/test_release.py tests/test_overflow.py tests/test_threads.py tests/test_housekeeping.py \
	tests/test_affinity.py
.PHONY: test-mysql
test-mysql: $(BIN)/.installed
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[mysql]"
	DATABASE_URL=$(MYSQL_DATABASE_URL) $(BIN)/python -m pytest $(MYSQL_TESTS) $(PYTEST_ARGS)
