"""Deliveries with no change event behind them: batches of `flag.exposure` events (issue 15, item 4)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_delivery_retention_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookdelivery",
            name="event_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="message_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="webhookdelivery",
            constraint=models.UniqueConstraint(
                condition=models.Q(("message_id", ""), _negated=True),
                fields=("webhook", "message_id"),
                name="delivery_webhook_message_unique",
            ),
        ),
    ]
