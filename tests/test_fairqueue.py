"""The first-come first-served queue under the pool (no database needed)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.util.queue import Empty

from django_sqla_pool.core.fairqueue import FairQueue


def wait_for_waiters(queue: FairQueue[str], count: int) -> None:
    deadline = time.monotonic() + 5
    while queue.waiting < count:
        assert time.monotonic() < deadline, "waiter never queued"
        time.sleep(0.001)


def test_returned_item_goes_to_the_waiter_not_to_a_newcomer() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(timeout=5)))
    waiter.start()
    wait_for_waiters(queue, 1)
    queue.put("conn")
    # A thread arriving right now finds nothing: the item is already the waiter's.
    with pytest.raises(Empty):
        queue.get(block=False)
    waiter.join(5)
    assert got == ["conn"]


def test_waiters_are_served_in_arrival_order() -> None:
    queue: FairQueue[int] = FairQueue(maxsize=3)
    order: list[tuple[int, int]] = []
    threads = []
    for n in range(3):
        t = threading.Thread(target=lambda n=n: order.append((n, queue.get(timeout=5))))
        t.start()
        wait_for_waiters(queue, n + 1)
        threads.append(t)
    for item in (10, 11, 12):
        queue.put(item)
    for t in threads:
        t.join(5)
    assert sorted(order) == [(0, 10), (1, 11), (2, 12)]


def test_timeout_raises_empty_and_leaves_no_waiter_behind() -> None:
    queue: FairQueue[int] = FairQueue(maxsize=1)
    with pytest.raises(Empty):
        queue.get(timeout=0.05)
    assert queue.waiting == 0
    queue.put(1)
    assert queue.get(block=False) == 1


def test_put_keeps_items_beyond_maxsize_and_lifo_order() -> None:
    # Overflow connections are closed by the idle rule (housekeeping.py), not when returned.
    queue: FairQueue[int] = FairQueue(maxsize=2, use_lifo=True)
    queue.put(1)
    queue.put(2)
    queue.put(3, block=False)
    assert (queue.qsize(), queue.full()) == (3, True)
    assert queue.get() == 3
    assert queue.get() == 2


def test_remove_idle_takes_the_oldest_matching_items_up_to_the_limit() -> None:
    queue: FairQueue[int] = FairQueue(maxsize=2)
    for item in (1, 2, 3, 4):
        queue.put(item)
    assert queue.remove_idle(lambda item: item != 2, 2) == [1, 3]
    assert queue.remove_idle(lambda item: True, 0) == []
    assert [queue.get(), queue.get()] == [2, 4]
