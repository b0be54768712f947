"""The pool core: one pool per alias and connection parameters, and the process-wide registry.

It knows nothing of Django's settings, requests, views or apps: a pool is
built from a ``PoolSettings`` (``settings.py``), the driver parameters and a
database family (``family.py``; PostgreSQL's in ``postgresql/``). Reading
order: ``pool.py`` (checkout and checkin), ``fairqueue.py``, ``outage.py``,
``counters.py``, then ``registry.py``, the top of the core, which owns the
background loops (``housekeeping.py``, ``leaks.py`` on ``background.py``).
"""
