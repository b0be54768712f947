import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faultsite.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

if os.environ.get("FAULTS_QUERY_AT_IMPORT"):
    # What many projects do in the gunicorn master under --preload (a cache
    # warm-up, a feature flag read): a query before the workers fork.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()  # returned to the pool (or kept: Django's pool, plain backend)
