"""A TCP proxy a test controls: refuse, hold or forward new connections to the real server.

It shows the pool a server that is away (refused), one whose connection
attempt is under way for as long as the test wants (held: accepted, nothing
forwarded until release() or drop_held()), and one that is back (forwarding).
Only 127.0.0.1 is used; every thread is a daemon and close() ends them.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self.upstream = upstream
        self.accepted = 0
        self._mode = "refuse"
        self._held: list[socket.socket] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def refuse(self) -> None:
        """Close the listening socket: connection attempts are refused."""
        with self._lock:
            self._mode = "refuse"
            listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() first: close() alone leaves the socket listening
            # while the accepting thread is blocked in accept() on it.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def hold(self) -> None:
        """Accept new connections and forward nothing until release() or drop_held()."""
        self._listen("hold")

    def forward(self) -> None:
        self._listen("forward")

    def release(self) -> None:
        """Forward from now on, the held connections included."""
        with self._lock:
            self._mode = "forward"
            held, self._held = self._held, []
        for client in held:
            self._pipe(client)

    def drop_held(self) -> None:
        """Close the held connections: their attempts fail (the server closed the connection)."""
        with self._lock:
            held, self._held = self._held, []
        for client in held:
            client.close()

    def close(self) -> None:
        self.refuse()
        with self._lock:
            sockets, self._open = self._open + self._held, []
            self._held = []
        for sock in sockets:
            sock.close()

    def _listen(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by refuse() or close()
                return
            with self._lock:
                self.accepted += 1
                if self._mode == "hold":
                    self._held.append(client)
                    continue
            self._pipe(client)

    def _pipe(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream, timeout=5)
        server.settimeout(None)
        with self._lock:
            self._open += [client, server]
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
