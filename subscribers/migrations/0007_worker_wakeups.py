from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0006_rebuilds")]

    operations = [
        migrations.AddField(
            model_name="workerheartbeat",
            name="wakeups_working",
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
