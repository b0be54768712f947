"""release_connections(): returning connections used outside requests."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from demo.models import Note
from django_sqla_pool import release_connections
from django_sqla_pool.core import registry

pytestmark = pytest.mark.django_db(transaction=True)


def checked_out() -> int:
    return sum(p.checkedout() for p in registry.pools("default"))


def test_decorated_thread_target_returns_its_connection() -> None:
    # The main thread holds none either: as the session's first test it would
    # still hold the one pytest-django created the test database with.
    connection.close()
    seen: list[int] = []

    @release_connections()
    def work() -> None:
        Note.objects.create(text="from a thread")
        seen.append(checked_out())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [1]
    assert checked_out() == 0
    assert Note.objects.count() == 1


def test_context_manager_returns_even_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError), release_connections():
        Note.objects.count()
        assert connection.connection is not None
        1 / 0  # noqa: B018
    assert connection.connection is None


def test_nested_inside_atomic_leaves_the_transaction_alone() -> None:
    with transaction.atomic():
        Note.objects.create(text="kept")
        with release_connections():
            Note.objects.count()
        assert connection.connection is not None
        Note.objects.create(text="still in the same transaction")
    assert Note.objects.count() == 2


def test_decorator_without_parentheses_returns_the_connection_like_atomic() -> None:
    @release_connections
    def work(text: str) -> int:
        Note.objects.create(text=text)
        return checked_out()

    assert work.__name__ == "work"  # functools.wraps: the decorated function keeps its name
    before = checked_out()
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(work("bare")))
    thread.start()
    thread.join()
    assert results == [before + 1]  # inside: the thread's connection is checked out
    assert checked_out() == before  # after: returned
    assert Note.objects.filter(text="bare").count() == 1


def test_anything_but_a_function_is_refused_with_the_usage() -> None:
    with pytest.raises(TypeError, match=r"@release_connections, @release_connections\(\)"):
        release_connections(42)  # type: ignore[call-overload]
