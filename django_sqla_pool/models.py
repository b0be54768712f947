"""A model without a table: it gives the admin page its index entry and its permission."""

from django.db import models


class PoolStats(models.Model):
    """Carries ``django_sqla_pool.view_poolstats``; ``managed = False``, so no table exists."""

    class Meta:
        managed = False
        # Only "view": the page shows stats and changes nothing.
        default_permissions = ("view",)
        verbose_name = "connection pool stats"
        verbose_name_plural = "connection pool stats"
