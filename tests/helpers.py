"""Driving Django's real request handlers (WSGI and ASGI) from tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from wsgiref.util import setup_testing_defaults

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

_wsgi: WSGIHandler | None = None


def wsgi_get(path: str, query: str = "") -> tuple[int, Any]:
    """GET through WSGIHandler, so request_started/finished fire as under a server."""
    global _wsgi
    if _wsgi is None:
        _wsgi = WSGIHandler()
    environ = {"PATH_INFO": path, "QUERY_STRING": query}
    setup_testing_defaults(environ)  # the rest of a minimal WSGI environ
    status: list[str] = []
    response = _wsgi(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        body = b"".join(response)
    finally:
        response.close()
    code = int(status[0].split()[0])
    return code, json.loads(body) if body.startswith(b"{") else body


def asgi_get(path: str) -> tuple[int, Any]:
    """GET through ASGIHandler in a fresh event loop."""
    handler = ASGIHandler()
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects; Django cancels this
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(handler(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)
