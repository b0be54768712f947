"""Celery tasks; the worker's parent queries the database before it forks its children."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faultsite.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

app = Celery("faultsite", broker=settings.CELERY_BROKER_URL, backend=settings.CELERY_BROKER_URL)
app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@worker_init.connect
def _query_in_parent(**kwargs):  # type: ignore[no-untyped-def]
    # The trap: the parent holds (or pools) a connection when prefork forks.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()
    connection.close()
    path = os.environ.get("FAULTS_PARENT_FILE")
    if path:
        with open(path, "w") as f:
            f.write(f"{os.getpid()} {backend_pid}\n")


@app.task(name="faults.probe")
def probe(k: int, token: str) -> dict:
    from .views import _check

    try:
        return _check(k, token)
    except Exception as exc:
        return {"pid": os.getpid(), "error": type(exc).__name__, "msg": str(exc)[:400]}
