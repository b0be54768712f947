"""``path("", include("django_sqla_pool.urls"))`` serves ``health/`` and ``health/live/``."""

from django.urls import path

from .views import health_view, liveness_view

app_name = "django_sqla_pool"

urlpatterns = [
    path("health/", health_view, name="health"),
    path("health/live/", liveness_view, name="liveness"),
]
