"""Riding out a short server outage: who retries, and when.

When a pool cannot open a connection because the server is restarting or
briefly unreachable, checkouts wait for it for up to ``connect_grace``
seconds from the first failure instead of failing at once. One thread at a
time makes the connection attempt (with backoff and jitter between
attempts); the others wait for its outcome, so a hundred waiting requests
cost the server one connection attempt, not a hundred. Beyond the grace
bound checkouts fail fast: one that arrives while another thread's attempt
is under way waits for that attempt's outcome (at most connect_timeout) and
checks out if the server answered, or fails if it did not; one that finds
no attempt under way makes a single attempt itself. So the first checkouts
after the server returns succeed, and none fails while an attempt that is
about to succeed is in progress.
"""

from __future__ import annotations

import random
import threading
import time

#: Seconds between one thread's attempts: doubling from BACKOFF_FIRST up to
#: BACKOFF_MAX, each multiplied by a random factor in [0.5, 1] so the
#: processes of a fleet do not retry in step.
BACKOFF_FIRST = 0.025
BACKOFF_MAX = 0.5


def describe(error: BaseException) -> str:
    """The driver's message on one line (libpq's never contains the password)."""
    return " ".join(str(error).split()) or type(error).__name__


class ServerDown(Exception):
    """Raised in place of a connection attempt that another thread is making."""

    def __init__(self, last_error: str) -> None:
        super().__init__(last_error)
        self.last_error = last_error


#: What Outage.wait_turn() tells a checkout to do.
RETRY = "retry"  # the server answered again: check out normally
ATTEMPT = "attempt"  # this thread makes the next connection attempt
GIVE_UP = "give_up"  # the grace or the checkout's own deadline is over


class Outage:
    """The reconnect state of one pool; all of it guarded by one condition."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        #: time.monotonic() of the first failure of this outage; None while up.
        self.since: float | None = None
        self.last_error = ""
        self._cond = threading.Condition(threading.Lock())
        self._attempter: int | None = None
        self._failures = 0
        self._next_attempt = 0.0
        #: Outcomes (failed or answered) of connection attempts so far: a
        #: checkout waiting for an attempt knows from it when that one ended.
        self._outcomes = 0

    def gate(self) -> None:
        """Called before opening a connection: raise ServerDown unless this thread may try."""
        if self.since is not None and self._attempter != threading.get_ident():
            raise ServerDown(self.last_error)

    def claim(self) -> bool:
        """Take the next attempt without waiting (a background thread); False if not now.

        While the server is up anyone may connect. During an outage this
        thread gets the turn only when nobody else has it; a checkout waiting
        in wait_turn() then waits for this attempt's outcome like any other.
        """
        with self._cond:
            if self.since is None:
                return True
            if self._attempter is None:
                self._attempter = threading.get_ident()
                return True
            return False

    def failed(self, error: BaseException) -> bool:
        """A connection attempt failed; True when this began an outage."""
        now = time.monotonic()
        with self._cond:
            began = self.since is None
            if began:
                self.since = now
                self._failures = 0
            self.last_error = describe(error)
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self._failures)
            self._failures += 1
            self._outcomes += 1
            self._next_attempt = now + delay * random.uniform(0.5, 1.0)
            if self._attempter == threading.get_ident():
                self._attempter = None
            self._cond.notify_all()
            return began

    def answered(self) -> float | None:
        """The server answered a connection attempt; the seconds it was away, if it was."""
        with self._cond:
            since = self.since
            self.since = None
            self._attempter = None
            self._outcomes += 1
            self._cond.notify_all()
        return None if since is None else time.monotonic() - since

    def release(self) -> None:
        """This thread ends its turn without having reached the server either way."""
        with self._cond:
            if self._attempter == threading.get_ident():
                self._attempter = None
                self._cond.notify_all()

    def wait_turn(self, deadline: float, attempted_late: bool) -> str:
        """Wait until the server answered, or this thread should attempt, or give up.

        ``attempted_late``: this checkout already made its one attempt after
        the grace ran out.
        """
        me = threading.get_ident()
        awaited: int | None = None  # past the grace: the attempt this thread waits for
        with self._cond:
            while True:
                since = self.since
                if since is None:
                    return RETRY
                now = time.monotonic()
                grace_end = since + self.grace
                if now >= grace_end:
                    # Fail fast, but never while an attempt that may succeed
                    # is under way: wait for its outcome (the attempt is
                    # bounded by connect_timeout; the wait also by this
                    # checkout's deadline). If it failed, give up without an
                    # attempt of our own; if nobody is attempting, one thread
                    # at a time finds out, without backoff.
                    ended = awaited is not None and self._outcomes != awaited
                    if attempted_late or ended or now >= deadline:
                        return GIVE_UP
                    if self._attempter is None:
                        self._attempter = me
                        return ATTEMPT
                    if awaited is None:
                        awaited = self._outcomes
                    self._cond.wait(deadline - now)
                    continue
                if now >= deadline:
                    return GIVE_UP
                if self._attempter is None and now >= self._next_attempt:
                    self._attempter = me
                    return ATTEMPT
                until = min(deadline, grace_end)
                if self._attempter is None:
                    until = min(until, self._next_attempt)
                self._cond.wait(until - now)
