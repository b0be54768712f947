"""The pool of one alias and one set of connection parameters, in one process.

A SQLAlchemy QueuePool with a first-come first-served queue, a liveness
check that costs no round trip for recently used connections, jittered
recycling, counters fed by the pool's events, and errors that say which
pool failed and why.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import traceback
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolResetState, QueuePool

# Private names, present in SQLAlchemy 2.0 and 2.1: the record type checkout()
# returns and the reset modes QueuePool stores.
from sqlalchemy.pool.base import _ConnectionRecord, reset_commit, reset_rollback

from . import outage as outage_module
from .counters import PoolStats
from .credentials import Credentials
from .errors import CredentialsError, PoolConnectError, PoolTimeout, ServerSettingsError
from .fairqueue import FairQueue
from .family import Family
from .outage import Outage, ServerDown
from .settings import PoolSettings
from .throttle import Throttle

logger = logging.getLogger("django_sqla_pool")


# Overflow connections are not closed when returned, as a plain QueuePool
# does (reopening one moments later under steady load above pool_size costs
# a server process, ~3 ms): every idle connection, overflow or not, is closed
# by the one idle rule of housekeeping.py.

#: Seconds of waiting for a connection after which the checkout is logged at
#: WARNING (half of pool_timeout if that is shorter).
SLOW_WAIT = 1.0

#: At most one slow-checkout line and one timeout line per pool in this many
#: seconds; each says how many it stands for and the longest wait among them.
WARNING_INTERVAL = 10.0


# Why a connection was invalidated: passed to record.invalidate(), read back
# as ``cause`` by the invalidate listener to count it.
class _Recycle(sa_exc.DisconnectionError):
    cause = "recycle"


class _PingFailed(sa_exc.DisconnectionError):
    cause = "pre_ping"


class _Retiring(sa_exc.DisconnectionError):
    """Opened before the pool's connections were retired (see _stale_before)."""

    cause = "pre_ping"


class _Stale(_Retiring):
    """Older than a connection whose ping failed: the server likely dropped it too."""

    cause = "pre_ping"


class _Drained(_Retiring):
    """Open when drain() was called: replaced, idle at once, busy when returned."""

    cause = "drained"


class _FailedOver(_Retiring):
    """Open when a connection found its server read-only: likely the old primary."""

    cause = "failover"


class _Disconnected(Exception):
    cause = "disconnect"


class _Retired(Exception):
    cause = None  # the pool was closed; not an invalidation


def _threads(count: int, adjective: str = "") -> str:
    """``0 threads``, ``1 other thread``, ``2 other threads``: for log lines and errors."""
    words = [str(count), adjective, "thread" if count == 1 else "threads"]
    return " ".join(word for word in words if word)


class Holding:
    """One checked-out connection: who took it, when, and from where."""

    __slots__ = ("backend_pid", "reported", "since", "stack", "thread_id")

    def __init__(
        self, since: float, thread_id: int, backend_pid: int | None, stack: str | None = None
    ) -> None:
        self.since = since
        self.thread_id = thread_id
        self.backend_pid = backend_pid
        self.stack = stack
        self.reported = False

    @property
    def thread(self) -> str:
        """The name of the thread that took the connection (looked up when reported)."""
        for thread in threading.enumerate():
            if thread.ident == self.thread_id:
                return thread.name
        return f"ended thread {self.thread_id}"


