from typing import Any

from django.apps import AppConfig
from django.conf import settings

from . import checks  # registers the system checks
from .conf import validate_pooled_databases
from .observe import history


class DjangoSqlaPoolConfig(AppConfig):
    name = "django_sqla_pool"
    verbose_name = "Connection pool"
    default_auto_field = "django.db.models.AutoField"

    def __init__(self, app_name: str, app_module: Any) -> None:
        super().__init__(app_name, app_module)
        # Here, not in ready(): the first models module imported makes Django
        # import the ENGINE, which fails with "No module named 'postgres-pool'".
        checks.raise_for_unregistered_url_scheme(settings.DATABASES)

    def ready(self) -> None:
        # Fail at boot: a gunicorn or uvicorn worker with a wrong pool setting
        # then refuses to start, instead of serving every request a 500.
        validate_pooled_databases(settings.DATABASES)
        history.install()
