"""Whether an idle connection's socket has something waiting, without a round trip.

Family-neutral: any driver connection with a ``fileno()``. The liveness
check of every family (``core/family.py``) uses it for connections returned
within ``pool_pre_ping_window``.
"""

from __future__ import annotations

import ctypes
import select
from typing import Any

_POLL_FLAGS = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


def _gil_holding_poll() -> Any:
    """libc's poll(), called through ctypes.PyDLL, which keeps the GIL during the call.

    select.poll() releases the GIL around its system call, even with a zero
    timeout; with many threads busy, getting it back can cost a whole thread
    switch interval, far more than the call itself. A zero-timeout poll
    never blocks, so holding the GIL is harmless. None where libc cannot be
    loaded this way (Windows); select is used there.
    """
    try:
        poll = ctypes.PyDLL(None).poll
    except (OSError, AttributeError, TypeError):
        return None
    # No argtypes: converting Python ints through them costs more than the
    # system call; the arguments are passed as ctypes values of the right C
    # types instead (_ONE_FD, _NO_WAIT and a pointer from ctypes.byref).
    poll.restype = ctypes.c_int
    return poll


_poll = _gil_holding_poll()
_ONE_FD = ctypes.c_ulong(1)  # nfds_t
_NO_WAIT = ctypes.c_int(0)  # timeout in milliseconds


class SocketWatch:
    """Tells whether an idle connection's socket has data or end-of-file waiting.

    An idle connection receives nothing unless the server is ending it
    (PostgreSQL: an ErrorResponse, then EOF, or a notice or notification;
    MySQL: EOF, or an error packet first on MySQL 8's wait_timeout). A
    zero-timeout poll tells that in about a microsecond. Built once per
    connection: its socket never changes.
    """

    __slots__ = ("_fd", "_pointer", "_pollfd")

    def __init__(self, conn: Any) -> None:
        try:
            self._fd = conn.fileno()
        except Exception:
            self._fd = -1
        self._pollfd = _PollFd(self._fd, _POLL_FLAGS, 0)
        self._pointer = ctypes.byref(self._pollfd)

    def readable(self) -> bool:
        if self._fd < 0:
            return True
        if _poll is None:
            return bool(select.select([self._fd], [], [self._fd], 0)[0])
        return bool(_poll(self._pointer, _ONE_FD, _NO_WAIT) != 0)
