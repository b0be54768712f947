from django.apps import AppConfig


class DjangoSqlaPoolConfig(AppConfig):
    name = "django_sqla_pool"
    verbose_name = "Connection pool"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django.conf import settings

        from . import checks, history  # noqa: F401  (checks registers the system checks)
        from .conf import validate_pooled_databases

        # Fail at boot: a gunicorn or uvicorn worker with a wrong pool setting
        # then refuses to start, instead of serving every request a 500.
        validate_pooled_databases(settings.DATABASES)
        history.install()
