"""A bounded load generator: N client threads, each sending one request at a time.

Every client stops at the deadline or after ``max_per_client`` requests,
whichever comes first, and every request has a client-side timeout, so a
stuck server shows as ``ClientTimeout`` instead of hanging the harness.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_ERROR = re.compile(
    r"protocol|lost synchroni|unexpected (response|message)|another command is already in "
    r"progress|insufficient data|message type|server sent data|bad (message|length)",
    re.IGNORECASE,
)


@dataclass
class Record:
    t0: float
    t1: float
    ok: bool
    kind: str = "q"
    error: str = ""
    msg: str = ""
    wrong: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return self.t1 - self.t0

    @property
    def protocol_error(self) -> bool:
        return bool(self.error) and bool(PROTOCOL_ERROR.search(self.msg))


def http_get(port: int, path: str, timeout: float) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, {"error": f"HTTP{response.status}", "msg": body[:200].decode()}


def http_request(port: int, timeout: float, view: str = "q", sleep_every: int = 0) -> Callable:
    """A request function for :class:`Load`: /q (or /aq) with a token; some /sleep."""
    counter = itertools.count()

    def request() -> Record:
        n = next(counter)
        kind = "sleep" if sleep_every and n % sleep_every == sleep_every - 1 else "q"
        k, token = random.randint(1, 1000), f"{random.getrandbits(48):x}"
        path = "/sleep?s=1" if kind == "sleep" else f"/{view}?k={k}&t={token}"
        t0 = time.monotonic()
        try:
            status, data = http_get(port, path, timeout)
        except TimeoutError:
            return Record(t0, time.monotonic(), False, kind, "ClientTimeout", "no reply")
        except OSError as exc:
            return Record(t0, time.monotonic(), False, kind, "HTTPConnectError", str(exc))
        t1 = time.monotonic()
        if status != 200:
            return Record(
                t0,
                t1,
                False,
                kind,
                data.get("error", f"HTTP{status}"),
                data.get("msg", ""),
                data=data,
            )
        return Record(t0, t1, True, kind, wrong=bool(data.get("wrong")), data=data)

    return request


class Load:
    """``clients`` threads calling ``request()`` with ``think`` seconds between calls."""

    def __init__(
        self,
        name: str,
        request: Callable[[], Record],
        clients: int = 12,
        think: float = 0.1,
        max_per_client: int = 5000,
        max_seconds: float = 300,
    ) -> None:
        self.name, self.request, self.clients = name, request, clients
        self.think, self.max_per_client, self.max_seconds = think, max_per_client, max_seconds
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, float] = {}

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i, deadline), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _client(self, i: int, deadline: float) -> None:
        # Spread the clients' start so they do not tick in lockstep.
        self._stop.wait(self.think * i / self.clients)
        for _ in range(self.max_per_client):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            with self._lock:
                self._in_flight[i] = time.monotonic()
            record = self.request()
            with self._lock:
                self._in_flight.pop(i, None)
                self.records.append(record)
            self._stop.wait(self.think)

    def stop(self, timeout: float) -> bool:
        """Stop and wait for the requests in flight; False if some are still out."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def join(self, timeout: float) -> None:
        """Wait for the clients to finish on their own (count or time bound)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)
