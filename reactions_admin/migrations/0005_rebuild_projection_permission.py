# The permission the projection rebuild acts need (issue 17).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reactions_admin', '0004_view_console_permission'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='decision',
            options={'ordering': ('-transaction_id', '-position'), 'permissions': [('dismiss_event', 'Can dismiss an event in a reaction'), ('operate_subscriber', 'Can operate a subscriber (retry a parked stream now)'), ('view_console', 'Can view the operator console'), ('rebuild_projection', 'Can rebuild a projection (start, swap, cancel, roll back)')], 'verbose_name': 'decision'},
        ),
    ]