class SqlaPool(QueuePool):
    """QueuePool for one Django alias; see the module docstring."""

    _queue_class = FairQueue  # type: ignore[assignment]
    # SQLAlchemy names a pool's logger after its class's module, which would put
    # its own lines ("Created new connection", "Pool disposed") under the
    # django_sqla_pool logger. Keep them where SQLAlchemy documents them:
    # sqlalchemy.pool.impl.QueuePool.<pool name>.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.QueuePool"

    def __init__(
        self,
        *,
        alias: str,
        name: str,
        settings: PoolSettings,
        connect_params: dict[str, Any],
        family: Family,
    ) -> None:
        self.alias = alias
        self.family = family
        self.name = name
        self.settings = settings
        self.stats = PoolStats()
        self.pid = os.getpid()
        self.retired = False
        self.held: dict[int, Holding] = {}
        self._connect_params = connect_params
        #: Connections opened before this time.monotonic() are replaced: idle ones
        #: at checkout, busy ones when returned. Set by a failed ping, drain() and
        #: a failover, with the cause they are counted under.
        self._stale_before = -math.inf
        self._stale_cause: type[_Retiring] = _Stale
        # With libpq's target_session_attrs asking for a writer, a ping that finds
        # the server read-only is a failover too (no write has to fail first).
        self._wants_writer = str(connect_params.get("target_session_attrs") or "").strip() in (
            "read-write",
            "primary",
        )
        self.credentials = (
            Credentials(settings.credentials, alias, settings.credentials_ttl)
            if settings.credentials is not None
            else None
        )
        self._abandoned: list[_ConnectionRecord] = []
        self._outage = Outage(settings.connect_grace)
        self._where = f"database alias {alias!r} ({name})"
        # A wait this long is logged at WARNING: the pool is close to exhaustion.
        self._slow_wait = min(SLOW_WAIT, settings.pool_timeout / 2)
        self._slow_log = Throttle(WARNING_INTERVAL)
        self._timeout_log = Throttle(WARNING_INTERVAL)
        self._failover_log = Throttle(WARNING_INTERVAL)
        reset = settings.pool_reset_on_return
        super().__init__(
            self._open_connection,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            timeout=settings.pool_timeout,
            use_lifo=settings.pool_use_lifo,
            reset_on_return=None
            if reset == "none"
            else ("commit" if reset == "commit" else "rollback"),
            pre_ping=False,  # our own checkout listener decides when a ping is needed
            logging_name=name,
        )
        # Checkout and checkin have no listeners: the checks run in _do_get()
        # and checkin(), saving SQLAlchemy's event dispatch on every request.
        event.listen(self, "connect", self._on_connect)
        event.listen(self, "invalidate", self._on_invalidate)
        event.listen(self, "close", self._on_close)
        event.listen(self, "close_detached", self._on_close_detached)
        if reset == "discard":
            event.listen(self, "reset", self._on_reset_discard)

    def __repr__(self) -> str:
        return f"<SqlaPool {self.name}>"

    # -- gauges ---------------------------------------------------------------

    @property
    def waiting(self) -> int:
        queue = self._pool
        return queue.waiting if isinstance(queue, FairQueue) else 0

    def gauges(self) -> dict[str, int]:
        checked_out = self.checkedout()
        return {
            "pool_size": self.settings.pool_size,
            "max_overflow": self.settings.max_overflow,
            "checked_out": checked_out,
            "idle": self.checkedin(),
            "overflow": max(0, self.overflow()),
            "waiting": self.waiting,
        }

    # -- checkout and checkin, as the backend uses them ------------------------

    # SQLAlchemy's pool.connect() wraps each checkout in a _ConnectionFairy (a
    # proxy, a weakref finalizer and its bookkeeping), which costs more than
    # the rest of a checkout and checkin together. The backend instead holds
    # the pool's record itself and has its own garbage-collection safety net
    # (see DatabaseWrapper.__init__), so checkout() and checkin() do the
    # fairy's work directly: the same queue, overflow accounting, timeout,
    # reconnection of invalidated records, reset, events and counters.

    def abandoned(self, record: _ConnectionRecord) -> None:
        """Take back a connection whose wrapper was garbage-collected while holding it.

        Called from a finalizer, which may run inside any code of any thread,
        even while this pool's queue lock is held: so only note it here (a
        list append is atomic) and return it at the next checkout or checkin.
        """
        self._abandoned.append(record)

    def reclaim_abandoned(self) -> None:
        """Return what the garbage-collection hook noted (a retired pool closes it)."""
        while self._abandoned:
            try:
                record = self._abandoned.pop()
            except IndexError:  # another thread took the last one
                return
            self.checkin(record)

    def checkout(self, timeout: float | None = None) -> _ConnectionRecord:
        """Take a connection, waiting at most ``timeout`` seconds (None: ``pool_timeout``).

        The bound covers the whole checkout: the wait for a free connection,
        the liveness ping, and any wait for the server to come back (a health
        probe passes a short one). A new connection opened on the way is
        bounded by libpq's connect_timeout set to the time left, which libpq
        rounds up to whole seconds and at least 2.
        """
        if timeout is not None:
            # Only this thread's waits read the deadline; the default path
            # below sets nothing.
            local = self._pool.local  # type: ignore[attr-defined]
            local.deadline = time.monotonic() + max(timeout, 0.0)
            try:
                return self.checkout()
            finally:
                local.deadline = None
        if self._abandoned:
            self.reclaim_abandoned()
        start = time.monotonic()
        retried = False
        while True:
            try:
                record: _ConnectionRecord = self._do_get()
                try:
                    # Private API (2.0 and 2.1): opens a new connection in a record
                    # whose connection was invalidated (by the liveness check in
                    # _do_get(), or earlier); otherwise returns the open one.
                    record.get_connection()
                except BaseException as error:
                    # Private API (2.0 and 2.1): invalidates and returns the record.
                    record._checkin_failed(error, _fairy_was_created=False)
                    raise
                break
            except sa_exc.TimeoutError:
                if retried:
                    self._outage.release()
                raise self._timed_out(start) from None
            except (
                self.family.Error,
                sa_exc.InvalidRequestError,
                ServerDown,
                CredentialsError,
            ) as error:
                # Returns when this thread should try again; raises otherwise.
                self._wait_for_server(error, start, retried)
                retried = True
        if retried:
            self._outage.release()
        self._handed_out(record, start, time.monotonic())
        return record

    def _timed_out(self, start: float) -> PoolTimeout:
        waited = time.monotonic() - start
        self.stats.timed_out(waited)
        message = (
            f"django_sqla_pool: no connection free for database alias {self.alias!r} "
            f"after waiting {waited:.2f} s (pool_size={self.settings.pool_size}, "
            f"max_overflow={self.settings.max_overflow}, all "
            f"{self.settings.max_connections} in use, {_threads(self.waiting, 'other')} "
            "waiting). Return connections sooner (see release_connections()), "
            "or raise pool_size, max_overflow or pool_timeout in OPTIONS."
        )
        summary = self._timeout_log.note(waited)
        if summary is not None:
            count, worst = summary
            logger.warning(
                "%s [pool %s; %d timed out since the last such line, longest wait %.2f s]",
                message,
                self.name,
                count,
                worst,
            )
        return PoolTimeout(message)

    def _wait_for_server(self, error: BaseException, start: float, retried: bool) -> None:
        """After a failed connection: wait for the server within connect_grace, or raise.

        Returns when the server answered another thread's attempt, or when
        this thread is to make the next attempt; raises PoolConnectError
        when the failure is permanent or the grace (or this checkout's own
        bound) is over.
        """
        outage = self._outage
        outage.release()
        if not isinstance(error, ServerDown) and (
            not outage.grace or not self._is_transient(error)
        ):
            if isinstance(error, PoolConnectError):
                raise error  # already says which pool and why
            raise PoolConnectError(
                f"django_sqla_pool: could not open a connection for database alias "
                f"{self.alias!r} ({self.name}): {error}".rstrip()
            ) from error
        if not retried:
            self.stats.waited_for_server()
        deadline = getattr(self._pool.local, "deadline", None)  # type: ignore[attr-defined]
        if deadline is None:
            deadline = start + self.settings.pool_timeout
        # After the grace a checkout makes at most one attempt of its own.
        since = outage.since
        late = retried and since is not None and time.monotonic() >= since + outage.grace
        turn = outage.wait_turn(deadline, attempted_late=late)
        if turn != outage_module.GIVE_UP:
            return
        since = outage.since
        if since is None:  # answered just now: try once more
            return
        self.stats.server_unreachable()
        down = time.monotonic() - since
        bound = (
            f"connect_grace={outage.grace:g} s is over"
            if down >= outage.grace
            else f"this checkout's bound of {deadline - start:.2f} s is over"
        )
        raise PoolConnectError(
            f"django_sqla_pool: could not open a connection for database alias "
            f"{self.alias!r} ({self.name}): the server has been unreachable for {down:.1f} s "
            f"and {bound}; checkouts fail without waiting until a connection succeeds "
            f"again. Last error: {outage.last_error}"
        ) from error

    def park(self, record: _ConnectionRecord, owner: object) -> bool:
        """Return a clean idle connection that ``owner`` may take back with reclaim().

        The checkin of a connection with nothing to reset (no transaction
        open, no reset or checkin listeners, pool not retired): counters,
        the mark, the queue. False, with nothing done, when any of that does
        not hold; the caller then returns it with checkin().
        """
        dbapi_conn = record.dbapi_connection
        if (
            self.retired
            or self._abandoned
            or record.finalize_callback
            or not self.family.idle_and_open(dbapi_conn)
            or self.dispatch.reset
            or self.dispatch.checkin
            or record.info["born"] < self._stale_before
        ):
            return False
        now = time.monotonic()
        self._taken_in(record, now)
        info = record.info
        info["returned"] = now
        # Marked before it enters the queue: any checkout after this clears it.
        info["parked_by"] = owner
        self._do_return_conn(record)
        return True

    def reclaim(self, record: _ConnectionRecord, dbapi_conn: Any, owner: object) -> bool:
        """Check out again, for ``owner``, the record park() returned for it, if still idle.

        park() marked the record and every other checkout clears the mark, so
        a record still marked and still in the queue has not been used by
        anyone since. False when another thread took it, when its connection
        was replaced, or when the liveness check rejects it (it is then
        invalidated and returned, and the caller checks out normally).
        """
        info = record.info
        if (
            info.get("parked_by") is not owner
            or record.dbapi_connection is not dbapi_conn
            or self.retired
            or self._abandoned  # the full checkout returns those first
            or not self._pool.take(record)  # type: ignore[attr-defined]
        ):
            return False
        info["parked_by"] = None
        now = time.monotonic()
        if not self._check_idle(record, dbapi_conn, now):
            self._do_return_conn(record)  # reopened by whoever checks it out next
            return False
        self._handed_out(record, now, now)
        return True

    def _handed_out(self, record: _ConnectionRecord, start: float, now: float) -> None:
        """Counters, timings, leak tracking and the log line of a checkout."""
        waited = now - start
        self.stats.checked_out(waited)
        if waited >= self._slow_wait:
            summary = self._slow_log.note(waited)
            if summary is not None:
                count, worst = summary
                logger.warning(
                    "slow checkout: pool=%s waited %.3f s for a connection (pool_size=%s, "
                    "max_overflow=%s, %s still waiting); %d slow checkouts since the "
                    "last such line, longest wait %.3f s",
                    self.name,
                    waited,
                    self.settings.pool_size,
                    self.settings.max_overflow,
                    _threads(self.waiting),
                    count,
                    worst,
                )
        pid = record.info["backend_pid"]
        self.held[id(record)] = Holding(
            now,
            threading.get_ident(),
            pid,
            "".join(traceback.format_stack(limit=30)[:-2])
            if self.settings.leak_detection_threshold
            else None,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "checkout pool=%s backend_pid=%s waited_ms=%.3f", self.name, pid, waited * 1000
            )

    def checkin(self, record: _ConnectionRecord) -> None:
        """Return a connection: reset and pooled, or closed if broken or the pool is retired."""
        if self._abandoned:
            self.reclaim_abandoned()
        now = time.monotonic()
        self._taken_in(record, now)
        dbapi_conn = record.dbapi_connection
        try:
            if dbapi_conn is None:
                pass  # already invalidated: nothing to reset
            elif self.retired:
                record.invalidate(_Retired("pool closed"))
            elif self.family.is_broken(dbapi_conn):
                record.invalidate(_Disconnected("the server closed the connection"))
            elif record.info["born"] < self._stale_before:
                record.invalidate(self._stale_cause("opened before the pool was drained"))
            else:
                record.info["returned"] = now
                self._reset(record, dbapi_conn)
        finally:
            # Private API (2.0 and 2.1): runs the 'checkin' listeners and puts
            # the record back in the queue (or closes it when the queue is full).
            record.checkin(_fairy_was_created=False)

    def _taken_in(self, record: _ConnectionRecord, now: float) -> None:
        """Counters, timings, leak tracking and the log line of a checkin."""
        holding = self.held.pop(id(record), None)
        if holding is not None:
            self.stats.checked_in(now - holding.since)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "checkin pool=%s backend_pid=%s",
                self.name,
                holding.backend_pid if holding else None,
            )

    def _reset(self, record: _ConnectionRecord, dbapi_conn: Any) -> None:
        """What SQLAlchemy's fairy does on return: 'reset' listeners, then rollback or commit."""
        try:
            if self.dispatch.reset:
                self.dispatch.reset(
                    dbapi_conn,
                    record,
                    PoolResetState(
                        transaction_was_reset=False, terminate_only=False, asyncio_safe=True
                    ),
                )
            mode = self._reset_on_return
            # Rolling back or committing an idle connection sends nothing to
            # the server but still takes the driver's lock and runs its wait
            # loop; libpq's transaction status tells without a round trip.
            if mode is not reset_rollback and mode is not reset_commit:
                return
            if self.family.idle_and_open(dbapi_conn):
                return
            if mode is reset_rollback:
                dbapi_conn.rollback()
            else:
                dbapi_conn.commit()
        except Exception as error:
            # As SQLAlchemy does: log, invalidate (counted as "error"), go on.
            logger.error(
                "reset failed pool=%s backend_pid=%s: connection discarded",
                self.name,
                record.info.get("backend_pid"),
                exc_info=True,
            )
            record.invalidate(error)
        except BaseException as error:
            record.invalidate(error)
            raise

    # -- internals ------------------------------------------------------------

    def _open_connection(self) -> Any:
        outage = self._outage
        outage.gate()  # during an outage only one thread at a time tries
        start = time.perf_counter()
        params = self._connect_params
        deadline = getattr(self._pool.local, "deadline", None)  # type: ignore[attr-defined]
        if deadline is not None:  # checkout(timeout=...): bound the connect by it too
            # libpq counts whole seconds, and less than 2 as 2.
            bound = max(2, math.ceil(deadline - time.monotonic()))
            configured = str(params.get("connect_timeout") or "").strip()
            if not configured.isdigit() or int(configured) <= 0 or bound < int(configured):
                params = {**params, "connect_timeout": bound}
        try:
            conn = self._connect(params)
        except Exception as error:
            self.stats.connect_failed()
            refused = self.family.explain_refusal(error, params, self._where)
            if refused is not None:
                self._server_answered()
                raise ServerSettingsError(refused) from error
            if outage.grace and self._is_transient(error):
                if outage.failed(error):
                    logger.warning(
                        "server unreachable: pool=%s; checkouts wait up to connect_grace=%g s "
                        "for it, one thread retrying: %s",
                        self.name,
                        outage.grace,
                        outage_module.describe(error),
                    )
            else:
                self._server_answered()
            raise
        except BaseException:
            # Interrupted (KeyboardInterrupt, a gevent Timeout): end this
            # thread's turn, or checkouts waiting for its outcome would wait
            # out their whole bound.
            outage.release()
            raise
        self._server_answered()
        try:
            self.family.verify_session(conn, self.settings, self._where)
        except BaseException:
            conn.close()
            raise
        self.stats.opened(time.perf_counter() - start)
        # Counted before the connect (QueuePool's _inc_overflow), so this one is included.
        self.stats.saw_open(self.size() + self._overflow)
        return conn

    def _connect(self, params: dict[str, Any]) -> Any:
        """One physical connect, with the provider's secret when there is a provider.

        A secret the server refuses is dropped and the provider asked once
        more before the connect fails, so a rotation that lands while the old
        secret is still cached (ALTER ROLE, a revoked lease) costs no request.
        """
        credentials = self.credentials
        if credentials is None:
            return self.family.connect(params)
        secret, fresh = credentials.current()
        try:
            return self.family.connect({**params, **secret})
        except Exception as error:
            if fresh or not self.family.is_auth_failure(error):
                raise
            credentials.forget(secret)
            logger.info(
                "credentials refused: pool=%s; asking %s for new ones", self.name, credentials.name
            )
        secret, _ = credentials.current()
        return self.family.connect({**params, **secret})

    def _is_transient(self, error: BaseException) -> bool:
        if isinstance(error, CredentialsError):
            return error.transient  # the provider says whether it may heal
        return self.family.is_transient(error)

    def _server_answered(self) -> None:
        if self._outage.since is None:
            return
        down = self._outage.answered()
        if down is not None:
            logger.warning("server reachable again: pool=%s after %.3f s", self.name, down)

    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        now = time.monotonic()
        recycle = self.settings.pool_recycle
        info = record.info
        info["born"] = now
        # Lifetimes shortened by a random 0..pool_recycle_jitter, so connections
        # opened together (a fleet started together) are not replaced together.
        spread = self.settings.pool_recycle_jitter
        info["expires"] = now + recycle * (1 - random.uniform(0, spread)) if recycle else math.inf
        info["returned"] = None
        info["backend_pid"] = pid = self.family.backend_pid(dbapi_conn)
        info["watch"] = self.family.socket_watch(dbapi_conn)
        info["server"] = server = self.family.server_address(dbapi_conn)
        self.stats.server_opened(server)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("connect pool=%s backend_pid=%s", self.name, pid)

    def _do_get(self) -> Any:
        record: Any = super()._do_get()
        record.info["parked_by"] = None  # whoever returned it last cannot take it back now
        dbapi_conn = record.dbapi_connection
        if dbapi_conn is not None:
            # If it fails, SQLAlchemy's checkout opens a new connection in its
            # place (get_connection() on an invalidated record), before the
            # caller sees anything.
            self._check_idle(record, dbapi_conn, time.monotonic())
        return record

    def _check_idle(self, record: _ConnectionRecord, dbapi_conn: Any, now: float) -> bool:
        """The liveness check of a record just taken from the queue.

        False when it failed: the record is then invalidated (its connection
        closed) and stays checked out. An interruption returns it to the queue.
        """
        try:
            unusable = self._unusable(record.info, dbapi_conn, now)
        except BaseException:
            record.invalidate()
            self._do_return_conn(record)
            raise
        if unusable is None:
            return True
        record.invalidate(unusable)
        return False

    def _unusable(self, info: dict[str, Any], dbapi_conn: Any, now: float) -> Exception | None:
        """Why this idle connection must not be handed out, or None if it may."""
        if now >= info["expires"]:
            return _Recycle("connection older than pool_recycle")
        if info["born"] < self._stale_before:
            return self._stale_cause("opened before the pool's connections were retired")
        returned = info["returned"]
        if returned is None:
            return None  # never ping a connection that was just opened
        settings = self.settings
        if not settings.pool_pre_ping:
            return None
        if now - returned <= settings.pool_pre_ping_window and not info["watch"].readable():
            return None
        bound = settings.ping_timeout
        deadline = getattr(self._pool.local, "deadline", None)  # type: ignore[attr-defined]
        if deadline is not None:  # checkout(timeout=...): its bound covers the ping too
            bound = max(0.001, min(bound, deadline - now))
        family = self.family
        try:
            family.ping(dbapi_conn, bound)
        except family.Error as error:
            if family.is_broken(dbapi_conn):
                self._stale_cause = _Stale
                self._stale_before = now
            return _PingFailed(f"ping failed: {error}".strip())
        if self._wants_writer and family.is_read_only(dbapi_conn):
            # The ping's answer carried the server's new state (PostgreSQL reports
            # in_hot_standby and default_transaction_read_only when they change).
            self.server_read_only(info, "the liveness check found the server read-only")
            return _FailedOver("server read-only, target_session_attrs asks for a writer")
        return None

    def _on_invalidate(self, dbapi_conn: Any, record: Any, error: BaseException | None) -> None:
        cause = getattr(error, "cause", "error")
        if cause is not None:
            self.stats.invalidated(cause)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "invalidate pool=%s backend_pid=%s cause=%s reason=%s",
                self.name,
                self.family.backend_pid(dbapi_conn),
                cause,
                error,
            )

    def _on_close(self, dbapi_conn: Any, record: Any) -> None:
        self.stats.closed(record.info.get("server"))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "close pool=%s backend_pid=%s", self.name, self.family.backend_pid(dbapi_conn)
            )

    def _on_close_detached(self, dbapi_conn: Any) -> None:
        self.stats.closed()

    def _on_reset_discard(self, dbapi_conn: Any, record: Any, reset_state: Any) -> None:
        # Runs before SQLAlchemy's rollback.
        self.family.discard(dbapi_conn, self.settings, self._where)

    def drain(self, cause: type[_Retiring] = _Drained) -> int:
        """Replace every connection open now: idle ones at once, busy ones when returned.

        No request fails: a busy connection finishes its request and is closed
        at its return; the next checkouts open new ones. Returns how many idle
        connections were closed now.
        """
        self._stale_cause = cause  # before the time: whoever sees the new time sees its cause
        self._stale_before = time.monotonic()
        doomed = self._pool.remove_idle(  # type: ignore[attr-defined]
            lambda record: record.dbapi_connection is not None, self.size() + self._overflow
        )
        for record in doomed:
            # As housekeeping's idle rule does: close, then free its place.
            try:
                record.close()
            finally:
                self._dec_overflow()
            self.stats.invalidated(cause.cause)
        return len(doomed)

    def server_read_only(self, info: dict[str, Any] | None, reason: str) -> None:
        """A pooled connection found its server refusing writes (SQLSTATE 25006, 0A000).

        After a switchover every connection opened before it most likely
        reaches the old primary, now a standby, whose ``SELECT 1`` still
        passes: replace them all (drain()). The request that hit it fails as
        it would have; nothing is retried behind its back.
        """
        info = info or {}
        born = info.get("born", math.inf)
        if born < self._stale_before:
            return  # opened before the last drain: this failover is known already
        self.stats.failed_over()
        closed = self.drain(_FailedOver)
        summary = self._failover_log.note(0.0)
        if summary is not None:
            logger.warning(
                "server refuses writes: pool=%s backend_pid=%s server=%s (%s); replacing "
                "every connection opened before now (%d idle closed, the busy ones when "
                "returned) [%d such events since the last such line]",
                self.name,
                info.get("backend_pid"),
                info.get("server"),
                " ".join(reason.split()),
                closed,
                summary[0],
            )

    def set_password(self, password: Any) -> None:
        """The password for connections opened from now on (open ones keep theirs).

        ``None`` removes it: mysqlclient refuses ``password=None`` (a TypeError
        at every connect), where libpq ignores it.
        """
        if self._connect_params.get("password") != password:
            params = {k: v for k, v in self._connect_params.items() if k != "password"}
            if password is not None:
                params["password"] = password
            self._connect_params = params

    @property
    def password(self) -> Any:
        return self._connect_params.get("password")

    def servers(self) -> dict[str, int]:
        """Open connections by the ``host:port`` they reached."""
        return self.stats.servers()

    def retire(self) -> None:
        """Close the idle connections; checked-out ones are closed when returned."""
        self.retired = True
        self.dispose()
