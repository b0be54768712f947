"""Instructions per request cycle, counted by callgrind: repeatable where timings are not.

    valgrind --tool=callgrind python bench/cycle_instructions.py TREE N [--mode pool]

``--mode wrapper`` (default): what Django does per request around the view
(request signals, connect, close) through this package's ENGINE; ``--mode
pool``: a bare checkout and checkin. Run it with N and 3N cycles and divide the
difference of callgrind's "Collected" totals by 2N: the setup cancels out.
TREE is the checkout whose package is measured (also put it first on
PYTHONPATH), so two commits compare in one session on a busy machine
(docs/benchmark.md, "This round's changes"). Background threads and the
garbage collector make the count vary by a few percent between runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tree")
    parser.add_argument("cycles", type=int)
    parser.add_argument("--mode", choices=("wrapper", "pool"), default="wrapper")
    parser.add_argument("--dbname", default="sqla_pool_bench")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.tree, "bench"))
    import worker

    conn = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": args.dbname}
    worker.setup_django("sqla_pool", conn)
    from django.core.signals import request_finished, request_started
    from django.db import connections

    wrapper: Any = connections["default"]

    def request() -> None:
        request_started.send(sender=None)
        wrapper.ensure_connection()
        request_finished.send(sender=None)

    for _ in range(200):  # warm up: the pool, the parameters cache, the sampler thread
        request()
    if args.mode == "pool":
        wrapper.close()
        # Older commits have the registry at the package's root.
        registry = sys.modules.get("django_sqla_pool.registry")
        registry = registry or sys.modules["django_sqla_pool.core.registry"]
        [pool] = registry.pools("default")
        for _ in range(args.cycles):
            pool.checkin(pool.checkout())
    else:
        for _ in range(args.cycles):
            request()
    os._exit(0)  # no interpreter shutdown in the count


if __name__ == "__main__":
    main()
