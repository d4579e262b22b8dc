from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0005_bookmark_pause")]

    operations = [
        migrations.AddField(
            model_name="workerheartbeat",
            name="wakeups_working",
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
