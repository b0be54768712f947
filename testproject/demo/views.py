"""Views that query, for the demo and the request-cycle tests."""

import time

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from .models import Note


def index(request: HttpRequest) -> HttpResponse:
    notes = "".join(
        f"<li>{note.text} ({note.created:%Y-%m-%d %H:%M})</li>"
        for note in Note.objects.order_by("-id")[:20]
    )
    return HttpResponse(
        "<h1>django-sqla-pool demo</h1>"
        f"<p>{Note.objects.count()} notes. <a href='/notes/add/'>Add one</a> · "
        "<a href='/admin/'>Admin</a></p>"
        f"<ul>{notes}</ul>"
    )


def note_count(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CONNECTION_ID()" if connection.vendor == "mysql" else "SELECT pg_backend_pid()"
        )
        backend_pid = cursor.fetchone()[0]
    return JsonResponse({"count": Note.objects.count(), "backend_pid": backend_pid})


def add_note(request: HttpRequest) -> JsonResponse:
    note = Note.objects.create(text=request.GET.get("text", "hello from the pool"))
    return JsonResponse({"id": note.pk})


async def async_note_count(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"count": await Note.objects.acount()})


def sleep(request: HttpRequest) -> JsonResponse:
    """Hold the connection for ?ms= milliseconds, as a slow request does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    time.sleep(int(request.GET.get("ms", "5")) / 1000)
    return JsonResponse({"ok": True})
