from django.contrib import admin
from django.urls import include, path

from demo import views

try:
    from django_sqla_pool.contrib.prometheus import metrics_view
except ImportError:  # without the "prometheus" extra: no /metrics/
    metrics_view = None

urlpatterns = [
    path("", views.index, name="index"),
    path("notes/count/", views.note_count, name="note-count"),
    path("notes/add/", views.add_note, name="add-note"),
    path("async/count/", views.async_note_count, name="async-note-count"),
    path("sleep/", views.sleep, name="sleep"),
    path("admin/", admin.site.urls),
    # /health/ (readiness, per pooled alias) and /health/live/ (liveness).
    path("", include("django_sqla_pool.urls")),
]
if metrics_view is not None:
    # Prometheus; send Authorization: Bearer $METRICS_TOKEN.
    urlpatterns.append(path("metrics/", metrics_view, name="metrics"))
