"""Returning connections used outside the request cycle."""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any

from django.db import connections


class release_connections(ContextDecorator):  # noqa: N801  (used like a function)
    """Return this thread's database connections to their pools on exit.

    Use it around code that runs outside a request: a thread's target, a
    Celery task, a management command's ``handle()``::

        @release_connections()
        def work(): ...

        with release_connections():
            Order.objects.create(...)

    Django returns connections at the end of each request; nothing does so
    for other code, which would otherwise keep its connection checked out
    until the thread ends. A connection still inside ``atomic()`` is left
    alone, so nesting this inside a transaction never cuts it short.
    """

    def __enter__(self) -> release_connections:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
