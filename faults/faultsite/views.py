"""Views that check their own results: a wrong row or a crossed reply shows as ``wrong``."""

import functools
import os
import threading
import time

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse

from .models import Item


def _error(exc: BaseException) -> JsonResponse:
    return JsonResponse(
        {
            "error": type(exc).__name__,
            "module": type(exc).__module__,
            "msg": str(exc)[:400],
            "pid": os.getpid(),
        },
        status=500,
    )


def _reports_errors(view):  # type: ignore[no-untyped-def]
    @functools.wraps(view)
    def wrapper(request):  # type: ignore[no-untyped-def]
        try:
            return view(request)
        except Exception as exc:
            return _error(exc)

    return wrapper


def health(request):  # type: ignore[no-untyped-def]
    return JsonResponse({"pid": os.getpid()})


def _check(k: int, token: str) -> dict:
    sql = (
        "SELECT CAST(%s AS CHAR), CONNECTION_ID()"
        if connection.vendor == "mysql"
        else "SELECT %s::text, pg_backend_pid()"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [token])
        echoed, backend_pid = cursor.fetchone()
    value = Item.objects.get(pk=k).value
    wrong = echoed != token or value != k * 7 + 3
    return {"pid": os.getpid(), "bpid": backend_pid, "wrong": wrong}


@_reports_errors
def query(request):  # type: ignore[no-untyped-def]
    k, token = int(request.GET["k"]), request.GET["t"]
    return JsonResponse(_check(k, token))


async def async_query(request):  # type: ignore[no-untyped-def]
    """The async ORM (aget) next to a raw query run through sync_to_async."""
    try:
        k, token = int(request.GET["k"]), request.GET["t"]
        item = await Item.objects.aget(pk=k)
        result = await sync_to_async(_check)(k, token)
        result["wrong"] = result["wrong"] or item.value != k * 7 + 3
        return JsonResponse(result)
    except Exception as exc:
        return _error(exc)


@_reports_errors
def sleep(request):  # type: ignore[no-untyped-def]
    """pg_sleep(s), then a query on the same connection: statement_timeout must cancel the first."""
    seconds = float(request.GET.get("s", "1"))
    started = time.monotonic()
    with connection.cursor() as cursor:
        try:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
            outcome = "slept"
        except Exception as exc:
            if "statement timeout" not in str(exc):
                raise
            outcome = "cancelled"
        elapsed = time.monotonic() - started
        cursor.execute("SHOW statement_timeout")
        (setting,) = cursor.fetchone()
    return JsonResponse(
        {"pid": os.getpid(), "outcome": outcome, "elapsed": elapsed, "setting": setting}
    )


def stats(request):  # type: ignore[no-untyped-def]
    """This worker's pools (this package only) and its threads."""
    checked_out = None
    try:
        from django_sqla_pool import pool_stats
    except ImportError:
        pass
    else:
        snapshot = pool_stats()
        checked_out = sum(p["gauges"]["checked_out"] for p in snapshot["pools"])
    return JsonResponse(
        {"pid": os.getpid(), "checked_out": checked_out, "threads": threading.active_count()}
    )
