"""Returning connections used outside the request cycle."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any, TypeVar, overload

from django.db import connections

_F = TypeVar("_F", bound=Callable[..., Any])


class ReleaseConnections(ContextDecorator):
    """The context manager and decorator that :func:`release_connections` returns."""

    def __enter__(self) -> ReleaseConnections:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()


@overload
def release_connections(func: _F, /) -> _F: ...
@overload
def release_connections() -> ReleaseConnections: ...
def release_connections(func: Callable[..., Any] | None = None, /) -> Any:
    """Return this thread's database connections to their pools on exit.

    Use it around code that runs outside a request: a thread's target, a
    Celery task, a management command's ``handle()``. Like
    ``transaction.atomic``, it works as a decorator with or without
    parentheses, and as a context manager::

        @release_connections
        def work(): ...

        with release_connections():
            Order.objects.create(...)

    Django returns connections at the end of each request; nothing does so
    for other code, which would otherwise keep its connection checked out
    until the thread ends. A connection still inside ``atomic()`` is left
    alone, so nesting this inside a transaction never cuts it short.
    """
    if func is None:
        return ReleaseConnections()
    if not callable(func):
        raise TypeError(
            f"release_connections takes a function to decorate or nothing, not {func!r}: "
            "use @release_connections, @release_connections() or "
            "`with release_connections():`."
        )
    return ReleaseConnections()(func)
