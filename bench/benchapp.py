"""The benchmark's Django project: one URL, one view, one ``SELECT 1``."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path


def select_one(request: HttpRequest) -> HttpResponse:
    """Run ``SELECT 1``; with ``?hold=<ms>`` keep the connection that long, as slow views do."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    hold = request.GET.get("hold")
    if hold:
        time.sleep(int(hold) / 1000)
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("select1/", select_one)]
