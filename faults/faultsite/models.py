from django.db import models


class Item(models.Model):
    """Rows 1..1000 with value = id * 7 + 3: a request that reads the wrong row shows it."""

    value = models.IntegerField()

    class Meta:
        db_table = "faults_item"
        managed = False
