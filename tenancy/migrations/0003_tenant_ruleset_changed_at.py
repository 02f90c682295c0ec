import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_idempotency_claims_and_rate_limit_buckets"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="ruleset_changed_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                editable=False,
                help_text="When the ruleset version was last bumped: the snapshot's `generated_at`.",
            ),
        ),
    ]
