"""The throwaway-cluster helper itself: what start() is given applies, until the next start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_sqla_pool.core.postgresql.driver import Database

from .throwaway import Cluster

#: In the range of modules with a cluster of their own (see throwaway.py).
PORT = 25454


@pytest.fixture(scope="module")
def spare_cluster() -> Iterator[Cluster]:
    with Cluster(PORT) as cluster:
        yield cluster


@pytest.fixture
def spare(spare_cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster, stopped: each test starts it its own way."""
    yield spare_cluster
    if spare_cluster.is_running():
        spare_cluster.stop()


def test_a_cluster_started_with_a_password_asks_tcp_clients_for_it(spare: Cluster) -> None:
    spare.start(password="pw-thrown-away-'7")
    with pytest.raises(Database.OperationalError, match="password authentication failed"):
        Database.connect(**spare.params(password="wrong"))
    Database.connect(**spare.params()).close()  # params() carry the password
    assert spare.settings_dict({})["PASSWORD"] == "pw-thrown-away-'7"
    assert spare.execute(
        "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres'"
    ) == [(True,)]
    spare.stop()
    spare.start()  # and without one, trusted again
    Database.connect(**spare.params(password="wrong")).close()


def test_server_parameters_given_to_start_apply_and_survive_a_restart(spare: Cluster) -> None:
    spare.start(default_transaction_read_only="on")
    assert spare.execute("SHOW default_transaction_read_only") == [("on",)]
    with pytest.raises(Database.Error, match="read-only transaction"):
        spare.execute("CREATE TABLE written (v int)")
    spare.restart()
    assert spare.execute("SHOW default_transaction_read_only") == [("on",)]
    spare.stop()
    spare.start()
    assert spare.execute("SHOW default_transaction_read_only") == [("off",)]
