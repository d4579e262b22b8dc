from django.apps import AppConfig


class ReactionsAdminConfig(AppConfig):
    name = "reactions_admin"
    verbose_name = "Reactions"
    default_auto_field = "django.db.models.BigAutoField"
