# The model is unmanaged: this migration creates no table. It exists so that
# migrate creates the content type and the view_poolstats permission.

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="PoolStats",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "verbose_name": "connection pool stats",
                "verbose_name_plural": "connection pool stats",
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
    ]
