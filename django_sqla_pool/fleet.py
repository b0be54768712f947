"""Moved to :mod:`django_sqla_pool.observe.fleet`; kept for the import path the docs showed."""

from .observe.fleet import STATES, fleet, read_fleet

__all__ = ["STATES", "fleet", "read_fleet"]
