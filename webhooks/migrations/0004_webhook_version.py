"""A webhook's version: the `ETag` of `GET /v1/webhooks/{id}` that `If-Match` names on PATCH and DELETE."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_exposure_deliveries"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhook",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
    ]
