from django.apps import AppConfig


class GeoDemoConfig(AppConfig):
    """GeoDjango models; installed only when DATABASE_URL uses the PostGIS ENGINE."""

    name = "geodemo"
    default_auto_field = "django.db.models.BigAutoField"
