"""GeoDjango through the pooled PostGIS ENGINE (django_sqla_pool.backends.postgis).

These tests need the suite to run on that ENGINE: DATABASE_URL=postgis-pool://...
on a server where the PostGIS extension is available, and GDAL/GEOS for
GeoDjango (`make test-gis`). The rest of the suite then runs on the PostGIS
ENGINE as well, which shows the pooled behaviour is the same on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, connections

from .conftest import backend_pid, pool_of, wrapper_factory

if not apps.is_installed("geodemo"):
    pytest.skip(
        "GeoDjango tests need the PostGIS ENGINE: run `make test-gis`, or set "
        "DATABASE_URL=postgis-pool://postgres@127.0.0.1:5432/sqla_pool for a server with "
        "PostGIS (Debian: apt-get install postgresql-15-postgis-3 gdal-bin)",
        allow_module_level=True,
    )

from django.contrib.gis.db.backends.postgis.adapter import PostGISAdapter
from django.contrib.gis.db.models.functions import Centroid, Distance
from django.contrib.gis.geos import GEOSGeometry, Point, Polygon
from django.contrib.gis.measure import D
from geodemo.models import Place, Zone

from django_sqla_pool.backends.postgis.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = Point(13.4050, 52.5200, srid=4326)
POTSDAM = Point(13.0645, 52.3906, srid=4326)  # about 27 km from Berlin
HAMBURG = Point(9.9937, 53.5511, srid=4326)  # about 255 km from Berlin
AROUND_BERLIN = Polygon(((13.0, 52.3), (13.8, 52.3), (13.8, 52.7), (13.0, 52.7), (13.0, 52.3)))
AROUND_BERLIN.srid = 4326


@pytest.fixture
def places() -> None:
    Place.objects.bulk_create(
        [Place(name="Berlin", location=BERLIN), Place(name="Potsdam", location=POTSDAM)]
    )
    Place.objects.create(name="Hamburg", location=HAMBURG)
    Zone.objects.create(name="around Berlin", area=AROUND_BERLIN)


@pytest.fixture
def make_geo_wrapper() -> Iterator[Any]:
    """Extra pooled PostGIS wrappers on the test database."""
    yield from wrapper_factory(DatabaseWrapper)


def full_setups(wrapper: Any) -> list[int]:
    """Counts the wrapper's get_new_connection() calls: Django's (and PostGIS's) setup."""
    calls: list[int] = []
    original = wrapper.get_new_connection

    def counting(conn_params: dict[str, Any]) -> Any:
        calls.append(1)
        return original(conn_params)

    wrapper.get_new_connection = counting
    return calls


def geometry_round_trip(wrapper: Any, geometry: GEOSGeometry) -> GEOSGeometry:
    """Send a geometry as a query parameter and read it back, on this wrapper's connection.

    The parameter needs the driver's PostGIS dumper (registered per connection
    with psycopg 3); reading it back goes through the ENGINE's converters.
    """
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT ST_AsEWKT(%s::geometry)", [PostGISAdapter(geometry)])
        return GEOSGeometry(cursor.fetchone()[0])


def test_the_engine_is_the_pooled_postgis_one() -> None:
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connection.ops.postgis
    assert connection.features.gis_enabled


@pytest.mark.usefixtures("places")
def test_distance_lookup_through_the_pool() -> None:
    near = Place.objects.filter(location__distance_lte=(BERLIN, D(km=50))).order_by("name")
    assert [p.name for p in near] == ["Berlin", "Potsdam"]
    far = Place.objects.annotate(d=Distance("location", BERLIN)).get(name="Hamburg")
    assert 250 < far.d.km < 260


@pytest.mark.usefixtures("places")
def test_contains_query_through_the_pool() -> None:
    assert [z.name for z in Zone.objects.filter(area__contains=POTSDAM)] == ["around Berlin"]
    assert not Zone.objects.filter(area__contains=HAMBURG).exists()


@pytest.mark.usefixtures("places")
def test_geometries_come_back_as_geos_geometries() -> None:
    berlin = Place.objects.get(name="Berlin")
    assert isinstance(berlin.location, GEOSGeometry)
    assert berlin.location.srid == 4326
    assert berlin.location.coords == pytest.approx(BERLIN.coords)
    zone = Zone.objects.annotate(c=Centroid("area")).get()
    assert isinstance(zone.area, Polygon) and zone.area.equals(AROUND_BERLIN)
    assert isinstance(zone.c, GEOSGeometry)
    assert zone.c.coords == pytest.approx((13.4, 52.5))


@pytest.mark.usefixtures("places")
def test_geodjango_works_on_a_taken_back_connection() -> None:
    pid = backend_pid(connection)
    connection.close()  # the end of a request: back to the pool, parked for this wrapper
    setups = full_setups(connection)
    try:
        # The next request takes the same connection back without PostGIS's setup...
        assert Place.objects.filter(location__distance_lte=(BERLIN, D(km=50))).count() == 2
        assert backend_pid(connection) == pid
        assert setups == []
        # ...and the adapters registered on it at its first setup still work.
        Place.objects.create(name="Spandau", location=Point(13.2, 52.53, srid=4326))
        assert Place.objects.get(name="Spandau").location.x == pytest.approx(13.2)
        assert geometry_round_trip(connection, POTSDAM).equals(POTSDAM)
    finally:
        del connection.get_new_connection


def test_postgis_setup_runs_on_a_pooled_connection_another_wrapper_used(
    make_geo_wrapper,
) -> None:
    first = make_geo_wrapper("geo", pool_size=1, max_overflow=0)
    pid = backend_pid(first)
    first.close()
    second = make_geo_wrapper("geo", pool_size=1, max_overflow=0)
    setups = full_setups(second)
    assert geometry_round_trip(second, HAMBURG).equals(HAMBURG)
    assert backend_pid(second) == pid  # the pool's one connection, set up again
    assert setups == [1]
    second.close()
    # Back to the first wrapper: another wrapper used the connection since, so the full path.
    setups = full_setups(first)
    assert geometry_round_trip(first, BERLIN).equals(BERLIN)
    assert (backend_pid(first), setups) == (pid, [1])


def test_the_postgis_version_probe_borrows_and_returns_a_pooled_connection(
    make_geo_wrapper,
) -> None:
    wrapper = make_geo_wrapper("geo_version")
    # SELECT version(), SELECT postgis_lib_version(), each in a temporary_connection().
    version = wrapper.ops.spatial_version
    assert version[0] >= 3 and len(version) == 3
    # temporary_connection() closed it each time: returned to the pool, not left open.
    assert wrapper.connection is None
    pool = pool_of(wrapper)
    checkouts = pool.stats.checkouts
    assert (pool.checkedout(), pool.stats.checkins) == (0, checkouts)
    assert wrapper.ops.spatial_version == version
    assert pool.stats.checkouts == checkouts  # cached per wrapper: no more queries
    # The probe itself on a connection the wrapper takes back.
    backend_pid(wrapper)
    wrapper.close()
    setups = full_setups(wrapper)
    lib_version = wrapper.ops.postgis_lib_version()
    assert setups == []
    assert tuple(int(part) for part in lib_version.split(".")[:3]) == version


def test_pool_options_and_checks_apply_to_the_postgis_engine(make_geo_wrapper) -> None:
    wrapper = make_geo_wrapper("geo_opts", pool_size="2", statement_timeout="1500")
    with wrapper.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "1500ms"
    assert pool_of(wrapper).size() == 2
    from django_sqla_pool.checks import pool_setting_errors

    bad = {**connection.settings_dict, "OPTIONS": {"pool_size": "0"}}
    [error] = pool_setting_errors({"geo_bad": bad})
    assert error.id == "django_sqla_pool.E001" and "'pool_size'" in error.msg
