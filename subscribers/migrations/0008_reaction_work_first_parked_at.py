from django.db import migrations, models

# Rows parked before this migration first parked no later than they last did.
BACKFILL = "UPDATE reaction_work SET first_parked_at = parked_at WHERE parked_at IS NOT NULL"


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0007_worker_wakeups")]

    operations = [
        migrations.AddField(
            model_name="reactionwork",
            name="first_parked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
