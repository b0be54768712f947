from django.apps import AppConfig


class DjangoSqlaPoolConfig(AppConfig):
    name = "django_sqla_pool"
    verbose_name = "Connection pool"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks, history  # noqa: F401  (checks registers the system checks)

        history.install()
