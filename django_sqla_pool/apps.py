from django.apps import AppConfig
from django.conf import settings


class DjangoSqlaPoolConfig(AppConfig):
    name = "django_sqla_pool"
    verbose_name = "Connection pool"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks, history  # noqa: F401  (checks registers the system checks)

        checks.raise_for_unregistered_url_scheme(settings.DATABASES)

        history.install()
