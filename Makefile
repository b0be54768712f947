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

.PHONY: install demo test lint tox bench
install: $(BIN)/.installed

demo: $(BIN)/.installed
	cd testproject && ../$(BIN)/python manage.py migrate --noinput
	cd testproject && ../$(BIN)/python manage.py demo_setup
	cd testproject && ../$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

tox: $(BIN)/.installed
	$(BIN)/tox run

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

# The suite on the pooled PostGIS ENGINE, the GeoDjango tests included; needs a server with
# PostGIS (Debian: postgresql-15-postgis-3) and GDAL (gdal-bin). The test database gets
# CREATE EXTENSION postgis from Django's PostGIS backend.
GIS_DATABASE_URL ?= postgis-pool://postgres@127.0.0.1:5432/sqla_pool_gis
.PHONY: test-gis
test-gis: $(BIN)/.installed
	DATABASE_URL=$(GIS_DATABASE_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)
